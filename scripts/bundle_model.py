"""Install a trained run as a bundled model and record its test scores.

    .venv/bin/python scripts/bundle_model.py runs/default                    # -> resources/model (full)
    .venv/bin/python scripts/bundle_model.py runs/distilled --name distilled # -> resources/model-distilled

Copies the config and the weights, the trained weight matrices stored as int8
with a per-row scale (`caibao.persistence.quantize_state`, to stay under the 20 MB
package budget), then scores the bundled files themselves and the rule baseline
on the fixed test split with `caibao.evaluate.score`, and the model on the held-out
organisations' articles (spans, and facts end to end against annotations/facts), and
writes metrics.json next to them (the regression guard in tests/test_bundled_model.py reads it).
The work is `caibao.bundle.install`, shared with `caibao retrain --bundle`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(run_dir: str, name: str = "full") -> None:
    from caibao.bundle import install, load_eval_set
    from caibao.persistence import bundled_model_path

    target = bundled_model_path(name)
    data = load_eval_set(ROOT / "annotations" / "gold", ROOT / "annotations" / "splits.json",
                         ROOT / "annotations" / "facts")
    metrics = install(Path(run_dir), target, data)
    model_scores, baseline_scores, heldout_scores = metrics["test"], metrics["baseline_test"], metrics["heldout"]
    for key in ("entity", "relation", "fact"):
        print(f"{key:9} model F1 {model_scores[key]['micro']['f1']:.4f}   baseline F1 "
              f"{baseline_scores[key]['micro']['f1']:.4f}")
    if heldout_scores and "end_to_end" in heldout_scores:
        e2e = heldout_scores["end_to_end"]
        print(f"held-out: entity {heldout_scores['entity']['micro']['f1']:.4f} relation "
              f"{heldout_scores['relation']['micro']['f1']:.4f} end-to-end fact {e2e['micro']['f1']:.4f} "
              f"(org {e2e['field_accuracy']['org']:.4f}, period {e2e['field_accuracy']['period']:.4f})")
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    print(f"bundled model: {size / 2**20:.1f} MB in {target}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", default="runs/default", help="the trained run (caibao train's output_dir)")
    ap.add_argument("--name", default="full", help="the bundled model it becomes (caibao.persistence.BUNDLED_MODELS)")
    args = ap.parse_args()
    main(args.run_dir, args.name)
