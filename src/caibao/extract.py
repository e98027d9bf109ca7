"""Inference: articles in, normalised metric facts out.

``Extractor.load().extract(text)`` for one text; :func:`run_batch` for
archives: inputs are read lazily, documents batched for the model, facts
streamed to ``OUT.partial`` and renamed to ``OUT`` at the end, bad
documents reported in an errors file without stopping the batch, and
``--resume`` skips the documents listed in ``OUT.done``.
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

from caibao.corpus import _PARSERS, Boilerplate, detect_lang, html_to_lines
from caibao.facts import build_facts
from caibao.schema import Document, Fact

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 200_000
_CJK = re.compile(r"[\u3400-\u9fff]")


# The encoder's runtime: "onnx" (ONNX Runtime, see caibao.onnx_engine) or "torch".
RUNTIMES = ("torch", "onnx")
# The defaults are the optimised CPU path: the distilled 6-layer model in ONNX Runtime,
# 2.2x the speed of the full 12-layer model in PyTorch with no F1 lost on the test split
# (2.0x in PyTorch; benchmarks/extract_speed.py). ONNX Runtime costs ~0.35 GB more memory
# and a one-off export per model; without onnxruntime installed, PyTorch runs instead.
# The full model stays one `--model full` away.
DEFAULT_RUNTIME = "onnx"
# The bundled model used when none is given (caibao.model.BUNDLED_MODELS).
DEFAULT_MODEL = "distilled"


class Extractor:
    """The bundled (or a given) model plus the fact builder."""

    def __init__(self, loaded):
        self.loaded = loaded

    @classmethod
    def load(cls, model_path: str | Path | None = None, *, quantize: bool | None = None,
             num_threads: int | None = None, runtime: str | None = None) -> "Extractor":
        """``model_path``: a model folder or a bundled model's name ("full", "distilled"; default
        :data:`DEFAULT_MODEL`); ``runtime``: "torch" or "onnx" (default :data:`DEFAULT_RUNTIME`);
        ``quantize``: torch int8 only."""
        import torch

        from caibao.model import load_model, resolve_model_path

        runtime = runtime or DEFAULT_RUNTIME
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r} (use {' or '.join(RUNTIMES)})")
        if num_threads:
            torch.set_num_threads(num_threads)
        path = resolve_model_path(model_path, DEFAULT_MODEL)
        loaded = load_model(path)
        if quantize is None:
            quantize = bool(loaded.meta.get("quantize_default", False))
        if runtime == "onnx" and quantize:
            log.warning("int8 quantisation is a PyTorch path: running the encoder in PyTorch")
            runtime = "torch"
        elif runtime == "onnx" and not _onnx_installed():
            log.warning("onnxruntime/onnx is not installed: running the encoder in PyTorch instead")
            runtime = "torch"
        if runtime == "onnx":
            from caibao.onnx_engine import load_onnx_encoder

            loaded.encoder_runner = load_onnx_encoder(loaded.model, num_threads=num_threads)
        elif quantize:
            loaded.model = quantize_dynamic(loaded.model)
        return cls(loaded)

    def predict(self, docs: list[Document], batch_size: int = 16):
        from caibao.model import predict_documents

        return predict_documents(self.loaded, docs, batch_size=batch_size)

    def extract_documents(self, docs: list[Document], batch_size: int = 16) -> list[list[Fact]]:
        out = []
        for pred in self.predict(docs, batch_size):
            out.append(build_facts(pred.document, pred.entity_scores, pred.relation_scores))
        return out

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


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise ValueError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _file_docs(path: Path, doc_id: str, data: bytes, bp: Boilerplate) -> Iterator[InputDoc]:
    try:
        text = _decode(data)
    except ValueError as exc:
        yield InputDoc(None, str(exc), doc_id)
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                doc = Document(id=str(obj["id"]), text=str(obj["text"]), meta=obj.get("meta") or {})
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
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


def read_inputs(inputs: Iterable[str]) -> Iterator[InputDoc]:
    """Documents from files, folders (recursive), documents JSONL and '-' (stdin, one text)."""
    bp = Boilerplate.load()
    for item in inputs:
        if item == "-":
            yield from _file_docs(Path("stdin.txt"), "stdin", sys.stdin.buffer.read(), bp)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
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
                "value_start", "value_end", "metric_start", "metric_end", "sentence"]


def fact_row(f: Fact) -> dict:
    return {
        "doc_id": f.doc_id, "org": f.org.text if f.org else None, "org_inferred": f.org.inferred if f.org else None,
        "metric": f.metric.text, "value": f.value.text, "number": f.value.number, "unit": f.value.unit,
        "kind": f.value.kind, "basis": f.value.basis, "approx": f.value.approx, "low": f.value.low,
        "high": f.value.high, "period": f.period.text if f.period else None,
        "period_normalized": f.period.normalized if f.period else None,
        "period_inferred": f.period.inferred if f.period else None, "guidance": f.guidance,
        "confidence": f.confidence, "value_start": f.value.start, "value_end": f.value.end,
        "metric_start": f.metric.start, "metric_end": f.metric.end, "sentence": f.sentence,
    }


@dataclass
class BatchReport:
    documents: int = 0
    skipped: int = 0
    errors: int = 0
    facts: int = 0
    characters: int = 0
    seconds: float = 0.0


def _done_ids(done_path: Path) -> set[str]:
    if not done_path.exists():
        return set()
    return {line.strip() for line in done_path.read_text("utf-8").splitlines() if line.strip()}


def write_error(err_fh, done_fh, report: BatchReport, doc_id: str, reason: str) -> None:
    """One line of the errors file; the document counts as done (``--resume`` skips it)."""
    err_fh.write(json.dumps({"doc_id": doc_id, "error": reason}, ensure_ascii=False) + "\n")
    done_fh.write(doc_id + "\n")
    report.errors += 1


def prepare_outputs(out: Path, fmt: str, errors_path: Path | None, resume: bool) -> tuple[Path, Path, Path, set[str]]:
    """The streamed facts file, the done list and the errors file of a batch run, and the ids already done.

    A fresh run removes what an earlier run left; ``resume`` keeps it and,
    when the earlier run finished, moves its facts back to the streamed file.
    Both engines (local, Ray) share these semantics.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.jsonl")
    done_path = out.with_name(out.name + ".done")
    errors_path = Path(errors_path) if errors_path else out.with_name(out.name + ".errors.jsonl")
    if not resume:
        for p in (partial, done_path, errors_path):
            p.unlink(missing_ok=True)
        if out.exists() and out.is_file() and fmt == "jsonl":
            out.unlink()
    elif not partial.exists():
        previous = out if fmt == "jsonl" else out.with_name(out.name + ".facts.jsonl")
        if previous.exists() and previous.is_file():
            os.replace(previous, partial)
    done = _done_ids(done_path) if resume else set()
    return partial, done_path, errors_path, done


