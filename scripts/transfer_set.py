"""Write the distillation transfer set: corpus documents nobody annotated, labelled later by the teacher.

    .venv/bin/python scripts/transfer_set.py            # -> data/transfer.jsonl

Knowledge distillation learns from the teacher's predictions, so it can use
text without gold labels (``distill.transfer`` in a config). Which corpus
documents may be used, so that nothing of the held-out splits leaks into
training (``caibao.gold.select_transfer``):

* Chinese, not an exact duplicate, not a gold document;
* not in a near-duplicate cluster that holds a dev or test document;
* sharing under 2% of its 12-character strings with any dev or test
  document (a second guard: a reworded copy of a held-out article that the
  clustering missed).

Written atomically; the documents carry no annotations. `caibao retrain`
writes it the same way when the distilled config names a transfer set.
"""

from __future__ import annotations

from pathlib import Path

from caibao.gold import MAX_HELD_OUT_OVERLAP, write_transfer_set  # noqa: F401 - the limit, as before
from caibao.gold import TRANSFER_NGRAM as NGRAM  # noqa: F401
from caibao.gold import char_ngrams as ngrams  # noqa: F401 - tests/test_distill.py checks the set with it

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path = ROOT / "data" / "transfer.jsonl") -> None:
    print(write_transfer_set(out, ROOT / "data" / "corpus", ROOT / "annotations" / "gold",
                             ROOT / "annotations" / "splits.json"))


if __name__ == "__main__":
    main()
