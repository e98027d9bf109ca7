"""Hand-checked facts (the end-to-end gold) from an annotator's spec and the resolved gold spans.

The annotator writes, per VALUE with a metric relation, the fact's organisation
(the article's short name for it, with the article's other names in ``aliases``),
its normalised period, guidance and sign, reading the whole article. This
script adds what the spans fix: the metric text, the value's offsets, and the
number, unit, kind and basis (read by ``caibao.normalize.parse_value`` and then
checked by a person: the annotator's sign wins over the normaliser's, and a spec
fact's own ``number``/``low``/``high``/``unit``/``basis`` replace what the
normaliser read). Writes
one JSON line per document, atomically:

    python scripts/spec_to_facts.py SPEC.jsonl --gold GOLD.jsonl --out annotations/facts/web-01.jsonl [--show]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from caibao.annotations import read_documents
from caibao.io import atomic_writer, dump_jsonl_line, iter_jsonl
from caibao.normalize import parse_value
from caibao.schema import sentence_bounds

METRIC_RELATIONS = ("metric_value", "metric_change")


def signed(x: float | None, negative: bool) -> float | None:
    return None if x is None else (-abs(x) if negative else abs(x))


def facts_of(doc, spec: dict) -> list[dict]:
    ents = doc.entity_by_id()
    relation_of = {r.tail: r for r in doc.relations if r.label in METRIC_RELATIONS}
    bounds = sentence_bounds(doc.text)
    out = []
    for f in spec["facts"]:
        value = ents[f["value"]]
        rel = relation_of[f["value"]]
        s, e = next((s, e) for s, e in bounds if s <= value.start < e)
        parsed = parse_value(doc.span_text(value), doc.text[s:e], value.start - s)
        negative = bool(f.get("negative"))
        kind = "change" if rel.label == "metric_change" else "level"
        fact = {
            "org": f["org"], "metric": doc.span_text(ents[rel.head]),
            "value": {"text": doc.span_text(value), "start": value.start, "end": value.end},
            "number": signed(parsed.number, negative), "low": signed(parsed.low, negative),
            "high": signed(parsed.high, negative), "unit": parsed.unit, "kind": kind,
            "basis": parsed.basis if kind == "change" else None,
            "period": f.get("period"), "guidance": bool(f.get("guidance")),
        }
        # A person's correction of what the normaliser read (a table's 单位: 百万元, 三成半 ...).
        fact.update({k: f[k] for k in ("number", "low", "high", "unit", "basis") if k in f})
        out.append(fact)
    return sorted(out, key=lambda x: x["value"]["start"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", type=Path)
    ap.add_argument("--gold", type=Path, required=True, help="the resolved gold documents of this spec")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--show", action="store_true", help="print every fact, for the person checking them")
    args = ap.parse_args()
    gold = {d.id: d for d in read_documents(args.gold)}
    rows = []
    for lineno, spec in iter_jsonl(args.spec):
        doc = gold.get(spec["id"])
        if doc is None:
            print(f"{args.spec}:{lineno}: document {spec['id']} is not in {args.gold}")
            return 1
        try:
            facts = facts_of(doc, spec)
        except KeyError as exc:
            print(f"{args.spec}:{lineno}: document {spec['id']}: fact for {exc} has no VALUE with a metric relation")
            return 1
        rows.append({"id": doc.id, "aliases": spec.get("aliases", {}), "facts": facts})
        if args.show:
            for f in facts:
                print(f"{doc.id} {f['value']['text']:<14} {f['metric']:<12} {f['kind']:<6} {f['number']} "
                      f"{f['unit']} {f['basis']} | {f['org']} | {f['period']} | guid={f['guidance']}")
    with atomic_writer(args.out) as fh:
        for row in rows:
            fh.write(dump_jsonl_line(row))
    print(f"{sum(len(r['facts']) for r in rows)} facts of {len(rows)} documents -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
