"""Scores: entities (seqeval strict IOB2), relations (strict end-to-end), facts.

* Entities: each sentence is a sequence of characters tagged IOB2 from the
  spans; seqeval's strict mode then counts exact spans with exact labels.
* Relations: a predicted relation is right when both spans are exact, both
  entity labels and the relation label are right.
* Facts: :func:`caibao.facts.build_facts` applied to gold and to predicted
  annotations; a fact matches when value span, metric span, kind, period
  span (or both none) and organisation text agree.
* End to end (``--facts``): the facts extraction gives for the raw
  documents against hand-checked facts, field by field: organisation (as
  the article names it), metric, number, unit, kind, normalised period and
  guidance must all agree. Independent of how the fact builder treats gold
  spans, so it sees document-level resolution errors the span-based fact
  score cannot.
"""

from __future__ import annotations

import math
from collections import Counter

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from caibao.facts import build_facts, fact_key
from caibao.schema import ENTITY_LABELS, RELATION_LABELS, Document, Fact, sentence_bounds


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def char_iob2(doc: Document) -> list[list[str]]:
    """IOB2 tags per character, one list per sentence."""
    tags = ["O"] * len(doc.text)
    for e in doc.entities:
        tags[e.start] = f"B-{e.label}"
        for i in range(e.start + 1, e.end):
            tags[i] = f"I-{e.label}"
    return [tags[s:e] for s, e in sentence_bounds(doc.text)]


def entity_scores(gold: list[Document], pred: list[Document]) -> dict:
    y_true, y_pred = [], []
    for g, p in zip(gold, pred):
        y_true.extend(char_iob2(g))
        y_pred.extend(char_iob2(p))
    report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_label = {}
    for label in ENTITY_LABELS:
        row = report.get(label)
        if row is None:
            per_label[label] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        else:
            per_label[label] = {"precision": round(float(row["precision"]), 4),
                                "recall": round(float(row["recall"]), 4), "f1": round(float(row["f1-score"]), 4)}
            per_label[label]["support"] = int(row["support"])
    micro = report.get("micro avg", {"precision": 0, "recall": 0, "f1-score": 0})
    return {
        "micro": {"precision": round(float(micro["precision"]), 4), "recall": round(float(micro["recall"]), 4),
                  "f1": round(float(micro["f1-score"]), 4)},
        "per_label": per_label,
    }


def _relation_keys(doc: Document) -> Counter:
    ents = doc.entity_by_id()
    keys: Counter = Counter()
    for r in doc.relations:
        h, t = ents.get(r.head), ents.get(r.tail)
        if h is None or t is None:
            continue
        keys[(doc.id, h.start, h.end, h.label, t.start, t.end, t.label, r.label)] += 1
    return keys


def relation_scores(gold: list[Document], pred: list[Document]) -> dict:
    tp: Counter = Counter()
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    for g, p in zip(gold, pred):
        gk, pk = _relation_keys(g), _relation_keys(p)
        for k in gk:
            n_gold[k[-1]] += 1
        for k in pk:
            n_pred[k[-1]] += 1
            if k in gk:
                tp[k[-1]] += 1
    per_label = {lab: {**prf(tp[lab], n_pred[lab], n_gold[lab]), "support": n_gold[lab]} for lab in RELATION_LABELS}
    micro = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return {"micro": micro, "per_label": per_label}


def fact_scores(gold: list[Document], pred: list[Document]) -> dict:
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred):
        gk = Counter(fact_key(f) for f in build_facts(g))
        pk = Counter(fact_key(f) for f in build_facts(p))
        n_gold += sum(gk.values())
        n_pred += sum(pk.values())
        tp += sum((gk & pk).values())
    return {"micro": prf(tp, n_pred, n_gold)}


def score(gold: list[Document], pred: list[Document]) -> dict:
    """All scores in the shape of ``caibao evaluate --json``."""
    if [d.id for d in gold] != [d.id for d in pred]:
        raise ValueError("gold and predicted documents must be the same documents in the same order")
    for g, p in zip(gold, pred):
        if g.text != p.text:
            raise ValueError(f"document {g.id}: predicted text differs from the gold text")
    return {
        "documents": len(gold),
        "entity": entity_scores(gold, pred),
        "relation": relation_scores(gold, pred),
        "fact": fact_scores(gold, pred),
    }


def strip_annotations(doc: Document) -> Document:
    return Document(id=doc.id, text=doc.text, meta=doc.meta)


# --- end to end: extracted facts against hand-checked facts -----------------------------

# Fields that must all agree for an extracted fact to be right (basis and approx are reported only).
FACT_FIELDS = ("org", "metric", "number", "unit", "kind", "period", "guidance")
REPORTED_FIELDS = FACT_FIELDS + ("basis",)


