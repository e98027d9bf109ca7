"""The model: a pretrained encoder, a BIO token head and a relation head.

* Tokens: the document is tokenised once with character offsets. With
  ``pretokenize: cjk_chars`` every CJK character, digit group and ASCII
  word is its own pre-token, so entity boundaries always fall between
  tokens; a span's characters are recovered exactly from the offsets.
* Windows: documents longer than ``max_length`` are cut into overlapping
  windows; each token's tag comes from the window where it is most central,
  so nothing is lost at the seams.
* Relations: candidate pairs are entities of the same sentence whose types
  fit a relation signature. A pair is represented by the pooled head span,
  pooled tail span, pooled text between them, both types and a bucketed
  distance, and classified into "none" or one of the compatible labels.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from caibao.config import ExperimentConfig
from caibao.io import InputError
from caibao.decode import (complete_suffixes, drop_currency_orgs, drop_short_metrics, merge_ranges,
                           split_coordinated_metrics, split_glued_orgs, tag_declared_names, trim_leading_words)
from caibao.schema import (
    BIO_TAGS, ENTITY_LABELS, RELATION_LABELS, RELATION_SIGNATURES, Document, Entity, Relation, sentence_bounds,
    sentence_index,
)

TAG2ID = {t: i for i, t in enumerate(BIO_TAGS)}
LABEL2ID = {lab: i for i, lab in enumerate(ENTITY_LABELS)}
# Relation classes: 0 = no relation, then the labels in schema order.
REL_CLASSES = ("none",) + RELATION_LABELS
REL2ID = {r: i for i, r in enumerate(REL_CLASSES)}
# (head label, tail label) -> the relation classes allowed for that pair.
PAIR_CLASSES: dict[tuple[str, str], list[int]] = {}
for _rel, _sig in RELATION_SIGNATURES.items():
    PAIR_CLASSES.setdefault(_sig, [0]).append(REL2ID[_rel])

# Pre-tokens: a CJK char (cjk_chars) or CJK run (scripts), a digit group (with
# inner separators), an ASCII word, or any other single non-space character.
_PRETOKEN_TAIL = r"|[0-9０-９]+(?:[.,．][0-9０-９]+)*|[A-Za-zＡ-Ｚａ-ｚ]+|[^\s]"
_PRETOKEN_PATTERNS = {
    "cjk_chars": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]" + _PRETOKEN_TAIL,
    "scripts": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+" + _PRETOKEN_TAIL,
}


# --- tokenizer ------------------------------------------------------------------------


def load_tokenizer(path: str, pretokenize: str):
    """The encoder's fast tokenizer, with the project's pre-tokenisation applied."""
    from tokenizers import Regex, pre_tokenizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if not tok.is_fast:
        raise ValueError(f"{path}: caibao needs a fast tokenizer (offset mappings)")
    # Whole documents are tokenised once and cut into windows afterwards.
    tok.model_max_length = 10**9
    if pretokenize in _PRETOKEN_PATTERNS:
        backend = tok.backend_tokenizer
        current = backend.pre_tokenizer
        split = pre_tokenizers.Split(Regex(_PRETOKEN_PATTERNS[pretokenize]), behavior="isolated")
        if current is not None and type(current).__name__ == "Metaspace":
            # SentencePiece marks word starts with "▁"; after our split every CJK char
            # would become "▁" + char. Only the text's first piece gets the marker, as
            # in unsplit text.
            current = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        # Keep the encoder's own pre-tokenizer (BertPreTokenizer for WordPiece) after our split.
        backend.pre_tokenizer = pre_tokenizers.Sequence([split, current] if current is not None else [split])
    return tok


@dataclass
class Encoded:
    """One document tokenised: token ids and their character offsets (no specials)."""

    ids: list[int]
    offsets: list[tuple[int, int]]


def encode_document(tokenizer, text: str) -> Encoded:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pairs = list(zip(enc["input_ids"], enc["offset_mapping"]))
    ids, offsets = [], []
    for k, (tid, (s, e)) in enumerate(pairs):
        # Metaspace emits a bare "▁" piece at the start: it covers no character of
        # its own (empty, or a prefix of the next piece's offsets). Drop it, so that
        # every character belongs to exactly one token.
        if e <= s or (k + 1 < len(pairs) and pairs[k + 1][1][0] == s and pairs[k + 1][1][1] >= e):
            continue
        ids.append(tid)
        offsets.append((s, e))
    return Encoded(ids, offsets)


def windows(n_tokens: int, max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) token windows of at most max_tokens, consecutive ones sharing `stride` tokens."""
    if n_tokens <= max_tokens:
        return [(0, n_tokens)]
    step = max_tokens - stride
    out = []
    start = 0
    while True:
        end = min(start + max_tokens, n_tokens)
        out.append((start, end))
        if end == n_tokens:
            return out
        start += step


