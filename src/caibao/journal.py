"""Several files that change together, replaced as one: a roll-forward journal.

A change set goes through three steps:

1. **stage**: each new content is written to a temporary sibling of its target
   (``.caibao-tmp.<name>.<random>``), flushed to disk, with the target's file
   mode (the umask's for a new file).
2. **commit**: a journal naming every (temporary, target) pair, plus any
   follow-up work of the caller (``pending``, plain JSON), is written to a
   temporary file and renamed to ``<folder>/.caibao-journal.json``. That
   rename is the commit point.
3. **apply**: the temporaries are renamed over their targets; then the
   journal keeps only the ``pending`` work, or is removed when there is none.

A process killed before the commit point leaves the old files and stale
temporaries, which :func:`recover` removes; killed after it, :func:`recover`
finishes the renames. Every reader of the folder calls :func:`recover` first
(``caibao.annotations.read_gold`` does), so nobody works on half a change.
``pending`` is the caller's to finish (:func:`pending`, :func:`clear_pending`):
the review loop keeps there the Label Studio updates that follow a pull.

Changes and recoveries of one folder are serialised by a lock file in the
user's cache (:func:`folder_lock`), never in the folder itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

from caibao import faults
from caibao.io import replacement_mode

JOURNAL_NAME = ".caibao-journal.json"
TEMP_PREFIX = ".caibao-tmp."
# How long a second process waits for a folder or project that another one is changing.
LOCK_TIMEOUT_S = 600.0

_locks: dict[str, FileLock] = {}


class JournalError(RuntimeError):
    """A change could not be committed or recovered; the message names the folder."""


def lock_dir() -> Path:
    """``$CAIBAO_CACHE_DIR/locks``, else ``~/.cache/caibao/locks``."""
    root = os.environ.get("CAIBAO_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "caibao") / "locks"


def named_lock(key: str) -> FileLock:
    """One reentrant lock per key and process (a second FileLock on one path would block its own process)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    if digest not in _locks:
        lock_dir().mkdir(parents=True, exist_ok=True)
        _locks[digest] = FileLock(str(lock_dir() / f"{digest}.lock"), timeout=LOCK_TIMEOUT_S)
    return _locks[digest]


def folder_lock(folder: Path | str) -> FileLock:
    return named_lock("folder:" + os.path.realpath(folder))


def acquire(lock: FileLock, what: str):
    """``lock`` acquired, or a one-line error naming ``what`` after :data:`LOCK_TIMEOUT_S` seconds."""
    try:
        return lock.acquire()
    except Timeout:
        raise JournalError(f"{what} is busy: another caibao process has held it for {LOCK_TIMEOUT_S:.0f} s "
                           f"(lock {lock.lock_file}); try again when it has finished") from None


def _stage(target: Path, text: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, replacement_mode(target))  # mkstemp makes 0600 files
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _write_journal(folder: Path, state: dict) -> None:
    text = json.dumps(state, ensure_ascii=False, indent=1) + "\n"
    tmp = _stage(folder / JOURNAL_NAME, text)
    os.replace(tmp, folder / JOURNAL_NAME)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_journal(folder: Path) -> dict | None:
    path = folder / JOURNAL_NAME
    try:
        state = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JournalError(f"{path}: unreadable journal ({exc}); restore the folder from git and delete it") from None
    if not isinstance(state, dict) or not isinstance(state.get("files"), list):
        raise JournalError(f"{path}: not a caibao journal; restore the folder from git and delete it")
    return state


def commit(folder: Path | str, contents: dict[Path, str], pending: list | None = None) -> None:
    """Replace every ``contents`` target as one change (see the module docstring); ``pending`` stays journalled."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder):
        if _read_journal(folder) is not None:
            raise JournalError(f"{folder / JOURNAL_NAME}: an earlier change is unfinished; recover it first")
        if not contents and not pending:
            return
        staged: list[tuple[Path, Path]] = []
        try:
            for target, text in contents.items():
                staged.append((_stage(Path(target), text), Path(target)))
            faults.point("journal:staged")
            files = [[os.path.relpath(tmp, folder), os.path.relpath(target, folder)] for tmp, target in staged]
            _write_journal(folder, {"files": files, "pending": list(pending or [])})
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        faults.point("journal:committed")
        _apply(folder)


def _apply(folder: Path) -> list:
    state = _read_journal(folder)
    if state is None:
        return []
    for tmp, target in state["files"]:
        if (folder / tmp).exists():  # else renamed by the run that was killed
            os.replace(folder / tmp, folder / target)
            faults.point("journal:renamed")
    remaining = list(state.get("pending") or [])
    if remaining:
        if state["files"]:
            _write_journal(folder, {"files": [], "pending": remaining})
    else:
        (folder / JOURNAL_NAME).unlink()
        _fsync_dir(folder)
    return remaining


def _remove_stale_temps(folder: Path, temp_dirs: tuple[Path, ...]) -> list[Path]:
    removed = []
    for d in {folder, *temp_dirs}:
        if d.is_dir():
            for tmp in d.glob(TEMP_PREFIX + "*"):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def recover(folder: Path | str, temp_dirs: tuple[Path, ...] = ()) -> list:
    """Finish a committed change of ``folder``, remove stale temporaries; returns the pending work.

    ``temp_dirs``: other folders that hold targets of this folder's changes
    (their stale temporaries are removed too).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    dirs = tuple(Path(d) for d in temp_dirs)
    if not (folder / JOURNAL_NAME).exists() and not any(
            next(d.glob(TEMP_PREFIX + "*"), None) for d in (folder, *dirs) if d.is_dir()):
        return []  # the usual case: nothing to do, no lock taken
    with folder_lock(folder):
        pending_work = _apply(folder)
        _remove_stale_temps(folder, dirs)
        return pending_work


def pending(folder: Path | str) -> list:
    """The pending work of a finished change (empty when there is none)."""
    state = _read_journal(Path(folder))
    return list(state.get("pending") or []) if state else []


def clear_pending(folder: Path | str) -> None:
    """The caller has done the pending work: remove the journal (only when its files are all applied)."""
    folder = Path(folder)
    with folder_lock(folder):
        state = _read_journal(folder)
        if state is None:
            return
        if state["files"]:
            raise JournalError(f"{folder / JOURNAL_NAME}: files not applied yet; recover first")
        (folder / JOURNAL_NAME).unlink()
        _fsync_dir(folder)
