"""The model: a pretrained encoder, a BIO token head and a relation head, and prediction. What
the network reads (tokens, windows, tags, relation candidates) is :mod:`caibao.featurize`'s,
shared with training; a model on disk is :mod:`caibao.persistence`'s.

* Relations: a candidate pair (:func:`caibao.featurize.candidate_pairs`) is represented by the
  pooled head span, pooled tail span, pooled text between them, both types and a bucketed
  distance, and classified into "none" or one of the compatible labels.
* Prediction: every window of every document through the encoder, batched by length; the
  windows' tag probabilities gathered per token, Viterbi-decoded to spans, the decoding rules
  (:mod:`caibao.decode`) applied, then the pairs scored.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from caibao.config import ExperimentConfig
from caibao.decode import apply_span_rules, share_metric_list, split_coordinated_metrics, split_glued_orgs
from caibao.featurize import (
    DEFAULT_LABELS, Candidate, Encoded, Featurizer, LabelCodec, candidate_pairs, char_to_token, decode_tags,
    load_tokenizer, span_tokens, window_batch,
)
from caibao.schema import Document, Entity, Relation, sentence_bounds



# --- the network ----------------------------------------------------------------------


class CaibaoModel(nn.Module):
    def __init__(self, encoder: nn.Module, hidden_size: int, cfg: ExperimentConfig):
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        # The label scheme is the model's own (its config's): it sizes the heads and is saved with it.
        self.labels = LabelCodec.of(cfg.label_scheme)
        self.encoder = encoder
        self.dropout = nn.Dropout(m.dropout)
        self.token_head = nn.Linear(hidden_size, len(self.labels.bio_tags))
        self.type_emb = nn.Embedding(len(self.labels.label2id), m.type_dim)
        self.dist_emb = nn.Embedding(m.distance_buckets, m.type_dim)
        pair_in = 3 * hidden_size + 3 * m.type_dim
        self.relation_head = nn.Sequential(
            nn.Linear(pair_in, m.relation_hidden),
            nn.GELU(),
            nn.Dropout(m.dropout),
            nn.Linear(m.relation_hidden, len(self.labels.rel_classes)),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pairs: torch.Tensor | None = None,
                return_hidden: bool = False) -> tuple[torch.Tensor, ...]:
        """Token logits [B, T, tags] and pair logits [P, classes] in one call (training; DDP hooks fire here),
        and the last hidden states [B, T, hidden] if ``return_hidden`` (distillation)."""
        hidden = self.encode(input_ids, attention_mask)
        logits = self.token_logits(hidden)
        rel = hidden.new_zeros((0, len(self.labels.rel_classes))) if pairs is None else self.pair_logits(hidden, pairs)
        return (logits, rel, hidden) if return_hidden else (logits, rel)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state

    def token_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.token_head(self.dropout(hidden))

    def pair_logits(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """pairs: [P, 8] rows (batch, head_lo, head_hi, tail_lo, tail_hi, head_type, tail_type, bucket)."""
        if pairs.numel() == 0:
            return hidden.new_zeros((0, len(self.labels.rel_classes)))
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


def class_mask(classes_list: list[list[int]], device=None, n_classes: int = len(DEFAULT_LABELS.rel_classes)) -> torch.Tensor:
    """[P, C] additive mask: 0 for allowed classes, -inf for the others."""
    mask = torch.full((len(classes_list), n_classes), float("-inf"), device=device)
    for k, classes in enumerate(classes_list):
        mask[k, classes] = 0.0
    return mask


# --- building -------------------------------------------------------------------------


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


# --- prediction -----------------------------------------------------------------------


@dataclass
class Prediction:
    """A document with predicted entities/relations, each with its probability (``score``)."""

    document: Document
    # Token-level uncertainty summary, used to order review queues, and how many tags it is over
    # (the model's label scheme: entropy is normalised by ln of it).
    mean_token_entropy: float = 0.0
    tag_count: int = len(DEFAULT_LABELS.bio_tags)
    # Relations the model predicted that the decoding rules removed (caibao.decode.RELATION_RULES:
    # one_metric_per_value's losers, a split METRIC's whole relations), with their scores: not part
    # of the prediction, but doubts that the review order still counts
    # (caibao.review.predictions.document_uncertainty).
    overruled: list[Relation] = field(default_factory=list)


@functools.lru_cache(maxsize=8)
def iob2_grammar(bio_tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Log-space transition scores [from, to] of the IOB2 grammar (0 allowed, -inf not: I-X only
    after B-X or I-X) and the tags a sequence may start with."""
    n = len(bio_tags)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(bio_tags):
        if tag.startswith("I-"):
            label = tag[2:]
            for i, prev in enumerate(bio_tags):
                allowed[i, j] = prev in (f"B-{label}", f"I-{label}")
    return np.where(allowed, 0.0, -np.inf), np.array([not t.startswith("I-") for t in bio_tags])


