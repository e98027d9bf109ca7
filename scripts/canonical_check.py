"""How the canonical ids behave on the hand-checked facts of one split (no model involved).

Organisation identity: each article's fact gold lists, for every organisation that owns facts, the
other names the article uses for it (``aliases``). A fact's organisation is *linked* when every one of
those names resolves to the id of the annotators' name (so whichever name an extractor writes, the
fact gets the same id), and *merged* when that id is also the id of another organisation of the same
article. Aliases are learned from the split's articles together, as ``caibao extract --format store``
does over a run.

Metric identity: how the facts' metric texts map (exact, qualified, ambiguous, unmapped), and, where
``annotations/metric_ids/SPLIT.jsonl`` holds hand-checked keys (one line per fact with a mapped id when
it was checked: ``{"doc_id", "value_start", "metric", "key", "why"}``; ``key`` null where no taxonomy
id fits, ``why`` where the mapping was wrong), how many facts get the right key, are honestly unmapped (ambiguous or unmapped), get a wrong
key, or get a key nobody checked (the mapper changed since).

With ``--model``, also what the issue's acceptance asks on extraction's own output: the facts the
model extracts from the raw articles are matched to the hand-checked ones (as ``caibao evaluate
--facts`` does), and for every matched fact whose organisation is right, whether its organisation
id is the id of the annotators' name.

    python scripts/canonical_check.py --split dev [--model distilled --runtime torch]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from caibao.annotations import read_documents
from caibao.evaluate import read_fact_gold
from caibao.identity import OrgIndex, Registry, learn_aliases
from caibao.metric_ids import map_metric, money_amount
from caibao.schema import sentence_bounds

ROOT = Path(__file__).resolve().parents[1]


def split_documents(split: str) -> dict:
    ids = set(json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))[split])
    docs = {}
    for path in sorted((ROOT / "annotations" / "gold").glob("*.jsonl")):
        docs.update({d.id: d for d in read_documents(path) if d.id in ids})
    return docs


def org_scores(fact_gold: dict, index: OrgIndex) -> Counter:
    counts: Counter = Counter()
    for row in fact_gold.values():
        facts, names = row["facts"], row.get("aliases") or {}
        ids = {org: index.resolve(org).id for org in {f["org"] for f in facts if f.get("org")}}
        for fact in facts:
            org = fact.get("org")
            if not org:
                continue
            counts["facts"] += 1
            own = ids[org]
            if all(index.resolve(n).id == own for n in names.get(org, [])):
                counts["linked"] += 1
            if any(other != org and oid == own for other, oid in ids.items()):
                counts["merged"] += 1
            counts["how:" + index.resolve(org).how] += 1
    return counts


def extracted_org_scores(fact_gold: dict, docs: dict, index: OrgIndex, model: str, runtime: str) -> Counter:
    """Facts extracted from the raw articles whose organisation is right: is its id the gold name's?"""
    from caibao.evaluate import field_agreement, match_facts, strip_annotations
    from caibao.extract import Extractor

    extractor = Extractor.load(model, runtime=runtime)
    raw = [strip_annotations(docs[i]) for i in sorted(fact_gold)]
    counts: Counter = Counter()
    for doc, facts in zip(raw, extractor.extract_documents(raw)):
        row = fact_gold[doc.id]
        for gold, pred in match_facts(row["facts"], facts):
            if not gold.get("org") or not pred.org or not field_agreement(gold, pred, row["aliases"])["org"]:
                continue
            counts["org right"] += 1
            counts["same id"] += index.resolve(pred.org.text).id == index.resolve(gold["org"]).id
    return counts


def metric_scores(fact_gold: dict) -> Counter:
    counts: Counter = Counter()
    for row in fact_gold.values():
        for fact in row["facts"]:
            counts[map_metric(fact["metric"]).how] += 1
    return counts


def read_metric_checks(split: str) -> dict[tuple[str, int], str] | None:
    """(doc id, value start) -> the hand-checked metric key (None: no taxonomy id fits), or None when
    the split has no check file."""
    path = ROOT / "annotations" / "metric_ids" / f"{split}.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return {(r["doc_id"], r["value_start"]): r["key"] for r in rows}


def metric_key(text: str, fact: dict) -> str | None:
    """A hand-checked fact's metric key, read with its sentence (its METRIC: the last mention of the
    metric text before the value)."""
    value = fact["value"]["start"]
    at = text.rfind(fact["metric"], 0, value + 1)
    if at < 0:
        return map_metric(fact["metric"]).key
    start = max([s for s, _ in sentence_bounds(text) if s <= at] or [0])
    return map_metric(fact["metric"], before=text[start:at], between=text[at + len(fact["metric"]) : value],
                      amount=money_amount(fact.get("number"), fact.get("unit"), fact["kind"])).key


def metric_verdicts(fact_gold: dict, docs: dict, checks: dict[tuple[str, int], str]) -> Counter:
    """Per fact: right (the checked key), unmapped (ambiguous or unmapped), wrong, or unchecked."""
    counts: Counter = Counter()
    for doc_id, row in fact_gold.items():
        for fact in row["facts"]:
            key = metric_key(docs[doc_id].text, fact)
            where = (doc_id, fact["value"]["start"])
            counts["unmapped" if key is None else "unchecked" if where not in checks else
                   "right" if key == checks[where] else "wrong"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="train, dev, test or heldout (annotations/splits.json)")
    parser.add_argument("--model", help="also score the organisation ids of this model's extracted facts")
    parser.add_argument("--runtime", default="torch", help="the model's runtime (default fp32 PyTorch)")
    args = parser.parse_args()
    docs = split_documents(args.split)
    fact_gold = {k: v for k, v in read_fact_gold(ROOT / "annotations" / "facts").items() if k in docs}
    index = OrgIndex.build(Registry.load(), [s for d in docs.values() for s in learn_aliases(d.text)])
    orgs = org_scores(fact_gold, index)
    metrics = metric_scores(fact_gold)
    n, m = orgs["facts"], sum(metrics.values())
    print(f"split {args.split}: {len(fact_gold)} articles with hand-checked facts, {n} facts with an organisation")
    print(f"organisation: every name of the fact's organisation gets its id on {orgs['linked']}/{n} "
          f"({orgs['linked'] / n:.3f}); merged with another organisation of the article on {orgs['merged']}/{n} "
          f"({orgs['merged'] / n:.3f}); ids from " + ", ".join(
              f"{k[4:]} {v}" for k, v in sorted(orgs.items()) if k.startswith("how:")))
    print(f"metric: {m} facts; " + ", ".join(f"{k} {v} ({v / m:.3f})" for k, v in sorted(metrics.items())))
    checks = read_metric_checks(args.split)
    if checks is not None:
        verdicts = metric_verdicts(fact_gold, docs, checks)
        print("metric key against the hand-checked keys: " + ", ".join(
            f"{k} {verdicts[k]} ({verdicts[k] / m:.3f})" for k in ("right", "unmapped", "wrong", "unchecked")))
    if args.model:
        got = extracted_org_scores(fact_gold, docs, index, args.model, args.runtime)
        print(f"extracted by {args.model} ({args.runtime}): organisation right on {got['org right']} matched facts, "
              f"its id the annotators' on {got['same id']} ({got['same id'] / max(1, got['org right']):.3f})")


if __name__ == "__main__":
    main()
