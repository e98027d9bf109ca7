"""Distributed runs: extraction on a Ray cluster, and device placement for multi-process work.

``caibao extract --engine ray`` (:func:`run_ray_batch`) keeps every
guarantee of the local engine (:func:`caibao.extract.run_batch`): the inputs
are read on the driver with :func:`~caibao.extract.read_inputs` (files,
folders, documents JSONL, ``-``), unreadable ones go to the errors file, the
readable documents are handed to Ray Data and processed by ``map_batches``
with an actor pool, one model replica (:class:`ExtractWorker`) per actor.
A document the model cannot handle comes back as an error row instead of
failing its batch. The driver streams the results into ``OUT.partial.jsonl``
(one ``Fact.model_dump_json()`` a line), the journal ``OUT.done`` and the errors
file (``{"doc_id", "error"}`` lines) as they arrive, through the same
:class:`caibao.outputs.BatchOutputs`, so ``--resume`` skips what an
interrupted run finished, and renames the facts into place at the end
(``--format csv``: one CSV file as the local engine writes; ``--format
parquet``: a folder ``OUT`` of Parquet shards with the local engine's
columns). Facts come in completion order, not input order.

Without an address a local Ray is started on this machine's cores, without
dashboard and with every server on the loopback interface; with
``--address`` the run joins that cluster, whose workers need caibao
installed and the model folder at the same path (the bundled model is in the
package).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from caibao.extract import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MODEL,
    BatchLedger,
    BatchReport,
    Extractor,
    check_inputs,
    document_problem,
    fact_row,
    read_inputs,
)
from caibao.outputs import BatchOutputs, registered_writer
from caibao.io import atomic_dir
from caibao.schema import Document, Fact

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The distributed engine cannot run as asked (Ray missing, too few CPUs, no model...)."""


# --- device placement ---------------------------------------------------------------------


class EncoderOnDevice(nn.Module):
    """Runs a (shared) encoder on ``device``; inputs and the returned hidden states stay on the CPU."""

    def __init__(self, inner: nn.Module, device):
        super().__init__()
        self.inner = inner
        self.device = torch.device(device)

    def forward(self, input_ids, attention_mask):
        out = self.inner(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device))
        return SimpleNamespace(last_hidden_state=out.last_hidden_state.float().cpu())


def device_view(model, device):
    """A CaibaoModel that runs ``model``'s encoder on ``device`` and its heads on the CPU.

    The prediction code builds its tensors on the CPU; this view lets it use
    a GPU for the encoder (the heavy part) unchanged. The encoder is moved to
    ``device`` and shared with ``model``, not copied; the small heads are
    copied to the CPU. For a CPU device the model itself is returned.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return model
    return _view(model, device)


def _view(model, device):
    encoder = model.encoder.to(device)
    view = copy.copy(model)
    modules = {}
    for name, child in model.named_children():
        modules[name] = EncoderOnDevice(encoder, device) if name == "encoder" else copy.deepcopy(child).cpu()
    object.__setattr__(view, "_modules", modules)
    return view


# --- the actor ------------------------------------------------------------------------------


def process_documents(extractor: Extractor, docs: list[Document], *, batch_size: int, max_chars: int) -> list[dict]:
    """One result row per document: facts as JSONL text, or the reason it failed (never raises per document)."""
    rows: list[dict | None] = [None] * len(docs)
    good: list[int] = []
    for k, d in enumerate(docs):
        problem = document_problem(d, max_chars)
        if problem:
            rows[k] = _row(d, error=problem)
        else:
            good.append(k)
    if good:
        results = extractor.extract_or_errors([docs[k] for k in good], batch_size=batch_size)
        for k, facts in zip(good, results):
            d = docs[k]
            if isinstance(facts, Exception):
                rows[k] = _row(d, error=f"model failure: {type(facts).__name__}: {facts}")
                continue
            try:
                lines = "".join(f.model_dump_json() + "\n" for f in facts)
            except Exception as exc:  # noqa: BLE001 - e.g. text that cannot be serialised
                rows[k] = _row(d, error=f"model failure: {type(exc).__name__}: {exc}")
                continue
            rows[k] = _row(d, facts=lines, n_facts=len(facts))
    return rows  # type: ignore[return-value]


def _row(doc: Document, *, facts: str = "", n_facts: int = 0, error: str = "") -> dict:
    return {"doc_id": doc.id, "facts": facts, "n_facts": n_facts, "chars": len(doc.text), "error": error}


class ExtractWorker:
    """Ray Data actor: one model replica, called with batches of documents (numpy format)."""

    def __init__(self, model_path: str, quantize: bool | None, num_threads: int, batch_size: int, max_chars: int,
                 use_gpu: bool = False, runtime: str | None = None):
        device = "cpu"
        if use_gpu:
            if torch.cuda.is_available():
                device = "cuda"
                quantize = False  # int8 dynamic quantisation is a CPU kernel
                runtime = "torch"  # the encoder runs on the GPU in PyTorch
            else:
                log.warning("no CUDA device visible to this worker: running on the CPU")
        self.extractor = Extractor.load(model_path, quantize=quantize, num_threads=num_threads, runtime=runtime)
        self.extractor.loaded.model = device_view(self.extractor.loaded.model, device)
        self.batch_size = batch_size
        self.max_chars = max_chars

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        docs = [Document(id=str(i), text=str(t), meta=json.loads(str(m)))
                for i, t, m in zip(batch["doc_id"], batch["text"], batch["meta"])]
        rows = process_documents(self.extractor, docs, batch_size=self.batch_size, max_chars=self.max_chars)
        return {
            "doc_id": np.array([r["doc_id"] for r in rows], dtype=object),
            "facts": np.array([r["facts"] for r in rows], dtype=object),
            "n_facts": np.array([r["n_facts"] for r in rows], dtype=np.int64),
            "chars": np.array([r["chars"] for r in rows], dtype=np.int64),
            "error": np.array([r["error"] for r in rows], dtype=object),
        }


# --- Ray -------------------------------------------------------------------------------------


def _import_ray():
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EngineError(f"the ray engine needs Ray Data: pip install 'caibao[ray]' ({exc})") from None
    return sys.modules["ray"]


def start_local_ray(num_cpus: int | None = None, num_gpus: int | None = None):
    """Start a local Ray on this machine (no dashboard, servers on loopback only); returns the ray module."""
    # Ray resolves "127.0.0.1" to the machine's address and binds its servers
    # to it (all interfaces); with this setting (inherited by the processes it
    # starts) the node's address is the loopback one and so are its servers.
    flag = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    before = os.environ.get(flag)
    os.environ[flag] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray = _import_ray()
        from ray._private import ray_constants

        saved, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
        try:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus, include_dashboard=False,
                     configure_logging=True, logging_level=logging.WARNING)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = saved
    finally:
        if before is None:
            os.environ.pop(flag, None)
        else:
            os.environ[flag] = before
    return ray


def _connect(address: str | None, num_cpus: int | None) -> tuple[object, bool]:
    """(ray, whether this call started it): reuses an initialised Ray, else joins ``address`` or starts one."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    if address:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        start_local_ray(num_cpus)
    return ray, True