def best_window(windows_: list[tuple[int, int]], lo: int, hi: int) -> int | None:
    """Index of the window containing tokens [lo, hi) farthest from its edges (None if none)."""
    # Windows come in text order, starts and ends increasing: those holding [lo, hi) are a run.
    first = bisect.bisect_left(windows_, hi, key=lambda w: w[1])
    best, best_margin = None, -1
    for k in range(first, len(windows_)):
        s, e = windows_[k]
        if s > lo:
            break
        if hi <= e:
            margin = min(lo - s, e - hi)
            if margin > best_margin:
                best, best_margin = k, margin
    return best


def token_tags(doc: Document, enc: Encoded) -> list[int]:
    """BIO tag id per token from gold character spans (a token takes the label of its first char)."""
    char_label = [None] * len(doc.text)
    char_begin = [False] * len(doc.text)
    for e in doc.entities:
        for i in range(e.start, e.end):
            char_label[i] = e.label
        char_begin[e.start] = True
    tags = []
    prev_label = None
    for s, e in enc.offsets:
        label = char_label[s]
        if label is None:
            # An entity that starts inside this token: tag the token as its beginning.
            inner = next((i for i in range(s, e) if char_begin[i]), None)
            if inner is not None:
                label = char_label[inner]
                tags.append(TAG2ID[f"B-{label}"])
                prev_label = label
                continue
            tags.append(TAG2ID["O"])
            prev_label = None
            continue
        begin = char_begin[s] or prev_label != label
        tags.append(TAG2ID[f"{'B' if begin else 'I'}-{label}"])
        prev_label = label
    return tags


def decode_tags(tags: list[int], offsets: list[tuple[int, int]], text: str) -> list[tuple[int, int, str, list[int]]]:
    """BIO tags -> character spans (start, end, label, token indices); I after O/other starts a span.

    B-X right after a token of X continues that span instead of starting one: the
    token classifier scores each token alone and often puts B inside a name
    (每股|净收益, 总净|营收), while the guide almost never has two spans of one label
    side by side (14 of 9,400+ gold spans). On the dev split this decoding took the
    bundled model from 0.784 to 0.829 entity F1 and 0.363 to 0.486 fact F1.
    """
    spans: list[tuple[int, int, str, list[int]]] = []
    cur: list | None = None
    for k, t in enumerate(tags):
        tag = BIO_TAGS[t]
        if tag == "O":
            cur = None
            continue
        label = tag.split("-", 1)[1]
        # cur is the span of token k - 1 (None after O): same label continues it, B or I.
        if cur is None or cur[2] != label:
            cur = [offsets[k][0], offsets[k][1], label, [k]]
            spans.append(cur)
        else:
            cur[1] = offsets[k][1]
            cur[3].append(k)
    out = []
    for s, e, label, toks in spans:
        s, e = trim_span(text, s, e)
        if e > s:
            out.append((s, e, label, toks))
    return out


