"""Write the distillation transfer set: corpus documents nobody annotated, labelled later by the teacher.

    .venv/bin/python scripts/transfer_set.py            # -> data/transfer.jsonl

Knowledge distillation learns from the teacher's predictions, so it can use
text without gold labels (configs/distilled.yaml, ``distill.transfer``).
Which corpus documents may be used, so that nothing of the held-out splits
leaks into training:

* Chinese, not an exact duplicate, not a gold document;
* not in a near-duplicate cluster that holds a dev or test document;
* sharing under 2% of its 12-character strings with any dev or test
  document (a second guard: a reworded copy of a held-out article that the
  clustering missed).

Written atomically (caibao.annotations.write_documents); the documents carry no annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NGRAM = 12
MAX_HELD_OUT_OVERLAP = 0.02


def ngrams(text: str, n: int = NGRAM) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def main(out: Path = ROOT / "data" / "transfer.jsonl") -> None:
    from caibao.annotations import read_gold, write_documents
    from caibao.corpus import ingest
    from caibao.gold import cluster_of

    docs, _ = ingest([ROOT / "data" / "corpus"])
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    held_out = [gold[i] for name in ("dev", "test") for i in splits[name]]
    held_clusters = {cluster_of(d) for d in held_out}
    held_grams = set().union(*(ngrams(d.text) for d in held_out))
    kept, dropped = [], {"gold": 0, "held-out cluster": 0, "held-out overlap": 0}
    for d in docs:
        if d.meta.get("lang") != "zh" or "duplicate_of" in d.meta:
            continue
        grams = ngrams(d.text)
        if d.id in gold:
            dropped["gold"] += 1
        elif cluster_of(d) in held_clusters:
            dropped["held-out cluster"] += 1
        elif len(grams & held_grams) / max(1, len(grams)) >= MAX_HELD_OUT_OVERLAP:
            dropped["held-out overlap"] += 1
        else:
            kept.append(d)
    write_documents(kept, out)  # atomically, with empty entities and relations
    print(f"{len(kept)} documents, {sum(len(d.text) for d in kept):,} characters -> {out}; left out: {dropped}")


if __name__ == "__main__":
    main()
