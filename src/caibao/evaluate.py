"""Scores: entities (seqeval strict IOB2), relations (strict end-to-end), facts.

* Entities: each sentence is a sequence of characters tagged IOB2 from the
  spans; seqeval's strict mode then counts exact spans with exact labels.
* Relations: a predicted relation is right when both spans are exact, both
  entity labels and the relation label are right.
* Facts: :func:`caibao.facts.build_facts` applied to gold and to predicted
  annotations; a fact matches when value span, metric span, kind, period
  span (or both none) and organisation text agree.
"""

from __future__ import annotations

from collections import Counter

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from caibao.facts import build_facts, fact_key
from caibao.schema import ENTITY_LABELS, RELATION_LABELS, Document, sentence_bounds


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
