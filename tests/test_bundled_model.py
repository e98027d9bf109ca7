"""The bundled model: small enough to ship, and no worse than its recorded test-split scores (regression guard)."""

import json
from pathlib import Path

import pytest
import torch

from caibao.annotations import read_gold
from caibao.evaluate import score, strip_annotations
from caibao.extract import Extractor
from caibao.model import CONFIG_FILE, MODEL_FILE, bundled_model_path

ROOT = Path(__file__).resolve().parents[1]
MODEL = bundled_model_path()


def test_bundled_model_is_small():
    assert (MODEL / CONFIG_FILE).exists(), "src/caibao/resources/model is missing"
    size = sum(f.stat().st_size for f in MODEL.iterdir() if f.is_file())
    assert size <= 20 * 1024 * 1024, f"bundled model is {size / 2**20:.1f} MB"


def test_bundled_weight_matrices_are_int8_with_row_scales():
    from safetensors import safe_open

    from caibao.model import ROW_SCALE_SUFFIX

    with safe_open(str(MODEL / MODEL_FILE), "pt") as f:
        names = set(f.keys())
        scaled = {n[: -len(ROW_SCALE_SUFFIX)] for n in names if n.endswith(ROW_SCALE_SUFFIX)}
        assert len(scaled) >= 8 * 6  # 6 matrices per trained layer
        assert all(f.get_tensor(n).dtype == torch.int8 for n in scaled)


@pytest.fixture(scope="module")
def test_scores():
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    test = [gold[i] for i in json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))["test"]]
    extractor = Extractor.load(quantize=False)
    preds = [p.document for p in extractor.predict([strip_annotations(d) for d in test])]
    return score(test, preds)


def test_bundled_model_holds_its_recorded_test_scores(test_scores):
    recorded = json.loads((MODEL / "metrics.json").read_text("utf-8"))["test"]
    for name in ("entity", "relation", "fact"):
        assert test_scores[name]["micro"]["f1"] >= recorded[name]["micro"]["f1"] - 0.02, name


def test_bundled_model_beats_the_rule_baseline(test_scores):
    recorded = json.loads((MODEL / "metrics.json").read_text("utf-8"))
    for name in ("entity", "relation", "fact"):
        assert test_scores[name]["micro"]["f1"] > recorded["baseline_test"][name]["micro"]["f1"], name
