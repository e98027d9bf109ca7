"""Resolve hand-written annotation specs (surface strings) into gold JSONL with offsets.

An annotator writes one JSON line per document:

    {"id": "seed-002-0042",
     "entities": [{"id": "e1", "label": "ORG", "text": "乐信", "occ": 0}, ...],
     "relations": [{"head": "e1", "tail": "e2", "label": "org_metric"}, ...]}

``occ`` is the 0-based occurrence of ``text`` in the document text. This
script looks the text up in the documents file, computes offsets, validates
every document with the same checks as ``caibao validate`` and writes the
gold file atomically. Nothing is written when a spec cannot be resolved.

    python scripts/spec_to_gold.py SPEC.jsonl --docs data/documents.jsonl --out annotations/gold/batch-01.jsonl --annotator batch-01
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from caibao.annotations import check_document, read_documents, resolve_span_spec, write_documents
from caibao.io import iter_jsonl


def show(doc) -> None:
    """Print each sentence with its entities bracketed, then its relations, for a reviewer."""
    from caibao.schema import sentence_bounds

    ents = doc.entity_by_id()
    print(f"=== {doc.id}")
    for s, e in sentence_bounds(doc.text):
        inside = [x for x in doc.entities if s <= x.start < e]
        if not inside:
            continue
        marked, pos = [], s
        for x in sorted(inside, key=lambda x: x.start):
            marked.append(doc.text[pos:x.start])
            marked.append(f"[{doc.text[x.start:x.end]}]{x.label}/{x.id}")
            pos = x.end
        marked.append(doc.text[pos:e])
        print("  " + "".join(marked))
        for r in doc.relations:
            if r.head in ents and s <= ents[r.head].start < e:
                h, t = ents[r.head], ents.get(r.tail)
                print(f"      {doc.text[h.start:h.end]} -{r.label}-> {doc.text[t.start:t.end] if t else r.tail}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", type=Path)
    ap.add_argument("--docs", type=Path, default=Path("data/documents.jsonl"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--annotator", required=True, help="who annotated (recorded in meta.annotation)")
    ap.add_argument("--show", action="store_true", help="print every entity and relation in its sentence, for review")
    args = ap.parse_args()

    docs = {d.id: d for d in read_documents(args.docs)}
    gold, failures = [], 0
    for lineno, spec in iter_jsonl(args.spec):
        doc = docs.get(spec.get("id"))
        if doc is None:
            print(f"{args.spec}:{lineno}: unknown document id {spec.get('id')!r}")
            failures += 1
            continue
        try:
            resolved = resolve_span_spec(doc, spec)
        except (ValueError, KeyError, TypeError) as exc:
            print(f"{args.spec}:{lineno}: {exc}")
            failures += 1
            continue
        resolved.meta["annotation"] = {
            "method": "manual span annotation from the guide (surface-string spec resolved to offsets)",
            "annotator": args.annotator,
            "review_passes": 1,
        }
        for problem in check_document(resolved, str(args.spec), lineno):
            print(problem)
            failures += problem.severity == "error"
        gold.append(resolved)
        if args.show:
            show(resolved)
    if failures:
        print(f"{failures} problems: nothing written")
        return 1
    write_documents(gold, args.out)
    print(f"{len(gold)} documents -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
