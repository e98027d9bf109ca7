"""Inference: articles in, normalised metric facts out.

``Extractor.load().extract(text)`` for one text; :func:`run_batch` for
archives: inputs are read lazily, documents batched for the model, facts
streamed to ``OUT.partial.jsonl`` and renamed to ``OUT`` at the end, bad
documents reported in an errors file without stopping the batch, and
``--resume`` skips the documents the journal ``OUT.done`` records (exact
under a kill at any instant: :mod:`caibao.outputs`). A missing input is an
error before anything is touched; a run in which no document could be read
leaves ``OUT`` as it was (:attr:`BatchReport.exit_code`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from caibao.chunking import PIECE_CHARS, groups_in_flight, merge_predictions, split_document
from caibao.corpus import _PARSERS, Boilerplate, detect_lang, html_to_lines
from caibao.calibration import Calibrator
from caibao.facts import build_facts
from caibao.io import InputError
from caibao.hardware import detect
from caibao.outputs import BatchOutputs, registered_writer
from caibao.runtimes import AUTO, CHOICES, attach, choose, recorded_quality
from caibao.runtimes import RUNTIMES as RUNTIME_SPECS
from caibao.text import UndecodableError, clean_text, decode_bytes
from caibao.schema import Document, Fact

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 200_000
_CJK = re.compile(r"[\u3400-\u9fff]")


# The encoder's runtime: a name of caibao.runtimes.RUNTIMES, or "auto" (the default): the
# fastest one this host supports that loses no more than the allowed F1 (caibao.runtimes).
# Without onnxruntime installed, PyTorch runs instead of an ONNX runtime.
RUNTIMES = CHOICES
DEFAULT_RUNTIME = AUTO
# The bundled model used when none is given (caibao.persistence.BUNDLED_MODELS).
DEFAULT_MODEL = "distilled"


def _resolve_runtime(runtime: str, model_dir: Path, quantize: bool) -> str:
    """The runtime to run: ``auto`` chosen for this host (logged once per model), ONNX only where installed."""
    if quantize and runtime != "torch":
        log.info("PyTorch dynamic int8 (--quantize) runs in the torch runtime")
        return "torch"
    onnx = _onnx_installed()
    if runtime == AUTO:
        runtime, why = choose(detect(), recorded_quality(model_dir), onnx_available=onnx)
        if (str(model_dir), runtime) not in _LOGGED:
            _LOGGED.add((str(model_dir), runtime))
            log.info("runtime %s for %s (auto: %s)", runtime, Path(model_dir).name, why)
    if RUNTIME_SPECS[runtime].needs_onnx and not onnx:
        log.warning("onnxruntime/onnx is not installed: running the encoder in PyTorch instead")
        return "torch"
    return runtime


_LOGGED: set[tuple[str, str]] = set()


class Extractor:
    """The bundled (or a given) model plus the fact builder."""

    def __init__(self, loaded, calibrator: Calibrator | None = None):
        self.loaded = loaded
        self.calibrator = calibrator

    @classmethod
    def load(cls, model_path: str | Path | None = None, *, quantize: bool | None = None,
             num_threads: int | None = None, runtime: str | None = None) -> "Extractor":
        """``model_path``: a model folder or a bundled model's name ("full", "distilled"; default
        :data:`DEFAULT_MODEL`); ``runtime``: one of :data:`RUNTIMES` (default ``auto``, chosen for
        this host and logged once); ``quantize``: PyTorch dynamic int8 (the ``torch`` runtime only)."""
        import torch

        from caibao.persistence import load_model, resolve_model_path

        runtime = runtime or DEFAULT_RUNTIME
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r} (use {', '.join(RUNTIMES)})")
        if num_threads:
            torch.set_num_threads(num_threads)
        path = resolve_model_path(model_path, DEFAULT_MODEL)
        calibrator = Calibrator.load(path)  # a broken calibration file fails before the slow load
        loaded = load_model(path)
        if quantize is None:
            quantize = bool(loaded.meta.get("quantize_default", False))
        runtime = _resolve_runtime(runtime, path, quantize)
        attach(loaded, runtime, num_threads)
        if runtime == "torch" and quantize:
            loaded.model = quantize_dynamic(loaded.model)
        loaded.meta["runtime"] = runtime
        return cls(loaded, calibrator)

    def predict(self, docs: list[Document], batch_size: int = 16):
        """Predictions for ``docs``: long documents in pieces, a bounded number of characters in the
        model at once (:mod:`caibao.chunking`), so memory does not grow with a document's length."""
        from caibao.model import predict_documents

        pieces = [(i, offset, piece) for i, d in enumerate(docs) for offset, piece in split_document(d, PIECE_CHARS)]
        parts: list[list] = [[] for _ in docs]
        for group in groups_in_flight([len(p.text) for _, _, p in pieces]):
            chosen = [pieces[k] for k in group]
            for (i, offset, _), pred in zip(chosen, predict_documents(self.loaded, [p for _, _, p in chosen],
                                                                      batch_size=batch_size)):
                parts[i].append((offset, pred))
        return [merge_predictions(d, parts[i]) for i, d in enumerate(docs)]

    def extract_documents(self, docs: list[Document], batch_size: int = 16) -> list[list[Fact]]:
        return [self.facts(pred) for pred in self.predict(docs, batch_size)]

    def facts(self, pred) -> list[Fact]:
        """The facts of one prediction, with calibrated confidences when the model has a calibrator."""
        facts = build_facts(pred.document)
        return self.calibrator.apply(pred.document, facts) if self.calibrator else facts

    def extract_or_errors(self, docs: list[Document], batch_size: int = 16) -> list[list[Fact] | Exception]:
        """Facts per document; a document the model fails on gets its exception instead.

        The batch is tried whole first; if it fails, each document alone, so
        that one bad document never takes the others down.
        """
        try:
            return list(self.extract_documents(docs, batch_size=batch_size))
        except Exception:  # noqa: BLE001 - retried one by one below
            results: list[list[Fact] | Exception] = []
            for d in docs:
                try:
                    results.append(self.extract_documents([d], batch_size=batch_size)[0])
                except Exception as exc:  # noqa: BLE001 - reported per document
                    log.exception("document %s failed", d.id)
                    results.append(exc)
            return results

    def extract(self, text: str, doc_date: str | None = None, doc_id: str = "doc") -> list[Fact]:
        doc = Document(id=doc_id, text=text, meta={"date": doc_date})
        return self.extract_documents([doc])[0]


