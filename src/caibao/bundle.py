"""Bundled models: a trained run as the package ships it (int8 weights) and its recorded scores.

``caibao bundle`` and ``caibao retrain --bundle`` install runs this way: the run's config and log are copied, its trained weight matrices stored
as int8 with a per-row scale (:func:`caibao.persistence.quantize_state`, to stay
under the 20 MB package budget), and the copy itself is scored, the model on
the fixed test split and on the held-out organisations' articles (spans, and
facts end to end against the hand-checked facts when there are some), the
rule baseline on the test split. ``metrics.json`` beside the weights records
it all; ``tests/test_bundled_model.py`` guards the recorded test scores. When
there are hand-checked facts, the copy's confidence calibration is fitted too
(``calibration.json``, :mod:`caibao.calibration`, as ``caibao calibrate`` fits it).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from caibao.io import InputError
from caibao.schema import Document

METRICS_FILE = "metrics.json"
TRAIN_LOG_FILE = "train_log.jsonl"
HELDOUT_SPLIT = "heldout"
# The splits whose hand-checked facts fit a bundle's calibration (never the training split).
CALIBRATION_SPLITS = ("dev", HELDOUT_SPLIT)


@dataclass
class EvalSet:
    """The gold documents a bundled model is scored on, and the hand-checked facts (None: none)."""

    test: list[Document]
    heldout: list[Document]
    fact_gold: dict[str, dict] | None
    calibration: list[Document] = field(default_factory=list)  # the CALIBRATION_SPLITS' documents


def load_eval_set(gold_dir: Path | str, splits_path: Path | str, facts_dir: Path | str | None) -> EvalSet:
    """The test and held-out splits of the gold set; facts from ``facts_dir`` if it exists."""
    from caibao.annotations import read_gold
    from caibao.evaluate import read_fact_gold
    from caibao.gold import read_splits, unknown_ids

    gold = {d.id: d for d in read_gold(gold_dir)}
    splits = read_splits(splits_path)
    missing = unknown_ids(splits, ("test", HELDOUT_SPLIT, *CALIBRATION_SPLITS), gold)
    if missing:
        raise InputError(splits_path, f"{missing[0]} ({len(missing)} ids in all) is not in {gold_dir}")
    facts = read_fact_gold(facts_dir) if facts_dir is not None and Path(facts_dir).exists() else None
    return EvalSet(test=[gold[i] for i in splits.get("test", [])],
                   heldout=[gold[i] for i in splits.get(HELDOUT_SPLIT, [])], fact_gold=facts,
                   calibration=[gold[i] for name in CALIBRATION_SPLITS for i in splits.get(name, [])])


def check_run(run_dir: Path | str) -> None:
    """An :class:`InputError` naming what ``run_dir`` lacks to be bundled (a finished ``caibao train`` run)."""
    from caibao.persistence import CONFIG_FILE, MODEL_FILE

    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(run, "no such folder (a trained run: the output_dir of `caibao train`)")
    for name in (CONFIG_FILE, MODEL_FILE, TRAIN_LOG_FILE, METRICS_FILE):
        if not (run / name).is_file():
            raise InputError(run / name, "missing: not a finished `caibao train` run")


def stage(run_dir: Path | str, folder: Path | str) -> None:
    """Write the bundled form of the trained run ``run_dir`` into the existing ``folder``."""
    from safetensors.torch import load_file, save_file

    from caibao.persistence import CONFIG_FILE, MODEL_FILE, quantize_state

    run, folder = Path(run_dir), Path(folder)
    for name in (CONFIG_FILE, TRAIN_LOG_FILE):
        shutil.copy2(run / name, folder / name)
    save_file(quantize_state(load_file(str(run / MODEL_FILE))), str(folder / MODEL_FILE))


def _scores_on(extractor, docs: list[Document], fact_gold: dict[str, dict] | None) -> dict:
    """Span scores of the extractor on ``docs``, and end to end on those ``fact_gold`` covers."""
    from caibao.evaluate import end_to_end_scores, score, strip_annotations

    predictions = extractor.predict([strip_annotations(d) for d in docs])
    result = score(docs, [p.document for p in predictions])
    covered = {d.id: fact_gold[d.id] for d in docs if fact_gold and d.id in fact_gold}
    if covered:
        extracted = {p.document.id: extractor.facts(p)
                     for p in predictions if p.document.id in covered}
        result["end_to_end"] = end_to_end_scores(covered, extracted)
    return result


def score_model(model_dir: Path | str, data: EvalSet) -> dict:
    """The model in ``model_dir`` scored as ``caibao evaluate`` scores it (PyTorch, no dynamic int8)."""
    from caibao.extract import Extractor

    extractor = Extractor.load(model_dir, quantize=False, runtime="torch")
    return {
        "test_documents": len(data.test),
        "test": _scores_on(extractor, data.test, None),
        "heldout_documents": len(data.heldout),
        "heldout": _scores_on(extractor, data.heldout, data.fact_gold) if data.heldout else None,
        "runtimes": runtime_scores(model_dir, data.test),
    }


def runtime_scores(model_dir: Path | str, test: list[Document]) -> dict[str, dict[str, float]]:
    """Entity and fact F1 on the test split with every runtime (what ``--runtime auto`` checks before
    choosing a reduced-precision one, :mod:`caibao.runtimes`). ONNX runtimes need onnxruntime."""
    from caibao.evaluate import score, strip_annotations
    from caibao.extract import Extractor, _onnx_installed
    from caibao.runtimes import RUNTIMES

    out = {}
    for name, rt in RUNTIMES.items():
        if rt.needs_onnx and not _onnx_installed():
            continue
        extractor = Extractor.load(model_dir, quantize=False, runtime=name)
        result = score(test, [p.document for p in extractor.predict([strip_annotations(d) for d in test])])
        out[name] = {k: round(result[k]["micro"]["f1"], 4) for k in ("entity", "fact")}
    return out


def record_runtime_scores(model_dir: Path | str, test: list[Document]) -> dict:
    """Add :func:`runtime_scores` to an installed model's ``metrics.json`` (the rest unchanged)."""
    from caibao.io import atomic_write_text

    path = Path(model_dir) / METRICS_FILE
    metrics = json.loads(path.read_text("utf-8"))
    metrics["runtimes"] = runtime_scores(model_dir, test)
    atomic_write_text(path, json.dumps(metrics, ensure_ascii=False, indent=1))
    return metrics["runtimes"]


