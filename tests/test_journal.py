"""Several files replaced as one (caibao.journal), proved with real kills of a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caibao import faults, journal

CHILD = """
import sys
from pathlib import Path
from caibao import journal
folder = Path(sys.argv[1])
journal.commit(folder, {folder / "a.jsonl": "A2\\n", folder / "b.jsonl": "B2\\n", folder.parent / "splits.json": "S2\\n"},
               pending=[{"task": 7, "base_hash": "h"}])
"""

OLD = {"a.jsonl": "A1\n", "b.jsonl": "B1\n", "../splits.json": "S1\n"}
NEW = {"a.jsonl": "A2\n", "b.jsonl": "B2\n", "../splits.json": "S2\n"}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "gold"
    folder.mkdir()
    for name, text in OLD.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def _state(folder: Path) -> dict[str, str]:
    return {name: (folder / name).read_text("utf-8") for name in OLD}


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob(journal.TEMP_PREFIX + "*")]


@pytest.mark.parametrize("kill_at, after", [
    ("journal:staged", OLD), ("journal:committed", NEW), ("journal:renamed#1", NEW), ("journal:renamed#2", NEW),
    ("journal:renamed#3", NEW),
])
def test_a_change_killed_anywhere_recovers_to_one_whole_state(tmp_path, monkeypatch, kill_at, after):
    folder = _folder(tmp_path)
    env = {**os.environ, faults.KILL_ENV: kill_at, "CAIBAO_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == faults.KILLED_EXIT_CODE, res.stderr
    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path / "cache"))
    pending = journal.recover(folder, temp_dirs=(tmp_path,))
    assert _state(folder) == after and _temps(tmp_path) == []
    assert pending == ([{"task": 7, "base_hash": "h"}] if after is NEW else [])
    assert journal.pending(folder) == pending


def test_commit_keeps_modes_and_the_pending_work_until_cleared(tmp_path):
    folder = _folder(tmp_path)
    (folder / "a.jsonl").chmod(0o640)
    journal.commit(folder, {folder / "a.jsonl": "A2\n", folder / "new.jsonl": "N\n"}, pending=[{"task": 1}])
    assert (folder / "a.jsonl").read_text("utf-8") == "A2\n" and (folder / "new.jsonl").read_text("utf-8") == "N\n"
    assert (folder / "a.jsonl").stat().st_mode & 0o777 == 0o640
    umask = os.umask(0)
    os.umask(umask)
    assert (folder / "new.jsonl").stat().st_mode & 0o777 == 0o666 & ~umask
    assert journal.pending(folder) == [{"task": 1}]
    with pytest.raises(journal.JournalError, match="unfinished"):
        journal.commit(folder, {folder / "b.jsonl": "B3\n"})  # one change at a time
    journal.clear_pending(folder)
    assert journal.pending(folder) == [] and not (folder / journal.JOURNAL_NAME).exists()
    journal.commit(folder, {folder / "b.jsonl": "B3\n"})
    assert (folder / "b.jsonl").read_text("utf-8") == "B3\n" and not (folder / journal.JOURNAL_NAME).exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    real = journal._stage

    def full_disk(target, text):
        if target.name == "b.jsonl":
            raise OSError("No space left on device")
        return real(target, text)

    monkeypatch.setattr(journal, "_stage", full_disk)
    with pytest.raises(OSError, match="No space"):
        journal.commit(folder, {folder / "a.jsonl": "A2\n", folder / "b.jsonl": "B2\n"})
    assert _state(folder) == OLD and _temps(tmp_path) == [] and not (folder / journal.JOURNAL_NAME).exists()


def test_an_unreadable_journal_is_a_one_line_error(tmp_path):
    folder = _folder(tmp_path)
    (folder / journal.JOURNAL_NAME).write_text("{not json", "utf-8")
    with pytest.raises(journal.JournalError, match=r"unreadable journal .*restore the folder from git"):
        journal.recover(folder)
    (folder / journal.JOURNAL_NAME).write_text(json.dumps([1, 2]), "utf-8")
    with pytest.raises(journal.JournalError, match="not a caibao journal"):
        journal.recover(folder)


def test_reading_the_gold_folder_finishes_a_killed_change_first(tmp_path):
    from caibao.annotations import read_gold

    folder = tmp_path / "gold"
    folder.mkdir()
    line = json.dumps({"id": "d1", "text": "乐信营收114亿元。", "meta": {}, "entities": [], "relations": []},
                      ensure_ascii=False)
    env = {**os.environ, faults.KILL_ENV: "journal:committed", "CAIBAO_CACHE_DIR": str(tmp_path / "cache")}
    code = ("import sys; from pathlib import Path; from caibao import journal; f = Path(sys.argv[1]); "
            "journal.commit(f, {f / 'reviewed.jsonl': sys.argv[2] + chr(10)})")
    res = subprocess.run([sys.executable, "-c", code, str(folder), line], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == faults.KILLED_EXIT_CODE, res.stderr
    assert not (folder / "reviewed.jsonl").exists()
    assert [d.id for d in read_gold(folder)] == ["d1"]
    assert not (folder / journal.JOURNAL_NAME).exists()
