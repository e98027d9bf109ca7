"""The working files of a batch extraction, shared by the local and the Ray engine.

A run streams into three files beside ``OUT``:

* ``OUT.partial.jsonl``: the facts, one ``Fact.model_dump_json()`` a line;
* the errors file (``OUT.errors.jsonl`` by default): ``{"doc_id", "error"}`` lines;
* ``OUT.done``: the journal, one JSON line per finished document,
  ``[doc_id, facts bytes, errors bytes]``, written after that document's facts
  or error line has reached the files.

The journal is the commit point. ``--resume`` cuts the facts and errors files
back to the sizes its last whole line records, so a kill at any instant loses
only the documents in flight: none is duplicated, no line is torn.

``OUT`` itself is replaced only at the end of a run that processed at least one
document (a temporary file renamed into place); a run in which nothing could be
read leaves an existing ``OUT`` as it was.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _journal_entries(done_path: Path, repair: bool = False) -> list[tuple[str, int | None, int | None]]:
    """(doc id, facts bytes, errors bytes) of the journal's whole lines; a torn last line is dropped
    (``repair``: and cut from the file). Lines of older runs hold the id alone: their sizes are None."""
    if not done_path.exists():
        return []
    data = done_path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if repair and len(whole) != len(data):
        os.truncate(done_path, len(whole))
    entries = []
    for line in whole.decode("utf-8").splitlines():
        if line.startswith("["):
            doc_id, facts, errors = json.loads(line)
            entries.append((doc_id, facts, errors))
        elif line.strip():
            entries.append((line.strip(), None, None))
    return entries


def done_ids(done_path: Path) -> list[str]:
    """The ids of the documents a run's journal (``OUT.done``) records as finished."""
    return [doc_id for doc_id, _, _ in _journal_entries(done_path)]