# No span of the guide starts or ends on these (9,422 gold spans: 的 ends one METRIC,
# nothing else). A piece can still carry them past a boundary ("日的" in
# 截至2021年12月31日的3850万人), so decoding trims them.
_EDGE_CHARS = frozenset("的、，,。；;：:“”‘’\"'")
_OPENING, _CLOSING = "（(", "）)"


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past whitespace, particles and punctuation that never bound a span.

    A bracket is trimmed only when unbalanced inside the span, so 复星实业(香港)有限公司 keeps its own.
    """
    while start < end:
        ch, span = text[start], text[start:end]
        if ch.isspace() or ch in _EDGE_CHARS or (ch in _OPENING and not any(c in _CLOSING for c in span)):
            start += 1
            continue
        ch = text[end - 1]
        if ch.isspace() or ch in _EDGE_CHARS or (ch in _CLOSING and not any(c in _OPENING for c in span)):
            end -= 1
            continue
        break
    return start, end


def char_to_token(enc: Encoded, n_chars: int) -> list[int]:
    """For each character, the index of the token covering it (-1 when none, e.g. spaces)."""
    index = [-1] * n_chars
    for k, (s, e) in enumerate(enc.offsets):
        for i in range(s, min(e, n_chars)):
            index[i] = k
    return index


def span_tokens(c2t: list[int], start: int, end: int) -> tuple[int, int] | None:
    toks = [t for t in c2t[start:end] if t >= 0]
    return (min(toks), max(toks) + 1) if toks else None


def distance_bucket(d: int, n_buckets: int) -> int:
    """Log-spaced buckets of the token distance between two spans."""
    if d <= 0:
        return 0
    return min(n_buckets - 1, 1 + int(math.log2(d)))


@dataclass
class Candidate:
    head: int  # index into the document's entity list
    tail: int
    classes: list[int]  # allowed relation class ids (0 = none first)


def candidate_pairs(text: str, entities: list[Entity], token_spans: list[tuple[int, int]] | None = None,
                    max_span: int | None = None) -> list[Candidate]:
    """All same-sentence pairs whose labels fit a relation signature.

    With ``token_spans`` (each entity's token range, in entity order, which is
    text order) and ``max_span``, only pairs whose two entities lie within
    ``max_span`` tokens, the most one window of the encoder holds: the others
    could not be scored anyway, and a "sentence" of a hundred thousand
    characters without punctuation would make the pairs quadratic.
    """
    sent = sentence_index(text)
    by_sentence: dict[int, list[int]] = {}
    for i, e in enumerate(entities):
        if sent[e.start] >= 0:
            by_sentence.setdefault(sent[e.start], []).append(i)
    starts = {k: [token_spans[j][0] for j in members] for k, members in by_sentence.items()} if token_spans else {}
    out = []
    for i, h in enumerate(entities):
        members = by_sentence.get(sent[h.start], [])  # no entry for -1 (a line break)
        if token_spans is not None and max_span is not None and members:
            lo, hi = token_spans[i]
            keys = starts[sent[h.start]]
            members = members[bisect.bisect_left(keys, hi - max_span) : bisect.bisect_right(keys, lo + max_span)]
            members = [j for j in members if max(hi, token_spans[j][1]) - min(lo, token_spans[j][0]) <= max_span]
        for j in members:
            if i == j:
                continue
            classes = PAIR_CLASSES.get((h.label, entities[j].label))
            if classes:
                out.append(Candidate(i, j, classes))
    return out


# --- the network ----------------------------------------------------------------------


class CaibaoModel(nn.Module):
    def __init__(self, encoder: nn.Module, hidden_size: int, cfg: ExperimentConfig):
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.encoder = encoder
        self.dropout = nn.Dropout(m.dropout)
        self.token_head = nn.Linear(hidden_size, len(BIO_TAGS))
        self.type_emb = nn.Embedding(len(ENTITY_LABELS), m.type_dim)
        self.dist_emb = nn.Embedding(m.distance_buckets, m.type_dim)
        pair_in = 3 * hidden_size + 3 * m.type_dim
        self.relation_head = nn.Sequential(
            nn.Linear(pair_in, m.relation_hidden),
            nn.GELU(),
            nn.Dropout(m.dropout),
            nn.Linear(m.relation_hidden, len(REL_CLASSES)),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pairs: torch.Tensor | None = None,
                return_hidden: bool = False) -> tuple[torch.Tensor, ...]:
        """Token logits [B, T, tags] and pair logits [P, classes] in one call (training; DDP hooks fire here),
        and the last hidden states [B, T, hidden] if ``return_hidden`` (distillation)."""
        hidden = self.encode(input_ids, attention_mask)
        logits = self.token_logits(hidden)
        rel = hidden.new_zeros((0, len(REL_CLASSES))) if pairs is None else self.pair_logits(hidden, pairs)
        return (logits, rel, hidden) if return_hidden else (logits, rel)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state

    def token_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.token_head(self.dropout(hidden))

    def pair_logits(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """pairs: [P, 8] rows (batch, head_lo, head_hi, tail_lo, tail_hi, head_type, tail_type, bucket)."""
        if pairs.numel() == 0:
            return hidden.new_zeros((0, len(REL_CLASSES)))
        h = self.dropout(hidden)
        # Mean pooling over [lo, hi) via a cumulative sum (vectorised over all pairs).
        csum = torch.cat([h.new_zeros(h.size(0), 1, h.size(2)), h.cumsum(dim=1)], dim=1)

        def pool(b, lo, hi):
            hi = torch.maximum(hi, lo + 1)
            return (csum[b, hi] - csum[b, lo]) / (hi - lo).unsqueeze(-1).to(h.dtype)

        b = pairs[:, 0]
        hlo, hhi, tlo, thi = pairs[:, 1], pairs[:, 2], pairs[:, 3], pairs[:, 4]
        head = pool(b, hlo, hhi)
        tail = pool(b, tlo, thi)
        # The text between the spans ("同比增长" vs "为") decides level vs change.
        blo = torch.minimum(hhi, thi)
        bhi = torch.maximum(hlo, tlo)
        between_lo = torch.minimum(blo, bhi)
        between_hi = torch.maximum(blo, bhi)
        empty = between_hi <= between_lo
        between = pool(b, between_lo, between_hi)
        between = torch.where(empty.unsqueeze(-1), torch.zeros_like(between), between)
        feats = torch.cat(
            [head, tail, between, self.type_emb(pairs[:, 5]), self.type_emb(pairs[:, 6]), self.dist_emb(pairs[:, 7])],
            dim=-1,
        )
        return self.relation_head(feats)


def class_mask(classes_list: list[list[int]], device=None) -> torch.Tensor:
    """[P, C] additive mask: 0 for allowed classes, -inf for the others."""
    mask = torch.full((len(classes_list), len(REL_CLASSES)), float("-inf"), device=device)
    for k, classes in enumerate(classes_list):
        mask[k, classes] = 0.0
    return mask


# --- building, saving, loading --------------------------------------------------------


def build_encoder_module(cfg: ExperimentConfig, encoder_path: str) -> tuple[nn.Module, int]:
    from transformers import AutoConfig, AutoModel

    enc_cfg = AutoConfig.from_pretrained(encoder_path)
    # The pooler (unused here) is loaded too: dropping it makes transformers print a load report.
    encoder = AutoModel.from_pretrained(encoder_path)
    if cfg.model.keep_layers is not None:
        keep_layers(encoder, cfg.model.keep_layers)
    encoder = apply_finetuning(encoder, cfg)
    return encoder, enc_cfg.hidden_size


def keep_layers(encoder: nn.Module, indices: list[int]) -> None:
    """Drop every transformer layer of ``encoder`` but ``indices`` (in place); kept layers are renumbered 0..k-1."""
    layers = encoder.encoder.layer
    if max(indices) >= len(layers):
        raise ValueError(f"keep_layers {indices}: the encoder has only {len(layers)} layers")
    encoder.encoder.layer = nn.ModuleList([layers[i] for i in indices])
    encoder.config.num_hidden_layers = len(indices)


def _top_layers(encoder: nn.Module, n: int | None) -> list[int]:
    total = encoder.config.num_hidden_layers
    return list(range(total)) if n is None else list(range(max(0, total - n), total))


def apply_finetuning(encoder: nn.Module, cfg: ExperimentConfig) -> nn.Module:
    method = cfg.model.finetune
    layers = _top_layers(encoder, cfg.model.train_top_layers)
    if method == "frozen":
        for p in encoder.parameters():
            p.requires_grad_(False)
        return encoder
    if method == "full":
        if cfg.model.train_top_layers is not None:
            keep = tuple(f"layer.{i}." for i in layers)
            for name, p in encoder.named_parameters():
                p.requires_grad_(any(k in name for k in keep))
        return encoder
    from peft import LoraConfig, get_peft_model

    lc = cfg.model.lora
    peft_cfg = LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=lc.target_modules,
                          bias="none", layers_to_transform=layers if cfg.model.train_top_layers else None)
    return get_peft_model(encoder, peft_cfg)


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
            "config": model.cfg.model_dump(),
            "bio_tags": list(BIO_TAGS),
            "relation_classes": list(REL_CLASSES),
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


@dataclass
class LoadedModel:
    model: CaibaoModel
    tokenizer: object
    cfg: ExperimentConfig
    path: Path
    meta: dict = field(default_factory=dict)
    # (input_ids, attention_mask) -> (hidden states, tag probabilities) in place of the
    # PyTorch encoder + token head (e.g. caibao.onnx_engine.OnnxEncoder); None: PyTorch.
    encoder_runner: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None


def build_model(cfg: ExperimentConfig, encoder_path: str | None = None) -> tuple[CaibaoModel, object]:
    from caibao.encoder import resolve_encoder

    encoder_path = encoder_path or resolve_encoder(cfg.encoder.name)
    tokenizer = load_tokenizer(encoder_path, cfg.encoder.pretokenize)
    encoder, hidden = build_encoder_module(cfg, encoder_path)
    return CaibaoModel(encoder, hidden, cfg), tokenizer


def check_label_scheme(path: Path, meta: dict) -> None:
    """Fail with a clear message when a saved model's labels are not this code's (its heads' sizes
    and the meaning of every output would not match)."""
    for key, ours in (("bio_tags", BIO_TAGS), ("relation_classes", REL_CLASSES)):
        saved = meta.get(key)
        if saved is not None and list(saved) != list(ours):
            extra = sorted(set(saved) - set(ours)) or sorted(set(ours) - set(saved)) or ["(another order)"]
            raise InputError(path / CONFIG_FILE, f"the model's {key.replace('_', ' ')} ({len(saved)}) are not this "
                                                 f"code's ({len(ours)}): {', '.join(map(str, extra[:5]))} differ")


def load_model(path: Path | str, encoder_path: str | None = None) -> LoadedModel:
    path = Path(path)
    cfg_file = path / CONFIG_FILE
    if not cfg_file.exists():
        raise InputError(path, f"not a caibao model folder (no {CONFIG_FILE}), nor a bundled model "
                               f"({', '.join(BUNDLED_MODELS)})")
    meta = json.loads(cfg_file.read_text("utf-8"))
    check_label_scheme(path, meta)
    cfg = ExperimentConfig.model_validate(meta["config"])
    model, tokenizer = build_model(cfg, encoder_path or meta.get("encoder_path_override"))
    state = dequantize_state(load_file(str(path / MODEL_FILE)))
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


# --- prediction -----------------------------------------------------------------------


@dataclass
class Prediction:
    """A document with predicted entities/relations and their probabilities."""

    document: Document
    entity_scores: dict[str, float]
    relation_scores: dict[tuple[str, str, str], float]
    # Token-level uncertainty summary, used to order review queues.
    mean_token_entropy: float = 0.0


def _window_batch(rows: list[list[int]], tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id or 0
    width = max(len(r) for r in rows) + 2
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        seq = [cls_id] + r + [sep_id]
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def pair_rows(batch_index: int, win_start: int, head_tok: tuple[int, int], tail_tok: tuple[int, int],
              head_label: str, tail_label: str, n_buckets: int) -> list[int]:
    """One row of CaibaoModel.pair_logits' input; token positions shifted by the window and [CLS]."""
    hlo, hhi = head_tok[0] - win_start + 1, head_tok[1] - win_start + 1
    tlo, thi = tail_tok[0] - win_start + 1, tail_tok[1] - win_start + 1
    gap = max(tlo - hhi, hlo - thi, 0)
    return [batch_index, hlo, hhi, tlo, thi, LABEL2ID[head_label], LABEL2ID[tail_label],
            distance_bucket(gap, n_buckets)]


