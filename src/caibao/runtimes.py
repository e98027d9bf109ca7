"""The encoder's runtimes (a registry) and the automatic choice for this host.

A runtime decides how the encoder and token head run; the relation head,
decoding and fact building are the same PyTorch/Python code for all:

* ``torch``: fp32 PyTorch (the reference);
* ``torch-bf16``: PyTorch with a bf16 copy of the encoder's weights, fast
  where the CPU has AMX or AVX512-BF16, emulated (slow) elsewhere;
* ``onnx``: fp32 ONNX Runtime (the graph exported once per model and cached);
* ``onnx-int8``: that graph with dynamically quantised int8 weights (per
  channel), fast with VNNI or AMX-INT8.

``auto`` (the default) walks the preference order of the host's class
(``resources/runtimes.yaml``, from ``benchmarks/extract_speed.py`` runs) and
takes the first runtime that the host has the instructions for and whose
test-split entity and fact F1, recorded with the model (``metrics.json``,
``runtimes``), are within ``max_f1_loss`` of fp32's. A reduced-precision
runtime never measured for a model is never chosen automatically.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import yaml

from caibao.hardware import Host

log = logging.getLogger(__name__)

AUTO = "auto"
REFERENCE = "torch"
SETTINGS_FILE = Path(__file__).parent / "resources" / "runtimes.yaml"
METRICS_FILE = "metrics.json"


class TorchBF16Encoder:
    """``(input_ids, attention_mask) -> (hidden states, tag probabilities)`` with a bf16 copy of the encoder.

    The copy's weights are bf16 once, instead of ``torch.autocast`` casting them
    again at every call (the casts cost as much as a small encoder's matmuls).
    The token head, relation head and decoder stay fp32, as for every runtime.
    """

    def __init__(self, model, dtype: torch.dtype = torch.bfloat16):
        self.model = model
        self.encoder = copy.deepcopy(model.encoder).to(dtype).eval()

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        return hidden, self.model.token_logits(hidden).softmax(-1)


def _attach_torch(loaded, num_threads: int | None) -> None:
    loaded.encoder_runner = None


def _attach_torch_bf16(loaded, num_threads: int | None) -> None:
    loaded.encoder_runner = TorchBF16Encoder(loaded.model, torch.bfloat16)


def _attach_onnx(loaded, num_threads: int | None) -> None:
    from caibao.onnx_engine import load_onnx_encoder

    loaded.encoder_runner = load_onnx_encoder(loaded.model, num_threads=num_threads)


def _attach_onnx_int8(loaded, num_threads: int | None) -> None:
    from caibao.onnx_engine import load_onnx_encoder

    loaded.encoder_runner = load_onnx_encoder(loaded.model, num_threads=num_threads, int8=True)


@dataclass(frozen=True)
class Runtime:
    name: str
    numerics: str  # fp32 | bf16 | int8
    fast_with: tuple[str, ...]  # CPU flags (any) that make it fast; empty: every CPU
    needs_onnx: bool
    attach: Callable[[object, int | None], None]  # sets LoadedModel.encoder_runner


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("torch", "fp32", (), False, _attach_torch),
    Runtime("torch-bf16", "bf16", ("amx_bf16", "avx512_bf16"), False, _attach_torch_bf16),
    Runtime("onnx", "fp32", (), True, _attach_onnx),
    Runtime("onnx-int8", "int8", ("amx_int8", "avx512_vnni", "avx_vnni"), True, _attach_onnx_int8),
)}
CHOICES = (AUTO, *RUNTIMES)


@dataclass(frozen=True)
class Settings:
    max_f1_loss: float
    preference: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (host flags, any of; runtimes in order)


@lru_cache(maxsize=1)
def settings(path: Path = SETTINGS_FILE) -> Settings:
    raw = yaml.safe_load(path.read_text("utf-8"))
    classes = []
    for k, item in enumerate(raw["preference"]):
        order = tuple(item["order"])
        unknown = [r for r in order if r not in RUNTIMES]
        if unknown:
            raise ValueError(f"{path}: preference {k + 1}: unknown runtime {unknown[0]!r} (known: {', '.join(RUNTIMES)})")
        classes.append((tuple(item.get("when") or ()), order))
    if classes[-1][0]:
        raise ValueError(f"{path}: the last preference must have no 'when' (it is every other host's)")
    return Settings(float(raw["max_f1_loss"]), tuple(classes))


def preference_for(host: Host, conf: Settings | None = None) -> tuple[str, ...]:
    """The runtimes to try on ``host``, fastest first: the first class whose flags the host has."""
    conf = conf or settings()
    return next(order for flags, order in conf.preference if not flags or host.has(*flags))


def recorded_quality(model_dir: Path | str) -> dict[str, dict[str, float]]:
    """``{runtime: {"entity": F1, "fact": F1}}`` on the test split, as bundled with the model (empty: none)."""
    try:
        metrics = json.loads((Path(model_dir) / METRICS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return metrics.get("runtimes") or {}


def quality_ok(name: str, quality: dict[str, dict[str, float]], max_loss: float) -> bool:
    """fp32 runtimes always; others only when measured within ``max_loss`` of fp32 PyTorch on entity and fact F1."""
    if RUNTIMES[name].numerics == "fp32":
        return True
    ref, got = quality.get(REFERENCE), quality.get(name)
    if not ref or not got:
        return False
    return all(ref[k] - got[k] <= max_loss for k in ("entity", "fact"))


def choose(host: Host, quality: dict[str, dict[str, float]], onnx_available: bool = True,
           conf: Settings | None = None) -> tuple[str, str]:
    """``(runtime, why)`` for ``auto`` on ``host`` with a model whose runtimes scored ``quality``."""
    conf = conf or settings()
    skipped = []
    for name in preference_for(host, conf):
        rt = RUNTIMES[name]
        if rt.fast_with and not host.has(*rt.fast_with):
            skipped.append(f"{name}: no {'/'.join(rt.fast_with)}")
        elif rt.needs_onnx and not onnx_available:
            skipped.append(f"{name}: onnxruntime not installed")
        elif not quality_ok(name, quality, conf.max_f1_loss):
            skipped.append(f"{name}: test F1 not measured or over {conf.max_f1_loss * 100:.1f} points below fp32")
        else:
            return name, "; ".join([f"host {host.isa}", *skipped])
    return REFERENCE, "; ".join([f"host {host.isa}", *skipped])


def attach(loaded, name: str, num_threads: int | None = None) -> None:
    """Run ``loaded``'s encoder with the runtime ``name`` (not ``auto``: resolve it with :func:`choose`)."""
    RUNTIMES[name].attach(loaded, num_threads)