def _pool_size(ray, num_workers: int | None, cpus_per_worker: float, gpus_per_worker: float, local: bool) -> int:
    res = ray.cluster_resources()
    cpus, gpus = res.get("CPU", 0.0), res.get("GPU", 0.0)
    fit = int(cpus // cpus_per_worker) if cpus_per_worker > 0 else 10**6
    if gpus_per_worker > 0:
        fit = min(fit, int(gpus // gpus_per_worker))
    if num_workers is None:
        if fit < 1:
            raise EngineError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: not enough for one worker "
                              f"with {cpus_per_worker:g} CPUs and {gpus_per_worker:g} GPUs")
        return fit
    if num_workers < 1:
        raise EngineError("--num-workers must be at least 1")
    if num_workers > fit:
        msg = (f"{num_workers} workers x ({cpus_per_worker:g} CPUs, {gpus_per_worker:g} GPUs) do not fit the Ray "
               f"cluster's {cpus:g} CPUs and {gpus:g} GPUs")
        if local:
            raise EngineError(msg)
        log.warning("%s (waiting for the cluster to grow)", msg)
    return num_workers


_QUIET = ("enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats")


def run_ray_batch(inputs: list[str], out: Path, *, model_path: str | None = None, fmt: str = "jsonl",
                  errors_path: Path | None = None, resume: bool = False, batch_size: int = 8,
                  max_chars: int = DEFAULT_MAX_CHARS, progress: bool = True, quantize: bool | None = None,
                  runtime: str | None = None, address: str | None = None, num_workers: int | None = None,
                  cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, num_cpus: int | None = None) -> BatchReport:
    """:func:`caibao.extract.run_batch` on Ray Data: same outputs, errors file and resume (see the module doc).

    ``num_workers`` model replicas (default: as many as the cluster's CPUs /
    GPUs allow), each with ``cpus_per_worker`` CPUs (its torch threads) and
    ``gpus_per_worker`` GPUs (the encoder then runs on the GPU). ``num_cpus``
    sizes a local Ray (default: this machine's cores). A Ray that is already
    initialised in this process is used as it is and left running.
    """
    writer = registered_writer(fmt)
    model_dir = _checked_options(fmt, writer, model_path, quantize, cpus_per_worker, gpus_per_worker)
    out = Path(out)
    check_inputs(inputs)
    report, started, workers = BatchReport(), time.time(), 1
    with BatchOutputs(out, fmt, errors_path, resume) as outputs:
        ledger = BatchLedger(outputs, report, started)
        # The driver reads (cheap; the workers check a document's size); documents go to the workers as rows.
        items = [{"doc_id": d.id, "text": d.text, "meta": json.dumps(d.meta, default=str)}
                 for d in ledger.admitted(inputs, lambda d: None)]
        if items:
            ray, started_here = _connect(address, num_cpus)
            try:
                workers = min(_pool_size(ray, num_workers, cpus_per_worker, gpus_per_worker, local=address is None),
                              len(items))  # no idle replicas
                worker_kwargs = {"model_path": str(model_dir), "quantize": quantize,
                                 "num_threads": max(1, int(cpus_per_worker)), "batch_size": batch_size,
                                 "max_chars": max_chars, "use_gpu": gpus_per_worker > 0, "runtime": runtime}
                with _quiet_ray_data(ray, progress):
                    _extract_on_ray(ray, items, worker_kwargs, workers, batch_size, cpus_per_worker,
                                    gpus_per_worker, ledger, progress)
            finally:
                if started_here:
                    ray.shutdown()
    report.seconds = round(time.time() - started, 2)
    if not report.usable:
        outputs.discard()
    elif fmt == "parquet":  # one shard per worker, not the local engine's single file
        _finish_parquet_shards(outputs.partial, out, shards=workers)
    else:
        writer.finish(outputs.partial, out)
    return report


def _checked_options(fmt: str, writer, model_path: str | None, quantize: bool | None, cpus_per_worker: float,
                     gpus_per_worker: float) -> Path:
    """The model folder, once the Ray options are known to make sense together (else EngineError)."""
    from caibao.persistence import CONFIG_FILE, resolve_model_path

    if "ray" not in writer.engines:
        raise EngineError(f"--format {fmt} runs with --engine local only")
    if cpus_per_worker <= 0 or gpus_per_worker < 0:
        raise EngineError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    if gpus_per_worker > 0 and quantize:
        raise EngineError("--quantize is int8 on the CPU: not with --gpus-per-worker")
    model_dir = resolve_model_path(model_path, DEFAULT_MODEL)
    if not (model_dir / CONFIG_FILE).exists():
        raise EngineError(f"{model_dir}: not a caibao model directory (no {CONFIG_FILE})")
    return model_dir.resolve()


@contextlib.contextmanager
def _quiet_ray_data(ray, progress: bool):
    """Ray Data without its own progress bars and stats (the driver's bar counts documents), its
    settings restored afterwards."""
    import ray.data

    if not progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    saved_ctx = {k: getattr(ctx, k) for k in _QUIET}
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = progress
    ctx.enable_auto_log_stats = False
    try:
        yield
    finally:
        for k, v in saved_ctx.items():
            setattr(ctx, k, v)


def _extract_on_ray(ray, items: list[dict], worker_kwargs: dict, workers: int, batch_size: int,
                    cpus_per_worker: float, gpus_per_worker: float, ledger: BatchLedger, progress: bool) -> None:
    """The documents through a pool of :class:`ExtractWorker` replicas; each result into the ledger."""
    from tqdm.auto import tqdm

    n_blocks = min(len(items), max(2 * workers, math.ceil(len(items) / (4 * batch_size))))
    ds = ray.data.from_items(items, override_num_blocks=n_blocks).map_batches(
        ExtractWorker, fn_constructor_kwargs=worker_kwargs, batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker or None,
    )
    ledger.bar = tqdm(total=len(items), desc=f"extract (ray, {workers} workers)", unit="doc", disable=not progress)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for doc_id, facts, n_facts, chars, error in zip(batch["doc_id"], batch["facts"], batch["n_facts"],
                                                          batch["chars"], batch["error"]):
            if error:
                ledger.error(str(doc_id), str(error))
            else:
                ledger.done(str(doc_id), str(facts), int(n_facts), int(chars))
    ledger.bar.close()


def _finish_parquet_shards(partial: Path, out: Path, shards: int) -> None:
    """``OUT/part-NNNNN.parquet`` with the local engine's columns, written to a temporary folder then renamed.

    The streamed JSONL is kept as ``OUT.facts.jsonl`` for ``--resume``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caibao.extract import FACT_COLUMNS

    rows = [fact_row(Fact.model_validate_json(line)) for line in partial.read_text("utf-8").splitlines() if line]
    table = pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in FACT_COLUMNS})
    with atomic_dir(out) as tmp:
        n = max(1, min(shards, table.num_rows))
        per = math.ceil(table.num_rows / n) if table.num_rows else 0
        for k in range(n):
            pq.write_table(table.slice(k * per, per) if per else table, tmp / f"part-{k:05d}.parquet")
    os.replace(partial, out.with_name(out.name + ".facts.jsonl"))