def _cut(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size > size:
        os.truncate(path, size)


class BatchOutputs:
    """Open the working files of a run on ``out`` (``resume``: continue the earlier run's files)."""

    def __init__(self, out: Path, fmt: str, errors_path: Path | None, resume: bool):
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out, self.fmt = out, fmt
        self.partial = out.with_name(out.name + ".partial.jsonl")
        self.done_path = out.with_name(out.name + ".done")
        self.errors_path = Path(errors_path) if errors_path else out.with_name(out.name + ".errors.jsonl")
        self.done: set[str] = set()
        self._occurrences: dict[str, int] = {}
        self.earlier_errors = 0  # error lines kept from the run resumed
        if resume:
            self._restore()
        else:
            for p in (self.partial, self.done_path, self.errors_path):
                p.unlink(missing_ok=True)
        self._facts = open(self.partial, "ab")
        self._errors = open(self.errors_path, "ab")
        self._journal = open(self.done_path, "ab")

    def _restore(self) -> None:
        if not self.partial.exists():  # the earlier run finished: its facts go back to the streamed file
            previous = self.out if self.fmt == "jsonl" else self.out.with_name(self.out.name + ".facts.jsonl")
            if previous.is_file():
                os.replace(previous, self.partial)
        entries = _journal_entries(self.done_path, repair=True)
        self.done = {doc_id for doc_id, _, _ in entries}
        if all(facts is not None for _, facts, _ in entries):  # not a journal of an older version
            facts, errors = (entries[-1][1], entries[-1][2]) if entries else (0, 0)
            _cut(self.partial, facts)
            _cut(self.errors_path, errors)
        if self.errors_path.exists():
            with open(self.errors_path, "rb") as fh:  # streamed: an errors file may be large
                self.earlier_errors = sum(1 for line in fh if line.endswith(b"\n"))

    def own_files(self) -> list[Path]:
        """The files this run writes or replaces: never read as its input (an OUT inside an input folder)."""
        out_facts = self.out.with_name(self.out.name + ".facts.jsonl")  # the JSONL kept beside csv/parquet
        return [self.out, out_facts, self.partial, self.done_path, self.errors_path]

    def admit(self, doc_id: str) -> tuple[str | None, str | None]:
        """(journal key, problem) of the next input document with ``doc_id``; key None: done by the run resumed.

        A repeated id is an error: the second document with id X is recorded under ``X#2``,
        so that every document has its own journal line and ``--resume`` stays exact.
        """
        n = self._occurrences[doc_id] = self._occurrences.get(doc_id, 0) + 1
        key = doc_id if n == 1 else f"{doc_id}#{n}"
        if key in self.done:
            return None, None
        return key, (None if n == 1 else f"duplicate document id: document {n} with id {doc_id!r}")

    def add_facts(self, doc_id: str, lines: str) -> None:
        """Commit one document's facts (JSON lines, each ending in a newline)."""
        self._facts.write(lines.encode("utf-8"))
        self._commit(doc_id)

    def add_error(self, doc_id: str, reason: str) -> None:
        """Commit one document as failed; ``--resume`` skips it too."""
        self._errors.write((json.dumps({"doc_id": doc_id, "error": reason}, ensure_ascii=False) + "\n").encode("utf-8"))
        self._commit(doc_id)

    def _commit(self, doc_id: str) -> None:
        self._facts.flush()
        self._errors.flush()
        entry = json.dumps([doc_id, self._facts.tell(), self._errors.tell()], ensure_ascii=False)
        self._journal.write((entry + "\n").encode("utf-8"))
        self._journal.flush()

    def close(self) -> None:
        for fh in (self._facts, self._errors, self._journal):
            fh.close()

    def __enter__(self) -> BatchOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def discard(self) -> None:
        """Nothing was usable: remove the streamed facts and the journal, keep the errors and ``OUT``."""
        self.close()
        self.partial.unlink(missing_ok=True)
        self.done_path.unlink(missing_ok=True)


# --- writers registered by name (--format) ------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """What ``--format NAME`` writes.

    ``document_lines(doc, facts)``: what one document adds to ``OUT.partial.jsonl`` (whole lines, so
    the journal and ``--resume`` work the same for every format); ``finish(partial, out, **options)``:
    make ``OUT`` from the streamed lines, atomically (jsonl renames them; the others keep them as
    ``OUT.facts.jsonl`` for ``--resume``). ``engines``: the engines that can write it.
    """

    name: str
    document_lines: Callable
    finish: Callable
    engines: tuple[str, ...] = ("local", "ray")


def fact_lines(doc, facts) -> str:
    """One JSON line per fact (the streamed form of jsonl, csv and parquet)."""
    return "".join(f.model_dump_json() + "\n" for f in facts)


def _table_writer(fmt: str) -> Callable[[], Writer]:
    def make() -> Writer:
        from caibao.extract import finish_table

        return Writer(fmt, fact_lines, functools.partial(finish_table, fmt=fmt))

    return make


def _store_writer() -> Writer:
    from caibao.store import FORMAT_NAME, document_lines, finish_store

    return Writer(FORMAT_NAME, document_lines, finish_store, engines=("local",))


# Name -> a function returning the writer (its module imported only when used): jsonl, one fact a
# line (the schema of docs/ANNOTATION_GUIDE.md); csv and parquet, flat columns (the Ray engine writes
# parquet as a folder of shards); store, a folder of Parquet files with canonical organisation and
# metric ids (caibao.store, queried by `caibao facts`).
WRITERS: dict[str, Callable[[], Writer]] = {
    "jsonl": _table_writer("jsonl"),
    "csv": _table_writer("csv"),
    "parquet": _table_writer("parquet"),
    "store": _store_writer,
}


def registered_writer(fmt: str) -> Writer:
    """The writer of ``--format fmt``; ValueError naming the known formats for any other name."""
    make = WRITERS.get(fmt)
    if make is None:
        raise ValueError(f"unknown format {fmt!r} ({', '.join(WRITERS)})")
    return make()
