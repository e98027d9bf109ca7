"""ONNX Runtime for the encoder forward (+ token head): exported once from the loaded model, cached, reused.

Only ``(input_ids, attention_mask) -> (hidden states, tag probabilities)``
runs in ONNX Runtime; tokenisation, windows, the relation head and the
decoding stay the PyTorch code of :mod:`caibao.model`, so the two runtimes
differ only in the encoder's arithmetic.

The graph is exported with eager attention (faster in ONNX Runtime than the
exported SDPA pattern) and run with ``ORT_ENABLE_ALL``. It is cached under
``$CAIBAO_CACHE_DIR/onnx`` (default ``~/.cache/caibao/onnx``) in a file named
by a hash of the model's weights and config, written atomically, with its
sha256 beside it: a missing, partial or corrupted file is rebuilt.

Tried and left out (``benchmarks/extract_speed.py``, bundled model): ONNX
Runtime's BERT fusions (``onnxruntime.transformers.optimizer``: fused
attention, GELU, skip-layer-norm) were no faster than ``ORT_ENABLE_ALL`` on
the plain graph. Per-channel dynamic int8 of the MatMuls (``int8=True``, the
``onnx-int8`` runtime of :mod:`caibao.runtimes`) is kept as a runtime: whether
it is accurate enough is measured per model and recorded with it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from caibao.hardware import detect

log = logging.getLogger(__name__)

# Bump when the export changes, so that cached graphs are rebuilt.
EXPORT_VERSION = 1
_INPUTS = ("input_ids", "attention_mask")
_OUTPUTS = ("hidden", "probs")


def default_onnx_dir() -> Path:
    from caibao.encoder import default_cache_dir

    return default_cache_dir().parent / "onnx"


def model_key(model) -> str:
    """Hash of everything the exported graph depends on: weights, config, versions."""
    import onnxruntime

    h = hashlib.sha256()
    meta = {"export": EXPORT_VERSION, "torch": torch.__version__, "ort": onnxruntime.__version__,
            "config": model.cfg.model_dump(), "encoder": model.encoder.config.to_dict()}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class _EncoderAndTags(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model.encode(input_ids, attention_mask)
        return hidden, self.model.token_logits(hidden).softmax(-1)


def export_onnx(model, f) -> None:
    """The encoder + token head as ONNX (dynamic batch and sequence axes), written to ``f`` (path or file)."""
    model = copy.deepcopy(model).eval()  # the export switches attention and merges adapters: not the caller's model
    if hasattr(model.encoder, "merge_and_unload"):  # LoRA: one plain weight per Linear
        model.encoder = model.encoder.merge_and_unload()
    model.encoder.set_attn_implementation("eager")
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    dynamic = {name: {0: "batch", 1: "tokens"} for name in _INPUTS + _OUTPUTS}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_EncoderAndTags(model), (ids, mask), f, input_names=list(_INPUTS),
                          output_names=list(_OUTPUTS), dynamic_axes=dynamic, opset_version=17, dynamo=False)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def build_graph(model, out: Path) -> None:
    """Export into ``out`` atomically, then write its sha256 beside it."""
    from caibao.io import atomic_writer

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out, "wb", encoding=None) as fh:
        export_onnx(model, fh)
    with atomic_writer(out.with_suffix(".sha256")) as fh:
        fh.write(_sha256(out) + "\n")


def _session(path: Path, num_threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = num_threads or torch.get_num_threads()
    so.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: faster on a shared CPU, and PyTorch's decode runs in between.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """``(input_ids, attention_mask) -> (hidden states, tag probabilities)`` as torch tensors, run by ORT."""

    def __init__(self, session, path: Path | None = None):
        self.session = session
        self.path = path

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, probs = self.session.run(list(_OUTPUTS), {"input_ids": input_ids.numpy().astype(np.int64),
                                                          "attention_mask": attention_mask.numpy().astype(np.int64)})
        return torch.from_numpy(hidden), torch.from_numpy(probs)


def build_int8_graph(fp32: Path, out: Path, reduce_range: bool = False) -> None:
    """``fp32``'s MatMul weights quantised to int8 (dynamic, per channel) into ``out``, atomically, sha256 beside.
    ``reduce_range``: 7-bit weights, for a CPU without VNNI, whose 8-bit products saturate their 16-bit
    sums (ONNX Runtime's advice: the tag probabilities then stay within the runtime's tolerance)."""
    import os
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from caibao.io import atomic_writer

    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's advice on pre-processing goes to the root logger
    try:
        quantize_dynamic(str(fp32), tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
                         op_types_to_quantize=["MatMul"])
        os.replace(tmp, out)
    finally:
        root.setLevel(level)
        Path(tmp).unlink(missing_ok=True)
    with atomic_writer(out.with_suffix(".sha256")) as fh:
        fh.write(_sha256(out) + "\n")


def _cached(path: Path, build) -> Path:
    """``path`` if it matches its recorded sha256, else rebuilt by ``build(path)``."""
    digest = path.with_suffix(".sha256")
    if path.is_file() and digest.is_file():
        try:
            if _sha256(path) == digest.read_text().strip():
                return path
            raise ValueError("sha256 mismatch")
        except (OSError, ValueError) as exc:
            log.warning("cached ONNX graph %s is unusable (%s); rebuilding it", path, exc)
    log.info("building the ONNX graph %s", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build(path)
    return path


def load_onnx_encoder(model, *, num_threads: int | None = None, cache_dir: Path | None = None,
                      int8: bool = False, _rebuilt: bool = False) -> OnnxEncoder:
    """The cached ONNX graph of this model (built on first use, rebuilt when missing or corrupted);
    ``int8``: its int8-weight variant (:func:`build_int8_graph`), cached beside it."""
    cache_dir = Path(cache_dir) if cache_dir else default_onnx_dir()
    key = model_key(model)
    path = _cached(cache_dir / f"{key}.onnx", lambda out: build_graph(model, out))
    if int8:
        reduce_range = not detect().has("avx512_vnni", "avx_vnni", "amx_int8")
        fp32 = path
        path = _cached(cache_dir / f"{key}.int8{'.r7' if reduce_range else ''}.onnx",
                       lambda out: build_int8_graph(fp32, out, reduce_range))
    try:
        return OnnxEncoder(_session(path, num_threads), path)
    except Exception as exc:  # noqa: BLE001 - a graph ORT cannot load is rebuilt, once
        if _rebuilt:
            raise
        log.warning("cached ONNX graph %s cannot be loaded (%s); rebuilding it", path, exc)
    path.unlink(missing_ok=True)
    path.with_suffix(".sha256").unlink(missing_ok=True)
    return load_onnx_encoder(model, num_threads=num_threads, cache_dir=cache_dir, int8=int8, _rebuilt=True)