def _allowed_transitions() -> np.ndarray:
    """[from, to] mask of the IOB2 grammar: I-X only after B-X or I-X."""
    n = len(BIO_TAGS)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(BIO_TAGS):
        if tag.startswith("I-"):
            label = tag[2:]
            for i, prev in enumerate(BIO_TAGS):
                allowed[i, j] = prev in (f"B-{label}", f"I-{label}")
    return allowed


# Log-space transition scores [from, to] (0 allowed, -inf not) and the tags a sequence may start with.
_TRANSITIONS = np.where(_allowed_transitions(), 0.0, -np.inf)
_START_ALLOWED = np.array([not t.startswith("I-") for t in BIO_TAGS])
_TAG_RANGE = np.arange(len(BIO_TAGS))


def viterbi_bio(token_probs: torch.Tensor) -> list[int]:
    """The most probable tag sequence that obeys IOB2 (no I-X after O or another label).

    Plain argmax leaves fragments ("营收分", a lone I-), which cost both
    precision and recall under strict span matching; this is a CRF decode
    with fixed, hard transitions.
    """
    return viterbi_bio_batch([token_probs])[0]


def viterbi_bio_batch(token_probs: list[torch.Tensor]) -> list[list[int]]:
    """:func:`viterbi_bio` of several documents at once ([tokens, tags] each), one step per token
    position for all of them: the loop runs as many times as the longest document has tokens."""
    out: list[list[int]] = [[] for _ in token_probs]
    live = [i for i, p in enumerate(token_probs) if len(p)]
    if not live:
        return out
    ends = np.array([len(token_probs[i]) - 1 for i in live])
    # NumPy, not torch: the loop runs once per token and torch's per-call overhead dominated it.
    logp = np.zeros((len(live), int(ends.max()) + 1, len(BIO_TAGS)))
    for row, i in enumerate(live):
        logp[row, : ends[row] + 1] = np.log(np.maximum(token_probs[i].float().numpy(), 1e-12))
    score = np.where(_START_ALLOWED, logp[:, 0], -np.inf)
    final = score.copy()  # each document's scores at its last token
    rows_ending = {t: np.flatnonzero(ends == t) for t in set(ends.tolist())}
    back = np.zeros(logp.shape, dtype=np.int64)
    for t in range(1, logp.shape[1]):
        cand = score[:, :, None] + _TRANSITIONS  # [document, from, to]
        back[:, t] = cand.argmax(1)
        score = cand.max(1) + logp[:, t]
        if t in rows_ending:
            final[rows_ending[t]] = score[rows_ending[t]]
    for row, i in enumerate(live):
        tags = [int(final[row].argmax())]
        for t in range(ends[row], 0, -1):
            tags.append(int(back[row, t, tags[-1]]))
        out[i] = tags[::-1]
    return out


