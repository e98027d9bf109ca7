"""Small file helpers shared by every module: atomic writes, JSONL reading with line numbers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """Bad input data; the message names the file and line."""

    def __init__(self, path: Path | str, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def replacement_mode(path: Path | str) -> int:
    """The mode a new version of ``path`` gets: the replaced file's, else the umask-based default."""
    try:
        return Path(path).stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_dir(path: Path | str):
    """Build a folder in a temporary sibling (yielded) and swap it into place on success.

    On any exception the temporary folder is removed and ``path`` is
    untouched. The result gets the usual umask-based modes (mkdtemp makes
    private folders).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        umask = _umask()
        os.chmod(tmp, 0o777 & ~umask)
        for f in tmp.iterdir():
            if f.is_file():
                os.chmod(f, 0o666 & ~umask)
        if path.is_dir():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_writer(path: Path | str, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file next to ``path`` and rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched,
    so a reader never sees a half-written file. A replaced file keeps its mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, replacement_mode(path))  # mkstemp creates 0600 files
    try:
        kwargs = {"encoding": encoding} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_writer(path) as fh:
        fh.write(text)


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line; clear errors on bad JSON."""
    path = Path(path)
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    with fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", lineno) from None
                if not isinstance(obj, dict):
                    raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
                yield lineno, obj
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not valid UTF-8 ({exc.reason})", lineno + 1) from None


def bundled_yaml(name: str):
    """The package's ``resources/<name>`` YAML file (cue words, settings), parsed."""
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("caibao").joinpath(f"resources/{name}").read_text("utf-8"))


def dump_jsonl_line(obj) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"