def _onnx_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def quantize_dynamic(model):
    """int8 dynamic quantisation of the encoder's Linear layers (weights int8, activations on the fly).

    The heads stay fp32: they cost nothing and their logits decide the spans.
    """
    import torch

    model.encoder = torch.ao.quantization.quantize_dynamic(model.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return model


# --- reading inputs -----------------------------------------------------------------------


@dataclass
class InputDoc:
    doc: Document | None
    error: str | None = None
    doc_id: str = ""


TEXT_SUFFIXES = {".txt", ".md", ".html", ".htm", ".jsonl"}


def _file_docs(path: Path, doc_id: str, data: bytes, bp: Boilerplate) -> Iterator[InputDoc]:
    """The documents of one input file, their texts decoded and cleaned (:mod:`caibao.text`)."""
    try:
        text, encoding = decode_bytes(data)
    except UndecodableError as exc:
        yield InputDoc(None, str(exc), doc_id)
        return
    for item in _parsed_docs(path, doc_id, text, bp):
        if item.doc is not None:
            meta = {**item.doc.meta, **({"encoding": encoding} if encoding != "utf-8" else {})}
            item.doc = item.doc.model_copy(update={"text": clean_text(item.doc.text), "meta": meta})
        yield item


def _parsed_docs(path: Path, doc_id: str, text: str, bp: Boilerplate) -> Iterator[InputDoc]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or obj.get("id") is None:
                    raise ValueError('an object with an "id" and a string "text" is needed')
                doc = Document(id=str(obj["id"]), text=obj["text"], meta=obj.get("meta") or {})
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                yield InputDoc(None, f"line {lineno}: not a document ({type(exc).__name__}: {exc})",
                               f"{doc_id}:{lineno}")
                continue
            yield InputDoc(doc, None, doc.id)
        return
    if suffix in (".html", ".htm"):
        body = "\n".join(html_to_lines(text))
        yield InputDoc(Document(id=doc_id, text=body, meta={"source": str(path)}), None, doc_id)
        return
    if text.startswith("---\n"):
        try:
            raws = _PARSERS["jekyll"](path, text.replace("\r\n", "\n"), bp)
        except ValueError as exc:
            yield InputDoc(None, str(exc), doc_id)
            return
        raw = raws[0]
        body = "\n".join(([raw.title] if raw.title else []) + raw.body_lines)
        yield InputDoc(Document(id=doc_id, text=body, meta={"source": str(path), "date": raw.meta.get("date")}),
                       None, doc_id)
        return
    yield InputDoc(Document(id=doc_id, text=text.replace("\r\n", "\n"), meta={"source": str(path)}), None, doc_id)


def read_inputs(inputs: Iterable[str], skip: Iterable[Path] = ()) -> Iterator[InputDoc]:
    """Documents from files, folders (recursive), documents JSONL and '-' (stdin, one text).

    ``skip``: files a folder's walk passes over (a run's own output files, written inside it).
    """
    bp = Boilerplate.load()
    skipped = {p.resolve() for p in skip}
    for item in inputs:
        if item == "-":
            yield from _file_docs(Path("stdin.txt"), "stdin", sys.stdin.buffer.read(), bp)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                           and p.resolve() not in skipped)
        elif path.is_file():
            files = [path]
        else:
            yield InputDoc(None, "no such file or directory", str(path))
            continue
        for f in files:
            yield from _file_docs(f, str(f), f.read_bytes(), bp)