def _same_number(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def field_agreement(gold: dict, pred: Fact, aliases: dict[str, list[str]]) -> dict[str, bool]:
    """Which normalised fields of an extracted fact agree with a hand-checked one.

    ``gold`` is a line of the fact gold (see :func:`read_fact_gold`); the org is
    right when the extracted mention is the gold organisation or one of the
    names the article gives it.
    """
    org_names = {gold["org"], *aliases.get(gold["org"], [])} if gold["org"] else set()
    v = pred.value
    number_ok = (_same_number(gold.get("number"), v.number) and _same_number(gold.get("low"), v.low)
                 and _same_number(gold.get("high"), v.high))
    return {
        "org": (pred.org.text in org_names) if pred.org else not org_names,
        "metric": pred.metric.text == gold["metric"],
        "number": number_ok,
        "unit": v.unit == gold.get("unit"),
        "kind": v.kind == gold["kind"],
        "basis": v.basis == gold.get("basis"),
        "period": (pred.period.normalized if pred.period else None) == gold.get("period"),
        "guidance": pred.guidance == gold["guidance"],
    }


def match_facts(gold: list[dict], pred: list[Fact]) -> list[tuple[dict, Fact]]:
    """One-to-one pairs of gold and extracted facts whose value spans overlap (most overlap first,
    then the same metric text)."""
    candidates = []
    for i, g in enumerate(gold):
        gs, ge = g["value"]["start"], g["value"]["end"]
        for j, p in enumerate(pred):
            overlap = min(ge, p.value.end) - max(gs, p.value.start)
            if overlap > 0:
                candidates.append((-overlap, p.metric.text != g["metric"], i, j))
    used_g, used_p, pairs = set(), set(), []
    for _, _, i, j in sorted(candidates):
        if i not in used_g and j not in used_p:
            used_g.add(i)
            used_p.add(j)
            pairs.append((gold[i], pred[j]))
    return pairs


def judge_document(entry: dict, pred: list[Fact]) -> tuple[list[dict[str, bool]], list[bool]]:
    """One document's extracted facts against its hand-checked ones (``entry``, a fact gold line):
    the field agreement of every matched pair, and per extracted fact (in order) whether it is right
    (matched and every field of :data:`FACT_FIELDS` agrees)."""
    agreements, right_ids = [], set()
    for g, p in match_facts(entry["facts"], pred):
        agree = field_agreement(g, p, entry.get("aliases", {}))
        agreements.append(agree)
        if all(agree[k] for k in FACT_FIELDS):
            right_ids.add(id(p))
    return agreements, [id(p) in right_ids for p in pred]


def end_to_end_scores(fact_gold: dict[str, dict], predicted: dict[str, list[Fact]]) -> dict:
    """Extracted facts scored field by field against hand-checked facts.

    ``fact_gold``: document id -> {"aliases": ..., "facts": [...]}; ``predicted``:
    document id -> the facts ``caibao extract`` gives for it. A fact is right when
    it matches a gold fact and every field of :data:`FACT_FIELDS` agrees;
    per-field accuracy is over the matched pairs.
    """
    n_gold = n_pred = matched = 0
    field_ok: Counter = Counter()
    judged: list[tuple[float, bool]] = []  # (confidence, right) of every extracted fact
    for doc_id, entry in fact_gold.items():
        pred = predicted.get(doc_id, [])
        agreements, right = judge_document(entry, pred)
        n_gold += len(entry["facts"])
        n_pred += len(pred)
        matched += len(agreements)
        for agree in agreements:
            field_ok.update(k for k, ok in agree.items() if ok)
        judged += [(p.confidence, ok) for p, ok in zip(pred, right)]
    return {
        "documents": len(fact_gold),
        "gold_facts": n_gold,
        "extracted_facts": n_pred,
        "matched": matched,
        "micro": prf(sum(ok for _, ok in judged), n_pred, n_gold),
        "field_accuracy": {k: round(field_ok[k] / matched, 4) if matched else 0.0 for k in REPORTED_FIELDS},
        "confidence": confidence_report(judged, n_gold),
    }


# Bins of a fact's confidence for the reliability table, and thresholds users may filter at.
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
CONFIDENCE_THRESHOLDS = (0.5, 0.8, 0.9, 0.95)


def confidence_report(judged: list[tuple[float, bool]], n_gold: int) -> dict:
    """How well a fact's confidence predicts that it is right: per bin the facts, their mean
    confidence and the share right (a reliability table); per threshold the precision and recall
    of the facts at or above it."""
    bins = []
    for lo, hi in zip(CONFIDENCE_BINS, CONFIDENCE_BINS[1:]):
        inside = [(c, ok) for c, ok in judged if lo <= c < hi or (hi == CONFIDENCE_BINS[-1] and c == hi)]
        bins.append({"from": lo, "to": hi, "facts": len(inside),
                     "mean_confidence": round(sum(c for c, _ in inside) / len(inside), 4) if inside else None,
                     "right": round(sum(ok for _, ok in inside) / len(inside), 4) if inside else None})
    thresholds = {}
    for t in CONFIDENCE_THRESHOLDS:
        kept = [ok for c, ok in judged if c >= t]
        thresholds[str(t)] = {"facts": len(kept), **prf(sum(kept), len(kept), n_gold)}
    # Expected calibration error: the bins' gaps between mean confidence and share right, weighted by size.
    ece = sum(b["facts"] * abs(b["mean_confidence"] - b["right"]) for b in bins if b["facts"]) / max(len(judged), 1)
    return {"bins": bins, "thresholds": thresholds, "ece": round(ece, 4)}


def read_fact_gold(path) -> dict[str, dict]:
    """The hand-checked facts (a JSONL file, or a folder of them): one JSON line per document,
    ``{"id", "aliases": {org: [other names]}, "facts": [{"org", "metric", "value": {"text", "start", "end"},
    "number", "low", "high", "unit", "kind", "basis", "period", "guidance"}]}``."""
    from caibao.annotations import annotation_files

    out = {}
    for f in annotation_files(path):
        out.update(_read_fact_file(f))
    return out


def _read_fact_file(path) -> dict[str, dict]:
    from caibao.io import InputError, iter_jsonl

    out = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("facts"), list):
            raise InputError(path, "a fact gold line needs an id and a list of facts", lineno)
        for f in row["facts"]:
            missing = [k for k in ("org", "metric", "value", "kind", "guidance") if k not in f]
            if missing:
                raise InputError(path, f"document {row['id']}: a fact lacks {', '.join(missing)}", lineno)
        out[row["id"]] = row
    return out
