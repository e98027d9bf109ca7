"""The fact builder alone: its facts from the gold spans of a split, scored against the hand-checked facts.

`caibao evaluate --facts` scores what users get (the model's spans, then the fact builder); this
scores the fact builder on the annotators' spans and relations, so that a change to its
document-level rules (organisation, period, unit) is measured without the model's errors.
``--show FIELD`` prints the facts where FIELD disagrees, with their context, to read.

    python scripts/fact_builder_check.py --split train,dev
    python scripts/fact_builder_check.py --split dev --show period
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from caibao.annotations import read_gold
from caibao.evaluate import REPORTED_FIELDS, end_to_end_scores, field_agreement, match_facts, read_fact_gold
from caibao.facts import build_facts

ROOT = Path(__file__).resolve().parents[1]
# Characters of context printed before and after a value with --show.
CONTEXT_BEFORE, CONTEXT_AFTER = 60, 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train,dev", help="comma-separated splits of annotations/splits.json")
    ap.add_argument("--ids", metavar="PREFIXES", help="only documents whose id starts with one of these "
                                                     "(comma-separated, e.g. web-15,web-16: one round of articles)")
    ap.add_argument("--show", metavar="FIELD", help="print the facts whose FIELD disagrees (org, period, unit ...)")
    args = ap.parse_args()
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    unknown = [s for s in args.split.split(",") if s not in splits]
    if unknown:
        ap.error(f"annotations/splits.json has no split {', '.join(unknown)} (it has {', '.join(splits)})")
    if args.show and args.show not in REPORTED_FIELDS:
        ap.error(f"--show takes one of {', '.join(REPORTED_FIELDS)}")
    fact_gold = read_fact_gold(ROOT / "annotations" / "facts")
    wanted = {i for s in args.split.split(",") for i in splits[s]} & set(fact_gold)
    if args.ids:
        wanted = {i for i in wanted if i.startswith(tuple(args.ids.split(",")))}
    docs = {d.id: d for d in read_gold(ROOT / "annotations" / "gold") if d.id in wanted}
    built = {i: build_facts(d) for i, d in docs.items()}
    scores = end_to_end_scores({i: fact_gold[i] for i in docs}, built)
    print(f"{args.split}: {len(docs)} articles, {scores['gold_facts']} hand-checked facts, "
          f"{scores['matched']} matched; fact P/R/F1 {scores['micro']['precision']:.4f} / "
          f"{scores['micro']['recall']:.4f} / {scores['micro']['f1']:.4f}")
    print("field accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in scores["field_accuracy"].items()))
    if args.show:
        for i, doc in docs.items():
            for gold, fact in match_facts(fact_gold[i]["facts"], built[i]):
                if not field_agreement(gold, fact, fact_gold[i].get("aliases", {}))[args.show]:
                    context = doc.text[max(0, fact.value.start - CONTEXT_BEFORE) : fact.value.end + CONTEXT_AFTER]
                    print(f"{i} {fact.value.text}: gold {gold.get(args.show)!r}, built {built_field(fact, args.show)!r}\n"
                          f"    {context.replace(chr(10), ' / ')}")


def built_field(fact, name: str):
    """A fact's field as the fact gold writes it."""
    v = fact.value
    return {"org": fact.org.text if fact.org else None, "metric": fact.metric.text, "number": v.number,
            "unit": v.unit, "kind": v.kind, "basis": v.basis, "guidance": fact.guidance,
            "period": fact.period.normalized if fact.period else None}[name]


if __name__ == "__main__":
    main()
