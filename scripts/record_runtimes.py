"""Record each runtime's test-split F1 in a bundled model's metrics.json (what `--runtime auto` checks).

    .venv/bin/python scripts/record_runtimes.py            # both bundled models
    .venv/bin/python scripts/record_runtimes.py distilled

`caibao bundle` and `caibao retrain --bundle` record it when they install
a model; this adds it to a model installed before runtimes were recorded, leaving
the rest of metrics.json as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(names: list[str]) -> None:
    from caibao.bundle import load_eval_set, record_runtime_scores
    from caibao.persistence import bundled_model_path

    data = load_eval_set(ROOT / "annotations" / "gold", ROOT / "annotations" / "splits.json", None)
    for name in names:
        scores = record_runtime_scores(bundled_model_path(name), data.test)
        print(name, " ".join(f"{rt}: entity {s['entity']:.4f} fact {s['fact']:.4f};" for rt, s in scores.items()))


if __name__ == "__main__":
    main(sys.argv[1:] or ["distilled", "full"])