def metric_sentence_ends(text: str, entities: list[Entity]) -> dict[str, int]:
    """METRIC id -> the end of its sentence (as :func:`caibao.schema.sentence_bounds` splits them)."""
    bounds = sentence_bounds(text)
    starts = [s for s, _ in bounds]
    return {e.id: bounds[bisect.bisect_right(starts, e.start) - 1][1] for e in entities if e.label == "METRIC"}


def one_metric_per_value(relations: list[Relation], scores: dict[tuple[str, str, str], float]) -> list[Relation]:
    """Keep only the most probable metric_value/metric_change relation into each VALUE.

    A value measures one metric (1 of 3,418 gold VALUEs has two), but pairs are
    scored independently and a value between two metrics often gets both; on the
    dev split this removed 100 such doubles and added 2-3 points of fact F1.
    """
    best: dict[str, Relation] = {}
    for r in relations:
        if r.label in ("metric_value", "metric_change"):
            cur = best.get(r.tail)
            if cur is None or scores[(r.head, r.tail, r.label)] > scores[(cur.head, cur.tail, cur.label)]:
                best[r.tail] = r
    return [r for r in relations if r.label not in ("metric_value", "metric_change") or best[r.tail] is r]


def gather_window_probs(wins: list[tuple[int, int]], probs_by_win: list[torch.Tensor], n: int) -> torch.Tensor:
    """[n, tags] per-token probabilities, each from the window where the token is most central.

    ``probs_by_win[w]`` has one row per position of window ``w`` including [CLS] at 0.
    """
    # The same choice as best_window(wins, k, k + 1) for every token at once (ties: the first window).
    k = torch.arange(n).unsqueeze(1)
    starts = torch.tensor([s for s, _ in wins])
    ends = torch.tensor([e for _, e in wins])
    margin = torch.minimum(k - starts, ends - k - 1)
    margin = torch.where((k >= starts) & (k < ends), margin, torch.full_like(margin, -1))
    best = margin.argmax(1)
    rows = torch.cat([p[1 : 1 + e - s] for p, (s, e) in zip(probs_by_win, wins)])
    first_row = torch.cumsum(ends - starts, 0) - (ends - starts)
    return rows[first_row[best] + torch.arange(n) - starts[best]]