def document_problem(doc: Document, max_chars: int) -> str | None:
    """Why a document cannot be processed (None when it can)."""
    if not doc.text.strip():
        return "empty document"
    if len(doc.text) > max_chars:
        return f"too long: {len(doc.text)} characters (limit {max_chars}; split it or raise --max-chars)"
    if not _CJK.search(doc.text) or detect_lang(doc.text) != "zh":
        return "no Chinese text (the model reads Chinese news only)"
    return None


# --- batch run ----------------------------------------------------------------------------


FACT_COLUMNS = ["doc_id", "org", "org_inferred", "metric", "value", "number", "unit", "kind", "basis", "approx",
                "low", "high", "period", "period_normalized", "period_inferred", "guidance", "confidence",
                "score", "value_start", "value_end", "metric_start", "metric_end", "sentence"]


def fact_row(f: Fact) -> dict:
    return {
        "doc_id": f.doc_id, "org": f.org.text if f.org else None, "org_inferred": f.org.inferred if f.org else None,
        "metric": f.metric.text, "value": f.value.text, "number": f.value.number, "unit": f.value.unit,
        "kind": f.value.kind, "basis": f.value.basis, "approx": f.value.approx, "low": f.value.low,
        "high": f.value.high, "period": f.period.text if f.period else None,
        "period_normalized": f.period.normalized if f.period else None,
        "period_inferred": f.period.inferred if f.period else None, "guidance": f.guidance,
        "confidence": f.confidence, "score": f.score, "value_start": f.value.start, "value_end": f.value.end,
        "metric_start": f.metric.start, "metric_end": f.metric.end, "sentence": f.sentence,
    }


@dataclass
class BatchReport:
    documents: int = 0
    skipped: int = 0
    errors: int = 0
    earlier_errors: int = 0  # failed in the run resumed (still in the errors file)
    facts: int = 0
    characters: int = 0
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        """Something was processed now or by the run resumed; else ``OUT`` is left as it was."""
        return self.documents > 0 or self.skipped > 0

    @property
    def exit_code(self) -> int:
        """0: every document processed; 1: some failed (see the errors file); 2: none usable."""
        return 2 if not self.usable else 1 if self.errors or self.earlier_errors else 0


