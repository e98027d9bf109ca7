"""Extract a set of checked pages with this checkout's code and score the facts against the checks.

A check set (``annotations/checks/<name>/``) holds fresh pages that nobody annotated span by span:
``docs.jsonl`` (the pages), ``checked_facts.jsonl`` (every fact an earlier version of caibao extracted,
with the fields a reader judged right: ``expected``, null for a value that is no fact) and
``missed.jsonl`` (values the reader found no fact for). It is a development signal, not gold: a fact
is scored only when extraction still gives a value at the same span, so recall is not measured.

    python scripts/check_score.py [--checks annotations/checks/stage6] [--show period]

To score another version of the code, run this script with ``PYTHONPATH=<its checkout>/src``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

from caibao.io import InputError, iter_jsonl

FIELDS = ("org", "metric", "number", "unit", "kind", "period", "guidance")
# Legal-form and group words that name the same organisation (宏利金融 is 宏利).
ORG_FORM_SUFFIXES = ("股份有限公司", "有限公司", "公司", "金融", "集团", "集團", "控股")


def org_key(name: str | None) -> str | None:
    """The name without its legal-form and group words, however many (招联消费金融有限公司 -> 招联消费)."""
    stripped = True
    while name and stripped:
        stripped = False
        for suffix in ORG_FORM_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix) + 1:
                name, stripped = name[: -len(suffix)], True
                break
    return name


def agrees(field: str, got, want) -> bool:
    if field == "org":
        return org_key(got) == org_key(want)
    if field == "number" and got is not None and want is not None:
        return math.isclose(got, want, rel_tol=1e-6)
    return got == want


def fields_of(fact) -> dict:
    v = fact.value
    return {"org": fact.org.text if fact.org else None, "metric": fact.metric.text, "number": v.number,
            "unit": v.unit, "kind": v.kind, "period": fact.period.normalized if fact.period else None,
            "guidance": fact.guidance}


def read_check_set(folder: Path) -> tuple[list, list[dict]]:
    """The pages and checked facts of a check set; an InputError names the file and line of bad data
    (a page that is no document, a checked fact whose value span is not its page's text)."""
    from pydantic import ValidationError

    from caibao.schema import Document

    docs = {}
    for lineno, obj in iter_jsonl(folder / "docs.jsonl"):
        try:
            docs[obj.get("id")] = Document(**obj)
        except ValidationError as exc:
            raise InputError(folder / "docs.jsonl", f"not a document ({exc.errors()[0]['msg']})", lineno) from None
    checks = []
    for lineno, c in iter_jsonl(folder / "checked_facts.jsonl"):
        doc, value = docs.get(c.get("doc_id")), c.get("value") or {}
        if doc is None or doc.text[value.get("start", 0) : value.get("end", 0)] != value.get("text"):
            raise InputError(folder / "checked_facts.jsonl", f"value {value.get('text')!r} is not at its offsets "
                             f"in page {c.get('doc_id')!r}", lineno)
        checks.append(c)
    return list(docs.values()), checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=Path, default=Path("annotations/checks/stage6"))
    ap.add_argument("--show", metavar="FIELD", help="print the facts whose FIELD disagrees with the check")
    ap.add_argument("--runtime", default="torch")
    args = ap.parse_args()

    try:
        docs, checks = read_check_set(args.checks)
    except InputError as exc:
        sys.exit(f"check_score: {exc}")
    from caibao.extract import Extractor

    extractor = Extractor.load(runtime=args.runtime)
    got = {(d.id, f.value.start, f.value.end): (f, d) for d, facts in zip(docs, extractor.extract_documents(docs))
           for f in facts}
    judged = [c for c in checks if c["expected"] is not None]
    right = gone = 0
    field_ok: Counter = Counter()
    for c in judged:
        hit = got.get((c["doc_id"], c["value"]["start"], c["value"]["end"]))
        if hit is None:
            gone += 1
            continue
        have = fields_of(hit[0])
        ok = {k: agrees(k, have[k], c["expected"][k]) for k in FIELDS}
        field_ok.update(k for k, v in ok.items() if v)
        right += all(ok.values())
        if args.show and not ok[args.show]:
            print(f"{c['doc_id']} {c['value']['text']!r}: expected {c['expected'][args.show]!r}, "
                  f"got {have[args.show]!r} | {hit[0].sentence[:90]}")
    n = len(judged)
    print(f"{args.checks}: {len(docs)} pages, {n} checked facts, {right} right in every field ({right / n:.3f}); "
          f"{gone} no longer extracted at the same span")
    print("field agreement:", {k: round(field_ok[k] / n, 3) for k in FIELDS})


if __name__ == "__main__":
    main()