@torch.inference_mode()
def predict_documents(loaded: LoadedModel, docs: list[Document], batch_size: int = 16) -> list[Prediction]:
    """Run the model over whole documents (any length) and decode entities and relations.

    The windows of all given documents are sorted by length and batched
    together, each batch padded only to its longest window.
    """
    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.cfg
    model.eval()
    max_tokens = cfg.model.max_length - 2
    encs = [encode_document(tok, d.text) for d in docs]
    wins_of = [windows(len(e.ids), max_tokens, cfg.model.stride) if e.ids else [] for e in encs]
    jobs = [(i, w) for i, wins in enumerate(wins_of) for w in range(len(wins))]
    jobs.sort(key=lambda j: -(wins_of[j[0]][j[1]][1] - wins_of[j[0]][j[1]][0]))
    hidden_of: dict[tuple[int, int], torch.Tensor] = {}
    probs_of: dict[tuple[int, int], torch.Tensor] = {}
    for b0 in range(0, len(jobs), batch_size):
        chunk = jobs[b0 : b0 + batch_size]
        rows = [encs[i].ids[wins_of[i][w][0] : wins_of[i][w][1]] for i, w in chunk]
        ids, mask = _window_batch(rows, tok)
        if loaded.encoder_runner is not None:
            hidden, probs = loaded.encoder_runner(ids, mask)
        else:
            hidden = model.encode(ids, mask)
            probs = model.token_logits(hidden).softmax(-1)
        for k, job in enumerate(chunk):
            n = len(rows[k]) + 2
            hidden_of[job] = hidden[k : k + 1, :n]
            probs_of[job] = probs[k, :n]
    token_probs = [gather_window_probs(wins, [probs_of[(i, w)] for w in range(len(wins))], len(enc.ids))
                   if enc.ids else torch.zeros(0, len(BIO_TAGS)) for i, (enc, wins) in enumerate(zip(encs, wins_of))]
    tags = viterbi_bio_batch(token_probs)
    return [
        _decode_document(model, cfg, doc, enc, wins, [hidden_of[(i, w)] for w in range(len(wins))],
                         token_probs[i], tags[i])
        for i, (doc, enc, wins) in enumerate(zip(docs, encs, wins_of))
    ]


