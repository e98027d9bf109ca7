"""Put the web batches (annotations/gold/web-*.jsonl) into the fixed splits, holding out whole organisations.

Documents that share an organisation (any ORG mention of an organisation that
owns a fact somewhere in the batches, names grouped by ``caibao.facts.org_key``
and the articles' alias lists) are linked; each connected group of documents
goes to one split. Groups whose fact-owning organisations appear nowhere in the
older gold set (any split) are candidates for the ``heldout`` split, taken
round-robin across batches (sectors) until ``--heldout`` documents are reached;
of the rest, ``--dev`` documents go to dev and all others to train. Every
document placed before keeps its split (adding articles never moves one), and a
new article that shares an organisation with placed ones joins their split (a
held-out one's first, so no held-out organisation reaches training). Deterministic; writes the splits file atomically
and prints the held-out organisations.

    python scripts/heldout_split.py [--heldout 45] [--dev 12]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

from caibao.annotations import read_documents
from caibao.evaluate import read_fact_gold
from caibao.facts import org_key
from caibao.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def owners(fact_gold: dict) -> dict[str, set[str]]:
    """Document id -> keys of every name of every organisation that owns one of its facts."""
    out = {}
    for doc_id, row in fact_gold.items():
        keys = set()
        for f in row["facts"]:
            if f["org"]:
                keys |= {org_key(n) for n in [f["org"], *row.get("aliases", {}).get(f["org"], [])]}
        out[doc_id] = keys
    return out


def same_brand(a: str, b: str) -> bool:
    """One organisation key inside the other (度小满 / 度小满小贷, 移卡 / 移卡科技, 平安 / 平安健康):
    the same organisation or its group, which a held-out split must not separate."""
    return a != b and min(len(a), len(b)) >= 2 and (a in b or b in a)


def groups(docs, owner_keys: dict[str, set[str]]) -> list[list[str]]:
    """Connected groups of documents sharing a mention of a fact-owning organisation (or its brand)."""
    all_owners = set().union(*owner_keys.values())
    mention_keys = {d.id: {org_key(d.span_text(e)) for e in d.entities if e.label == "ORG"} for d in docs}
    mentions = {d.id: {k for k in mention_keys[d.id] if k in all_owners or any(same_brand(k, o) for o in all_owners)}
                | owner_keys[d.id] for d in docs}
    parent = {d.id: d.id for d in docs}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_key = defaultdict(list)
    for doc_id, keys in mentions.items():
        for k in keys:
            by_key[k].append(doc_id)
    for a in list(by_key):
        for b in list(by_key):
            if same_brand(a, b):
                by_key[a] = by_key[a] + by_key[b]
    for ids in by_key.values():
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
    out = defaultdict(list)
    for d in docs:
        out[find(d.id)].append(d.id)
    return sorted(out.values(), key=lambda g: hashlib.sha256(g[0].encode()).hexdigest())


def compute_splits(gold_dir: Path, facts_dir: Path, splits: dict, heldout: int = 36, dev: int = 12,
                   max_group: int = 3) -> tuple[dict, list[str]]:
    """The splits with the web documents placed (the old splits kept), and the held-out organisations."""
    web = [d for f in sorted(gold_dir.glob("web-*.jsonl")) for d in read_documents(f)]
    old = [d for f in sorted(gold_dir.glob("*.jsonl")) if not f.name.startswith("web-") for d in read_documents(f)]
    fact_gold = read_fact_gold(facts_dir)
    owner_keys = owners(fact_gold)
    for d in web:
        owner_keys.setdefault(d.id, set())
    seen_before = {org_key(d.span_text(e)) for d in old for e in d.entities if e.label == "ORG"}
    seen_before |= {k for k in set().union(*owner_keys.values()) if any(same_brand(k, o) for o in seen_before)}

    # Sticky: a web document placed before keeps its split (adding articles never moves one), and
    # a new one joins the split of the placed documents it shares an organisation with (a held-out
    # one's first: a held-out organisation's article never goes into training).
    placed = {i: name for name, ids in splits.items() for i in ids}
    splits = {name: list(ids) for name, ids in splits.items()}
    splits.setdefault("heldout", [])

    def web_placed(name: str) -> int:
        return sum(1 for i in splits[name] if i.startswith("web-"))

    fresh: list[list[str]] = []
    for g in groups(web, owner_keys):
        new = [i for i in g if i not in placed]
        joined = {placed[i] for i in g if i in placed}
        if not new:
            continue
        if joined:
            target = "heldout" if "heldout" in joined else "train" if "train" in joined else sorted(joined)[0]
            splits[target].extend(new)
        else:
            fresh.append(new)
    # Groups of new documents only: held out while the split is short of --heldout documents (whole
    # organisations never seen before, taken round-robin across batches), then dev up to --dev web
    # documents, then train.
    candidates, rest = defaultdict(list), []
    for g in fresh:
        keys = set().union(*(owner_keys[i] for i in g))
        if keys and not keys & seen_before and len(g) <= max_group:
            candidates[g[0].split("-")[1]].append(g)
        else:
            rest.append(g)
    while web_placed("heldout") < heldout and any(candidates.values()):
        for batch in sorted(candidates):
            if candidates[batch] and web_placed("heldout") < heldout:
                splits["heldout"].extend(candidates[batch].pop(0))
    rest += [g for gs in candidates.values() for g in gs]
    rest.sort(key=lambda g: hashlib.sha256(g[0].encode()).hexdigest())
    for g in rest:
        splits["dev" if web_placed("dev") < dev and len(g) <= max_group else "train"].extend(g)
    splits["heldout"] = sorted(splits["heldout"])
    held_orgs = sorted({f["org"] for i in splits["heldout"] for f in fact_gold.get(i, {}).get("facts", []) if f["org"]})
    return splits, held_orgs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heldout", type=int, default=45)
    ap.add_argument("--dev", type=int, default=12)
    ap.add_argument("--max-group", type=int, default=3, help="largest group of documents held out together")
    args = ap.parse_args()
    splits_path = ROOT / "annotations" / "splits.json"
    splits, held_orgs = compute_splits(ROOT / "annotations" / "gold", ROOT / "annotations" / "facts",
                                       json.loads(splits_path.read_text("utf-8")), args.heldout, args.dev,
                                       args.max_group)
    atomic_write_text(splits_path, json.dumps(splits, ensure_ascii=False, indent=1) + "\n")
    print({k: len(v) for k, v in splits.items()})
    print("held-out organisations:", " ".join(held_orgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