def viterbi_bio(token_probs: torch.Tensor, bio_tags: tuple[str, ...] = DEFAULT_LABELS.bio_tags) -> list[int]:
    """The most probable tag sequence that obeys IOB2 (no I-X after O or another label).

    Plain argmax leaves fragments ("营收分", a lone I-), which cost both
    precision and recall under strict span matching; this is a CRF decode
    with fixed, hard transitions.
    """
    return viterbi_bio_batch([token_probs], bio_tags)[0]


def viterbi_bio_batch(token_probs: list[torch.Tensor],
                      bio_tags: tuple[str, ...] = DEFAULT_LABELS.bio_tags) -> list[list[int]]:
    """:func:`viterbi_bio` of several documents at once ([tokens, tags] each), one step per token
    position for all of them: the loop runs as many times as the longest document has tokens."""
    out: list[list[int]] = [[] for _ in token_probs]
    live = [i for i, p in enumerate(token_probs) if len(p)]
    if not live:
        return out
    ends = np.array([len(token_probs[i]) - 1 for i in live])
    # NumPy, not torch: the loop runs once per token and torch's per-call overhead dominated it.
    transitions, start_allowed = iob2_grammar(bio_tags)
    logp = np.zeros((len(live), int(ends.max()) + 1, len(bio_tags)))
    for row, i in enumerate(live):
        logp[row, : ends[row] + 1] = np.log(np.maximum(token_probs[i].float().numpy(), 1e-12))
    score = np.where(start_allowed, logp[:, 0], -np.inf)
    final = score.copy()  # each document's scores at its last token
    rows_ending = {t: np.flatnonzero(ends == t) for t in set(ends.tolist())}
    back = np.zeros(logp.shape, dtype=np.int64)
    for t in range(1, logp.shape[1]):
        cand = score[:, :, None] + transitions  # [document, from, to]
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


def one_metric_per_value(relations: list[Relation]) -> list[Relation]:
    """Keep only the most probable (``score``) metric_value/metric_change relation into each VALUE.

    A value measures one metric (1 of 3,418 gold VALUEs has two), but pairs are
    scored independently and a value between two metrics often gets both; on the
    dev split this removed 100 such doubles and added 2-3 points of fact F1.
    """
    best: dict[str, Relation] = {}
    for r in relations:
        if r.label in ("metric_value", "metric_change"):
            cur = best.get(r.tail)
            if cur is None or r.score > cur.score:
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
    featurizer = Featurizer.of(tok, cfg, model.labels)
    encs, wins_of = map(list, zip(*(featurizer.encode(d.text) for d in docs))) if docs else ([], [])
    jobs = [(i, w) for i, wins in enumerate(wins_of) for w in range(len(wins))]
    jobs.sort(key=lambda j: -(wins_of[j[0]][j[1]][1] - wins_of[j[0]][j[1]][0]))
    hidden_of: dict[tuple[int, int], torch.Tensor] = {}
    probs_of: dict[tuple[int, int], torch.Tensor] = {}
    for b0 in range(0, len(jobs), batch_size):
        chunk = jobs[b0 : b0 + batch_size]
        rows = [encs[i].ids[wins_of[i][w][0] : wins_of[i][w][1]] for i, w in chunk]
        ids, mask = window_batch(rows, tok)
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
                   if enc.ids else torch.zeros(0, len(model.labels.bio_tags)) for i, (enc, wins) in enumerate(zip(encs, wins_of))]
    tags = viterbi_bio_batch(token_probs, model.labels.bio_tags)
    return [
        _decode_document(model, featurizer, doc, enc, wins, [hidden_of[(i, w)] for w in range(len(wins))],
                         token_probs[i], tags[i])
        for i, (doc, enc, wins) in enumerate(zip(docs, encs, wins_of))
    ]


def _decode_document(model: CaibaoModel, featurizer: Featurizer, doc: Document, enc: Encoded,
                     wins: list[tuple[int, int]], hidden_by_win: list[torch.Tensor],
                     token_probs: torch.Tensor, tags: list[int]) -> Prediction:
    tag_count = len(featurizer.labels.bio_tags)
    if not enc.ids:
        return Prediction(Document(id=doc.id, text=doc.text, meta=doc.meta), tag_count=tag_count)
    entropy = float(-(token_probs * token_probs.clamp_min(1e-9).log()).sum(-1).mean())
    spans = [(s, e, label) for s, e, label, _ in decode_tags(tags, enc.offsets, doc.text, featurizer.labels)]
    rules = set(model.cfg.decoding.rules)
    entities, ent_tokens = _scored_entities(apply_span_rules(doc.text, spans, rules), enc, doc.text, token_probs)
    scored = _scored_relations(model, featurizer, doc.text, entities, ent_tokens, wins, hidden_by_win)
    final_entities, relations = _apply_relation_rules(doc.text, entities, scored, rules)
    final_entities, relations = _inherit_scores(final_entities, relations, entities, scored)
    kept = {(r.head, r.tail, r.label) for r in relations}
    overruled = [r for r in scored if (r.head, r.tail, r.label) not in kept]
    pred_doc = Document(id=doc.id, text=doc.text, meta=doc.meta, entities=final_entities, relations=relations)
    return Prediction(pred_doc, entropy, tag_count, overruled)