class BatchLedger:
    """A batch run's bookkeeping, the same for the local and the Ray engine: every document ends in
    the outputs (its facts, or its error; :class:`caibao.outputs.BatchOutputs` makes that exact
    under --resume), in the report's counts and on the progress bar."""

    def __init__(self, outputs: BatchOutputs, report: BatchReport, started: float):
        self.outputs, self.report, self.started = outputs, report, started
        self.bar = None
        report.earlier_errors = outputs.earlier_errors

    def admitted(self, inputs: list[str], problem_of) -> Iterator[Document]:
        """The readable input documents this run has to do: those done by the run resumed are
        skipped, the unreadable and those ``problem_of`` refuses go to the errors file."""
        for item in read_inputs(inputs, skip=self.outputs.own_files()):
            key, problem = self.outputs.admit(item.doc_id)
            if key is None:
                self.report.skipped += 1
                continue
            if problem is None:
                problem = (item.error or "unreadable") if item.doc is None else problem_of(item.doc)
            if problem:
                self.error(key, problem)
                continue
            yield item.doc

    def error(self, doc_id: str, reason: str) -> None:
        self.outputs.add_error(doc_id, reason)
        self.report.errors += 1
        self._advance()

    def done(self, doc_id: str, lines: str, n_facts: int, chars: int) -> None:
        self.outputs.add_facts(doc_id, lines)
        self.report.facts += n_facts
        self.report.documents += 1
        self.report.characters += chars
        self._advance()

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
            elapsed = max(1e-9, time.time() - self.started)
            # No redraw of its own: update() redraws at tqdm's own interval (once a document is a hot path).
            self.bar.set_postfix(docs_s=f"{self.report.documents / elapsed:.2f}", facts=self.report.facts,
                                 refresh=False)


def check_inputs(inputs: Iterable[str]) -> None:
    """Every input path exists: a mistyped one is an error before any output is touched."""
    for item in inputs:
        if item != "-" and not Path(item).exists():
            raise InputError(item, "no such file or directory")


def run_batch(inputs: list[str], out: Path, *, extractor: Extractor | None = None, model_path: str | None = None,
              fmt: str = "jsonl", errors_path: Path | None = None, resume: bool = False, batch_size: int = 8,
              max_chars: int = DEFAULT_MAX_CHARS, progress: bool = True, quantize: bool | None = None,
              runtime: str | None = None, writer_options: dict | None = None) -> BatchReport:
    """Extract facts from every input document; see the module docstring for the guarantees.

    ``fmt``: a writer registered in :data:`caibao.outputs.WRITERS` (jsonl, csv, parquet, store); its
    ``finish`` gets ``writer_options`` at the end (``store``: ``registry_files``)."""
    from tqdm.auto import tqdm

    out = Path(out)
    check_inputs(inputs)
    writer = registered_writer(fmt)
    extractor = extractor or Extractor.load(model_path, quantize=quantize, runtime=runtime)
    report, started = BatchReport(), time.time()
    with BatchOutputs(out, fmt, errors_path, resume) as outputs:
        ledger = BatchLedger(outputs, report, started)
        ledger.bar = tqdm(desc="extract", unit="doc", disable=not progress)
        pending: list[Document] = []
        for doc in ledger.admitted(inputs, lambda d: document_problem(d, max_chars)):
            pending.append(doc)
            if len(pending) >= batch_size:
                _extract_pending(extractor, pending, batch_size, writer, ledger)
        _extract_pending(extractor, pending, batch_size, writer, ledger)
        ledger.bar.close()
    report.seconds = round(time.time() - started, 2)
    if report.usable:
        writer.finish(outputs.partial, out, **(writer_options or {}))
    else:
        outputs.discard()
    return report


def _extract_pending(extractor: Extractor, pending: list[Document], batch_size: int, writer, ledger: BatchLedger) -> None:
    """Extract the pending documents (one failing document spares the others) and empty the list."""
    for d, facts in zip(pending, extractor.extract_or_errors(pending, batch_size=batch_size) if pending else []):
        if isinstance(facts, Exception):
            ledger.error(d.id, f"model failure: {type(facts).__name__}: {facts}")
        else:
            ledger.done(d.id, writer.document_lines(d, facts), len(facts), len(d.text))
    pending.clear()


def finish_table(partial: Path, out: Path, fmt: str) -> None:
    """Turn the streamed JSONL into ``OUT`` as jsonl, csv or parquet, atomically."""
    from caibao.io import atomic_writer

    if fmt == "jsonl":
        os.replace(partial, out)
        return
    rows = [fact_row(Fact.model_validate_json(line)) for line in partial.read_text("utf-8").splitlines() if line]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=FACT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        with atomic_writer(out) as fh:
            fh.write(buf.getvalue())
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in FACT_COLUMNS})
        with atomic_writer(out, "wb", encoding=None) as fh:
            pq.write_table(table, fh)
    else:
        raise ValueError(f"unknown format {fmt!r} (jsonl, csv, parquet)")
    # Keep the JSONL beside it so that --resume still works.
    os.replace(partial, out.with_name(out.name + ".facts.jsonl"))
