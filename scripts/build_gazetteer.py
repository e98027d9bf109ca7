"""Write the organisation-name gazetteer of training-time name swapping (caibao.augment).

Names come from two places, each recorded next to the name: organisations named in
stored public pages (data/org_names_from_pages.tsv: name<TAB>page address) and the
ORG spans of the train split's web articles (name<TAB>page address (gold document)).
Every name of a held-out organisation is left out, so that no held-out name is ever
seen in training. Deterministic; writes the file atomically:

    python scripts/build_gazetteer.py [--out src/caibao/resources/lexicons/org_gazetteer.tsv]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from caibao.annotations import read_gold
from caibao.facts import org_key
from caibao.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# Names of Chinese financial and internet organisations, for training-time name swapping\n"
          "# (caibao.augment). name<TAB>where it was found: a stored public page, or the train-split web\n"
          "# gold document naming it. Names of the held-out organisations are left out (scripts/build_gazetteer.py).\n")


def gazetteer_lines() -> list[str]:
    docs = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    held = {org_key(docs[i].span_text(e)) for i in splits.get("heldout", []) for e in docs[i].entities
            if e.label == "ORG"}
    found: dict[str, str] = {}
    for line in (ROOT / "data" / "org_names_from_pages.tsv").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, source = line.split("\t", 1)
            found.setdefault(name, source)
    for i in splits["train"]:
        if i.startswith("web-"):
            for e in docs[i].entities:
                name = docs[i].span_text(e)
                if e.label == "ORG" and len(name) >= 2 and not any(c.isspace() for c in name):
                    found.setdefault(name, f"{docs[i].meta['source']} (gold {i})")
    return [f"{n}\t{found[n]}\n" for n in sorted(found) if org_key(n) not in held]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "caibao" / "resources" / "lexicons" / "org_gazetteer.tsv")
    args = ap.parse_args()
    lines = gazetteer_lines()
    atomic_write_text(args.out, HEADER + "".join(lines))
    print(f"{len(lines)} names -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