def _scored_entities(spans: list[tuple[int, int, str]], enc: Encoded, text: str,
                     token_probs: torch.Tensor) -> tuple[list[Entity], list[tuple[int, int]]]:
    """The spans that cover tokens as entities p1..pN, each scored by the mean of its tokens' top tag
    probabilities, and their token ranges."""
    c2t = char_to_token(enc, len(text))
    # One tensor call for all spans: a small torch op per entity costs more than the op itself.
    top_prob = token_probs.max(-1).values.numpy()
    entities, ent_tokens = [], []
    for s, e, label in spans:
        tok_range = span_tokens(c2t, s, e)
        if tok_range is None:
            continue
        score = float(top_prob[tok_range[0] : tok_range[1]].mean())
        entities.append(Entity(id=f"p{len(entities) + 1}", start=s, end=e, label=label, score=score))
        ent_tokens.append(tok_range)
    return entities, ent_tokens


def _scored_relations(model: CaibaoModel, featurizer: Featurizer, text: str, entities: list[Entity],
                      ent_tokens: list[tuple[int, int]], wins: list[tuple[int, int]],
                      hidden_by_win: list[torch.Tensor]) -> list[Relation]:
    """Every candidate pair scored in its window; those not classified "none" as relations, each
    with the probability of its label."""
    relations = []
    by_window: dict[int, list[tuple[Candidate, list[int]]]] = {}
    candidates = candidate_pairs(text, entities, ent_tokens, featurizer.max_tokens, featurizer.labels)
    for w, c, row in featurizer.window_pairs(candidates, entities, ent_tokens, wins):
        by_window.setdefault(w, []).append((c, row))
    for w, items in by_window.items():
        rows = torch.tensor([r for _, r in items], dtype=torch.long)
        logits = model.pair_logits(hidden_by_win[w], rows) + class_mask([c.classes for c, _ in items],
                                                                         n_classes=len(featurizer.labels.rel_classes))
        probs = logits.softmax(-1)
        for (c, _), p in zip(items, probs):
            cls = int(p.argmax())
            if cls == 0:
                continue
            relations.append(Relation(head=entities[c.head].id, tail=entities[c.tail].id,
                                      label=featurizer.labels.rel_classes[cls], score=float(p[cls])))
    return relations


def _apply_relation_rules(text: str, entities: list[Entity], relations: list[Relation],
                          rules: set[str]) -> tuple[list[Entity], list[Relation]]:
    """The decoding rules on entities and relations (caibao.decode.RELATION_RULES), in their order."""
    if "one_metric_per_value" in rules:
        relations = one_metric_per_value(relations)
    if "split_coordinated_metrics" in rules:
        entities, relations = split_coordinated_metrics(text, entities, relations,
                                                        metric_sentence_ends(text, entities))
    if "share_metric_list" in rules:
        relations = share_metric_list(text, entities, relations, metric_sentence_ends(text, entities))
    if "split_glued_orgs" in rules:
        entities, relations = split_glued_orgs(text, entities, relations)
    return entities, relations


def _inherit_scores(entities: list[Entity], relations: list[Relation], scored_entities: list[Entity],
                    scored_relations: list[Relation]) -> tuple[list[Entity], list[Relation]]:
    """Every entity and relation after the rules, with its score looked up by id / (head, tail, label)
    among the scored ones, since the rules rebuild them without scores: an entity split off another
    (p3.1, p3.org) has the whole one's, a split METRIC's relations the whole one's (by head),
    anything else new 1.0."""
    ent_score = {e.id: e.score for e in scored_entities}
    rel_score = {(r.head, r.tail, r.label): r.score for r in scored_relations}

    def entity(e: Entity) -> float:
        return ent_score.get(e.id, ent_score.get(e.id.split(".")[0], 1.0))

    def relation(r: Relation) -> float:
        return rel_score.get((r.head, r.tail, r.label), rel_score.get((r.head.split(".")[0], r.tail, r.label), 1.0))

    return ([e.model_copy(update={"score": entity(e)}) for e in entities],
            [r.model_copy(update={"score": relation(r)}) for r in relations])