def baseline_scores(data: EvalSet) -> dict:
    """The rule baseline on the test split (what every bundled model must beat)."""
    from caibao.baseline import RuleAnnotator
    from caibao.evaluate import score, strip_annotations

    annotator = RuleAnnotator()
    return score(data.test, [annotator.annotate(strip_annotations(d)) for d in data.test])


def write_metrics(folder: Path | str, run_dir: Path | str, scores: dict, baseline: dict, seconds: float) -> dict:
    """``metrics.json`` of a bundled model: its scores, the baseline's and the run's training record."""
    from caibao.io import atomic_write_text

    train_metrics = json.loads((Path(run_dir) / METRICS_FILE).read_text("utf-8"))
    metrics = {
        "test_documents": scores["test_documents"],
        "test": scores["test"],
        "baseline_test": baseline,
        "heldout_documents": scores["heldout_documents"],
        "heldout": scores["heldout"],
        "runtimes": scores.get("runtimes"),
        "train_seconds": train_metrics.get("train_seconds"),
        "train_history": train_metrics.get("history"),
        "evaluated_in_s": round(seconds, 1),
    }
    atomic_write_text(Path(folder) / METRICS_FILE, json.dumps(metrics, ensure_ascii=False, indent=1))
    return metrics


def recorded_metrics(model_dir: Path | str) -> dict | None:
    """The ``metrics.json`` of a bundled model, or None when it has none (or is not there)."""
    path = Path(model_dir) / METRICS_FILE
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def install(run_dir: Path | str, target: Path | str, data: EvalSet) -> dict:
    """Bundle the run into ``target`` and record its scores; returns the metrics.

    The new bundle is built and scored beside the old one and swapped in whole
    (:func:`caibao.io.atomic_dir`): a failure (a missing run file, a model that
    does not load) leaves the old bundle.
    """
    from caibao.io import atomic_dir

    with atomic_dir(target) as tmp:
        stage(run_dir, tmp)
        started = time.time()
        scores = score_model(tmp, data)
        metrics = write_metrics(tmp, run_dir, scores, baseline_scores(data), time.time() - started)
        if data.fact_gold and data.calibration:
            fit_calibration(tmp, data)
    return metrics


def fit_calibration(model_dir: Path | str, data: EvalSet) -> None:
    """Fit and save the confidence calibration of the model in ``model_dir`` (held-out reliability
    reported cross-fitted by organisation, :func:`caibao.calibration.calibrate`)."""
    from caibao.calibration import calibrate
    from caibao.extract import Extractor

    extractor = Extractor.load(model_dir, quantize=False, runtime="torch")
    calibrate(extractor, data.calibration, data.fact_gold, {d.id for d in data.heldout}).save(model_dir)


def summary_lines(metrics: dict, folder: Path | str) -> list[str]:
    """What ``caibao bundle`` prints: the test F1s beside the baseline's, the held-out ones and the size."""
    model, baseline, heldout = metrics["test"], metrics["baseline_test"], metrics["heldout"]
    lines = [f"{key:9} model F1 {model[key]['micro']['f1']:.4f}   baseline F1 {baseline[key]['micro']['f1']:.4f}"
             for key in ("entity", "relation", "fact")]
    if heldout and "end_to_end" in heldout:
        e2e = heldout["end_to_end"]
        lines.append(f"held-out: entity {heldout['entity']['micro']['f1']:.4f} relation "
                     f"{heldout['relation']['micro']['f1']:.4f} end-to-end fact {e2e['micro']['f1']:.4f} "
                     f"(org {e2e['field_accuracy']['org']:.4f}, period {e2e['field_accuracy']['period']:.4f})")
    size = sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())
    lines.append(f"bundled model: {size / 2**20:.1f} MB in {folder}")
    return lines
