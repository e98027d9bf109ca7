"""Text -> what the network reads, the same for training and prediction (:class:`Featurizer`).

* Tokens: the document is tokenised once with character offsets. With
  ``pretokenize: cjk_chars`` every CJK character, digit group and ASCII
  word is its own pre-token, so entity boundaries always fall between
  tokens; a span's characters are recovered exactly from the offsets.
* Windows: documents longer than ``max_length`` are cut into overlapping
  windows; each token's tag comes from the window where it is most central,
  so nothing is lost at the seams.
* Tags: gold character spans -> one BIO tag per token, and back (:func:`decode_tags`).
* Relation candidates: entities of the same sentence whose types fit a relation
  signature, each as a row of the pair head's input in the window that holds both.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from caibao.schema import LABELS, Document, Entity, LabelScheme, sentence_index


@dataclass(frozen=True, eq=False)
class LabelCodec:
    """A label scheme as the network's class ids: the token head's BIO tags, the entity type ids the
    pair head reads, the relation classes (0 = no relation, then the labels in scheme order) and,
    for each (head label, tail label), the relation classes that pair allows."""

    scheme: LabelScheme
    bio_tags: tuple[str, ...]
    tag2id: dict[str, int]
    label2id: dict[str, int]
    rel_classes: tuple[str, ...]
    rel2id: dict[str, int]
    pair_classes: dict[tuple[str, str], list[int]]

    @classmethod
    def of(cls, scheme: LabelScheme) -> "LabelCodec":
        rel_classes = ("none",) + scheme.relation_labels
        rel2id = {r: i for i, r in enumerate(rel_classes)}
        pair_classes: dict[tuple[str, str], list[int]] = {}
        for rel, signature in scheme.relations.items():
            pair_classes.setdefault(signature, [0]).append(rel2id[rel])
        return cls(scheme, scheme.bio_tags, {t: i for i, t in enumerate(scheme.bio_tags)},
                   {lab: i for i, lab in enumerate(scheme.entity_labels)}, rel_classes, rel2id, pair_classes)


# The project's scheme (resources/labels.yaml), for code that has no model at hand.
DEFAULT_LABELS = LabelCodec.of(LABELS)

# Pre-tokens: a CJK char (cjk_chars) or CJK run (scripts), a digit group (with
# inner separators), an ASCII word, or any other single non-space character.
_PRETOKEN_TAIL = r"|[0-9０-９]+(?:[.,．][0-9０-９]+)*|[A-Za-zＡ-Ｚａ-ｚ]+|[^\s]"
_PRETOKEN_PATTERNS = {
    "cjk_chars": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]" + _PRETOKEN_TAIL,
    "scripts": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+" + _PRETOKEN_TAIL,
}


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


def token_tags(doc: Document, enc: Encoded, labels: LabelCodec = DEFAULT_LABELS) -> list[int]:
    """BIO tag id per token from gold character spans (a token takes the label of its first char)."""
    tag2id = labels.tag2id
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
                tags.append(tag2id[f"B-{label}"])
                prev_label = label
                continue
            tags.append(tag2id["O"])
            prev_label = None
            continue
        begin = char_begin[s] or prev_label != label
        tags.append(tag2id[f"{'B' if begin else 'I'}-{label}"])
        prev_label = label
    return tags


def decode_tags(tags: list[int], offsets: list[tuple[int, int]], text: str,
                labels: LabelCodec = DEFAULT_LABELS) -> list[tuple[int, int, str, list[int]]]:
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
        tag = labels.bio_tags[t]
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
# Words that open with an edge character and are not a particle (的士: a taxi, 的士业务).
_EDGE_WORDS = ("的士", "的哥")


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past whitespace, particles and punctuation that never bound a span.

    A bracket is trimmed only when unbalanced inside the span, so 复星实业(香港)有限公司 keeps its own.
    """
    while start < end:
        ch, span = text[start], text[start:end]
        if ch.isspace() or (ch in _EDGE_CHARS and not span.startswith(_EDGE_WORDS)) \
                or (ch in _OPENING and not any(c in _CLOSING for c in span)):
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
                    max_span: int | None = None, labels: LabelCodec = DEFAULT_LABELS) -> list[Candidate]:
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
            classes = labels.pair_classes.get((h.label, entities[j].label))
            if classes:
                out.append(Candidate(i, j, classes))
    return out


def window_batch(rows: list[list[int]], tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of token ids -> (input ids with [CLS]/[SEP], attention mask), padded to the longest."""
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
              head_label: str, tail_label: str, n_buckets: int, labels: LabelCodec = DEFAULT_LABELS) -> list[int]:
    """One row of CaibaoModel.pair_logits' input; token positions shifted by the window and [CLS]."""
    hlo, hhi = head_tok[0] - win_start + 1, head_tok[1] - win_start + 1
    tlo, thi = tail_tok[0] - win_start + 1, tail_tok[1] - win_start + 1
    gap = max(tlo - hhi, hlo - thi, 0)
    return [batch_index, hlo, hhi, tlo, thi, labels.label2id[head_label], labels.label2id[tail_label],
            distance_bucket(gap, n_buckets)]


@dataclass(frozen=True)
class Featurizer:
    """The tokenizer, the windowing and the label ids of one model (its config): used by training
    (:func:`caibao.train.build_examples`) and prediction (:func:`caibao.model.predict_documents`)."""

    tokenizer: object
    max_length: int
    stride: int
    distance_buckets: int
    labels: LabelCodec = DEFAULT_LABELS

    @classmethod
    def of(cls, tokenizer, cfg, labels: LabelCodec | None = None) -> "Featurizer":
        """The featurizer of a config (a built model passes its own label ids)."""
        m = cfg.model
        return cls(tokenizer, m.max_length, m.stride, m.distance_buckets, labels or LabelCodec.of(cfg.label_scheme))

    @property
    def max_tokens(self) -> int:
        """Tokens of one window, [CLS] and [SEP] aside."""
        return self.max_length - 2

    def encode(self, text: str) -> tuple[Encoded, list[tuple[int, int]]]:
        """The text's tokens and its windows (none for a text without tokens)."""
        enc = encode_document(self.tokenizer, text)
        return enc, windows(len(enc.ids), self.max_tokens, self.stride) if enc.ids else []

    def window_pairs(self, candidates: list[Candidate], entities: list[Entity],
                     ent_tokens: list[tuple[int, int] | None], wins: list[tuple[int, int]],
                     ) -> Iterator[tuple[int, Candidate, list[int]]]:
        """``(window, candidate, pair-head row)`` for every candidate whose two entities fit in one
        window (the one where they are most central); the others cannot be scored."""
        for c in candidates:
            ht, tt = ent_tokens[c.head], ent_tokens[c.tail]
            if ht is None or tt is None:
                continue
            w = best_window(wins, min(ht[0], tt[0]), max(ht[1], tt[1]))
            if w is None:
                continue  # the pair does not fit one window (a very long sentence)
            yield w, c, pair_rows(0, wins[w][0], ht, tt, entities[c.head].label, entities[c.tail].label,
                                  self.distance_buckets, self.labels)
