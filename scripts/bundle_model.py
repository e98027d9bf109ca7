"""Install a trained run as a bundled model and record its test scores.

    .venv/bin/python scripts/bundle_model.py runs/default                    # -> resources/model (full)
    .venv/bin/python scripts/bundle_model.py runs/distilled --name distilled # -> resources/model-distilled

Copies the config and the weights, the trained weight matrices stored as int8
with a per-row scale (`caibao.model.quantize_state`, to stay under the 20 MB
package budget), then scores the bundled files themselves and the rule baseline
on the fixed test split with `caibao.evaluate.score`, and the model on the held-out
organisations' articles (spans, and facts end to end against annotations/facts), and
writes metrics.json next to them (the regression guard in tests/test_bundled_model.py reads it).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def heldout_end_to_end(extractor, gold: dict, ids: list[str]) -> dict | None:
    """Span scores and end-to-end fact scores on the held-out organisations' articles."""
    from caibao.evaluate import end_to_end_scores, read_fact_gold, score, strip_annotations
    from caibao.facts import build_facts

    if not ids:
        return None
    docs = [gold[i] for i in ids]
    predictions = extractor.predict([strip_annotations(d) for d in docs])
    result = score(docs, [p.document for p in predictions])
    fact_gold = read_fact_gold(ROOT / "annotations" / "facts")
    extracted = {p.document.id: build_facts(p.document, p.entity_scores, p.relation_scores) for p in predictions}
    result["end_to_end"] = end_to_end_scores({i: fact_gold[i] for i in ids}, extracted)
    return result


def main(run_dir: str, name: str = "full") -> None:
    from safetensors.torch import load_file, save_file

    from caibao.annotations import read_gold
    from caibao.baseline import RuleAnnotator
    from caibao.evaluate import score, strip_annotations
    from caibao.extract import Extractor
    from caibao.io import atomic_dir
    from caibao.model import CONFIG_FILE, MODEL_FILE, bundled_model_path, quantize_state

    run = Path(run_dir)
    target = bundled_model_path(name)
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    test = [gold[i] for i in splits["test"]]
    bare = [strip_annotations(d) for d in test]
    # The new bundle is built and scored beside the old one and swapped in whole:
    # a failure (a missing run file, a model that does not load) leaves the old bundle.
    with atomic_dir(target) as tmp:
        for file in (CONFIG_FILE, "train_log.jsonl"):
            shutil.copy2(run / file, tmp / file)
        save_file(quantize_state(load_file(str(run / MODEL_FILE))), str(tmp / MODEL_FILE))
        started = time.time()
        extractor = Extractor.load(tmp, quantize=False, runtime="torch")
        preds = [p.document for p in extractor.predict(bare)]
        model_scores = score(test, preds)
        heldout_scores = heldout_end_to_end(extractor, gold, splits.get("heldout", []))
        baseline = RuleAnnotator()
        baseline_scores = score(test, [baseline.annotate(d) for d in bare])
        train_metrics = json.loads((run / "metrics.json").read_text("utf-8"))
        metrics = {
            "test_documents": len(test),
            "test": model_scores,
            "baseline_test": baseline_scores,
            "heldout_documents": len(splits.get("heldout", [])),
            "heldout": heldout_scores,
            "train_seconds": train_metrics.get("train_seconds"),
            "train_history": train_metrics.get("history"),
            "evaluated_in_s": round(time.time() - started, 1),
        }
        (tmp / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), "utf-8")
    for key in ("entity", "relation", "fact"):
        print(f"{key:9} model F1 {model_scores[key]['micro']['f1']:.4f}   baseline F1 "
              f"{baseline_scores[key]['micro']['f1']:.4f}")
    if heldout_scores:
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
    ap.add_argument("--name", default="full", help="the bundled model it becomes (caibao.model.BUNDLED_MODELS)")
    args = ap.parse_args()
    main(args.run_dir, args.name)