def run_batch(inputs: list[str], out: Path, *, extractor: Extractor | None = None, model_path: str | None = None,
              fmt: str = "jsonl", errors_path: Path | None = None, resume: bool = False, batch_size: int = 8,
              max_chars: int = DEFAULT_MAX_CHARS, progress: bool = True, quantize: bool | None = None,
              runtime: str | None = None) -> BatchReport:
    """Extract facts from every input document; see the module docstring for the guarantees."""
    from tqdm.auto import tqdm

    out = Path(out)
    partial, done_path, errors_path, done = prepare_outputs(out, fmt, errors_path, resume)
    extractor = extractor or Extractor.load(model_path, quantize=quantize, runtime=runtime)
    report = BatchReport()
    started = time.time()

    with open(partial, "a", encoding="utf-8") as facts_fh, open(done_path, "a", encoding="utf-8") as done_fh, \
            open(errors_path, "a", encoding="utf-8") as err_fh:
        bar = tqdm(desc="extract", unit="doc", disable=not progress)
        pending: list[Document] = []

        def record_error(doc_id: str, reason: str) -> None:
            write_error(err_fh, done_fh, report, doc_id, reason)

        def flush() -> None:
            if not pending:
                return
            results = extractor.extract_or_errors(pending, batch_size=batch_size)
            for d, facts in zip(pending, results):
                if isinstance(facts, Exception):
                    record_error(d.id, f"model failure: {type(facts).__name__}: {facts}")
                    continue
                for f in facts:
                    facts_fh.write(f.model_dump_json() + "\n")
                report.facts += len(facts)
                report.documents += 1
                report.characters += len(d.text)
                done_fh.write(d.id + "\n")
            facts_fh.flush()
            done_fh.flush()
            err_fh.flush()
            bar.update(len(pending))
            elapsed = max(1e-9, time.time() - started)
            bar.set_postfix(docs_s=f"{report.documents / elapsed:.2f}", facts=report.facts)
            pending.clear()

        for item in read_inputs(inputs):
            if item.doc_id in done:
                report.skipped += 1
                continue
            if item.doc is None:
                record_error(item.doc_id, item.error or "unreadable")
                bar.update(1)
                continue
            problem = document_problem(item.doc, max_chars)
            if problem:
                record_error(item.doc.id, problem)
                bar.update(1)
                continue
            pending.append(item.doc)
            if len(pending) >= batch_size:
                flush()
        flush()
        bar.close()
    report.seconds = round(time.time() - started, 2)
    _finish(partial, out, fmt)
    return report


def _finish(partial: Path, out: Path, fmt: str) -> None:
    """Turn the streamed JSONL into the requested format, atomically."""
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
