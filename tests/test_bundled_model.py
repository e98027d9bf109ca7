"""The bundled models: small enough to ship, and no worse than their recorded test-split scores (regression guard)."""

import json
from pathlib import Path

import pytest
import torch

from caibao.annotations import read_gold
from caibao.evaluate import score, strip_annotations
from caibao.extract import DEFAULT_MODEL, Extractor
from caibao.persistence import BUNDLED_MODELS, CONFIG_FILE, MODEL_FILE, bundled_model_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
def test_bundled_model_is_small(name):
    model = bundled_model_path(name)
    assert (model / CONFIG_FILE).exists(), f"{model} is missing"
    size = sum(f.stat().st_size for f in model.iterdir() if f.is_file())
    assert size <= 20 * 1024 * 1024, f"bundled model {name} is {size / 2**20:.1f} MB"


@pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
def test_bundled_weight_matrices_are_int8_with_row_scales(name):
    from safetensors import safe_open

    from caibao.persistence import ROW_SCALE_SUFFIX

    model = bundled_model_path(name)
    layers = json.loads((model / CONFIG_FILE).read_text("utf-8"))["config"]["model"]["train_top_layers"]
    with safe_open(str(model / MODEL_FILE), "pt") as f:
        names = set(f.keys())
        scaled = {n[: -len(ROW_SCALE_SUFFIX)] for n in names if n.endswith(ROW_SCALE_SUFFIX)}
        assert len(scaled) >= layers * 6  # 6 matrices per trained layer
        assert all(f.get_tensor(n).dtype == torch.int8 for n in scaled)


def test_the_default_model_is_bundled():
    assert DEFAULT_MODEL in BUNDLED_MODELS


@pytest.fixture(scope="module", params=sorted(BUNDLED_MODELS))
def scored(request):
    """(name, test-split scores) of each bundled model, run as `caibao extract` runs it by default."""
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    test = [gold[i] for i in json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))["test"]]
    extractor = Extractor.load(request.param, quantize=False)
    preds = [p.document for p in extractor.predict([strip_annotations(d) for d in test])]
    return request.param, score(test, preds)


@pytest.mark.slow
def test_bundled_model_holds_its_recorded_test_scores(scored):
    name, scores = scored
    recorded = json.loads((bundled_model_path(name) / "metrics.json").read_text("utf-8"))["test"]
    for key in ("entity", "relation", "fact"):
        assert scores[key]["micro"]["f1"] >= recorded[key]["micro"]["f1"] - 0.02, (name, key)


@pytest.mark.slow
def test_bundled_model_beats_the_rule_baseline(scored):
    name, scores = scored
    recorded = json.loads((bundled_model_path(name) / "metrics.json").read_text("utf-8"))
    for key in ("entity", "relation", "fact"):
        assert scores[key]["micro"]["f1"] > recorded["baseline_test"][key]["micro"]["f1"], (name, key)
