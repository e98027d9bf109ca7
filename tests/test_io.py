"""Atomic writes of files and folders: nothing half-written on failure."""

import pytest

from caibao.io import atomic_dir, atomic_writer


def test_atomic_writer_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_swaps_on_success_and_keeps_the_old_folder_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.bin").write_text("1")
    assert (target / "a.bin").read_text() == "1"
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)  # not mkdtemp's private mode
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.bin").write_text("2")
            raise RuntimeError("boom")
    assert (target / "a.bin").read_text() == "1"
    with atomic_dir(target) as tmp:
        (tmp / "b.bin").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