def _decode_document(model: CaibaoModel, cfg: ExperimentConfig, doc: Document, enc: Encoded,
                     wins: list[tuple[int, int]], hidden_by_win: list[torch.Tensor],
                     token_probs: torch.Tensor, tags: list[int]) -> Prediction:
    if not enc.ids:
        return Prediction(Document(id=doc.id, text=doc.text, meta=doc.meta), {}, {})
    n_buckets = cfg.model.distance_buckets
    entropy = float(-(token_probs * token_probs.clamp_min(1e-9).log()).sum(-1).mean())
    spans = [(s, e, label) for s, e, label, _ in decode_tags(tags, enc.offsets, doc.text)]
    spans = merge_ranges(doc.text, trim_leading_words(doc.text, complete_suffixes(doc.text, spans)))
    spans = drop_short_metrics(drop_currency_orgs(doc.text, spans))
    spans = tag_declared_names(doc.text, spans)
    c2t = char_to_token(enc, len(doc.text))
    # One tensor call for all spans: a small torch op per entity costs more than the op itself.
    top_prob = token_probs.max(-1).values.numpy()
    entities, ent_tokens, ent_scores = [], [], {}
    for s, e, label in spans:
        tok_range = span_tokens(c2t, s, e)
        if tok_range is None:
            continue
        ent = Entity(id=f"p{len(entities) + 1}", start=s, end=e, label=label)
        entities.append(ent)
        ent_tokens.append(tok_range)
        ent_scores[ent.id] = float(top_prob[tok_range[0] : tok_range[1]].mean())
    relations, rel_scores = [], {}
    by_window: dict[int, list[tuple[Candidate, list[int]]]] = {}
    for c in candidate_pairs(doc.text, entities, ent_tokens, cfg.model.max_length - 2):
        (hlo, hhi), (tlo, thi) = ent_tokens[c.head], ent_tokens[c.tail]
        w = best_window(wins, min(hlo, tlo), max(hhi, thi))
        if w is None:
            continue  # the pair does not fit one window (a very long sentence)
        row = pair_rows(0, wins[w][0], ent_tokens[c.head], ent_tokens[c.tail],
                        entities[c.head].label, entities[c.tail].label, n_buckets)
        by_window.setdefault(w, []).append((c, row))
    for w, items in by_window.items():
        rows = torch.tensor([r for _, r in items], dtype=torch.long)
        logits = model.pair_logits(hidden_by_win[w], rows) + class_mask([c.classes for c, _ in items])
        probs = logits.softmax(-1)
        for (c, _), p in zip(items, probs):
            cls = int(p.argmax())
            if cls == 0:
                continue
            label = REL_CLASSES[cls]
            h, t = entities[c.head].id, entities[c.tail].id
            relations.append(Relation(head=h, tail=t, label=label))
            rel_scores[(h, t, label)] = float(p[cls])
    relations = one_metric_per_value(relations, rel_scores)
    entities, relations = split_coordinated_metrics(doc.text, entities, relations,
                                                    metric_sentence_ends(doc.text, entities))
    entities, relations = split_glued_orgs(doc.text, entities, relations)
    for e in entities:
        ent_scores.setdefault(e.id, ent_scores.get(e.id.split(".")[0], 1.0))
    for r in relations:  # a split METRIC's relations keep the score of the whole one's
        if (r.head, r.tail, r.label) not in rel_scores:
            rel_scores[(r.head, r.tail, r.label)] = rel_scores.get((r.head.split(".")[0], r.tail, r.label), 1.0)
    pred_doc = Document(id=doc.id, text=doc.text, meta=doc.meta, entities=entities, relations=relations)
    return Prediction(pred_doc, ent_scores, rel_scores, entropy)
