"""`caibao bundle`: a trained run installed as a bundled model, into temporary folders (never the package's).

The run is the untrained tiny model (configs/tiny.yaml over the tiny random encoder) with the
training log and metrics a finished `caibao train` run has; it is scored on two short real gold
documents, one test and one held-out, without hand-checked facts (so no calibration is fitted).
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import caibao.persistence
from caibao.annotations import read_gold, write_documents
from caibao.cli import app
from caibao.evaluate import strip_annotations
from caibao.extract import Extractor
from caibao.persistence import BUNDLED_MODELS, CONFIG_FILE, MODEL_FILE, bundled_model_path

ROOT = Path(__file__).resolve().parents[1]

runner = CliRunner()


@pytest.fixture(scope="module")
def short_gold():
    gold = read_gold(ROOT / "annotations" / "gold")
    return sorted((d for d in gold if d.relations and 120 < len(d.text) < 240), key=lambda d: d.id)[:2]


@pytest.fixture()
def gold_subset(short_gold, tmp_path):
    """(gold folder, splits.json): one test and one held-out document, no facts/ beside the folder."""
    write_documents(short_gold, tmp_path / "gold" / "subset.jsonl")
    splits = {"train": [], "dev": [], "test": [short_gold[0].id], "heldout": [short_gold[1].id]}
    (tmp_path / "splits.json").write_text(json.dumps(splits), "utf-8")
    return tmp_path / "gold", tmp_path / "splits.json"


@pytest.fixture()
def run_dir(tiny_model_dir, tmp_path):
    """A finished `caibao train` run in miniature: the tiny model with a training log and metrics."""
    run = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_model_dir, run)
    (run / "train_log.jsonl").write_text('{"epoch": 1, "train_loss": 1.0}\n', "utf-8")
    (run / "metrics.json").write_text(json.dumps({"train_seconds": 1.0, "history": [{"epoch": 1}]}), "utf-8")
    return run


@pytest.fixture()
def resources(tmp_path, monkeypatch):
    """The bundled models' folders moved to a temporary resources folder; the ONNX graphs cached there too."""
    root = tmp_path / "resources"
    monkeypatch.setattr(caibao.persistence, "bundled_model_path", lambda name="full": root / Path(BUNDLED_MODELS[name]).name)
    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path / "cache"))
    return root


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.mark.slow  # every runtime is scored: ONNX exports
def test_bundle_installs_a_loadable_model_and_its_scores(run_dir, gold_subset, resources, short_gold):
    packaged = {name: tree_digest(bundled_model_path(name)) for name in BUNDLED_MODELS}  # the real ones
    gold, splits = gold_subset
    result = runner.invoke(app, ["bundle", str(run_dir), "--name", "distilled", "--gold", str(gold),
                                 "--splits", str(splits)])
    assert result.exit_code == 0, result.output
    target = resources / "model-distilled"  # --name picks the folder
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["entity", "relation", "fact", "bundled"]
    assert str(target) in result.stdout
    assert sorted(p.name for p in target.iterdir()) == sorted([CONFIG_FILE, MODEL_FILE, "metrics.json",
                                                               "train_log.jsonl"])
    metrics = json.loads((target / "metrics.json").read_text("utf-8"))
    assert metrics["test_documents"] == 1 and metrics["heldout_documents"] == 1
    assert "torch" in metrics["runtimes"] and metrics["train_seconds"] == 1.0
    preds = Extractor.load(target, runtime="torch").predict([strip_annotations(d) for d in short_gold])
    assert [p.document.id for p in preds] == [d.id for d in short_gold]
    assert {name: tree_digest(bundled_model_path(name)) for name in BUNDLED_MODELS} == packaged


def test_a_failed_bundle_is_one_line_and_leaves_the_old_one(gold_subset, resources, tmp_path):
    gold, splits = gold_subset
    dest = tmp_path / "elsewhere" / "model"
    dest.mkdir(parents=True)
    (dest / MODEL_FILE).write_bytes(b"the old weights")
    run_dir = tmp_path / "runs" / "broken"  # every file a run has, the weights unreadable
    run_dir.mkdir(parents=True)
    for name in (CONFIG_FILE, "train_log.jsonl", "metrics.json"):
        (run_dir / name).write_text("{}", "utf-8")
    (run_dir / MODEL_FILE).write_bytes(b"not safetensors")
    args = ["--dest", str(dest), "--gold", str(gold), "--splits", str(splits)]
    result = runner.invoke(app, ["bundle", str(run_dir), *args])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(run_dir) in errors[0] and "Traceback" not in result.output
    assert tree_digest(dest) == {MODEL_FILE: hashlib.sha256(b"the old weights").hexdigest()}
    assert not resources.exists()  # --dest, not the bundled folder

    (run_dir / "metrics.json").unlink()  # not a finished run: named before anything is built
    result = runner.invoke(app, ["bundle", str(run_dir), *args])
    assert result.exit_code == 2 and f"{run_dir / 'metrics.json'}: missing" in " ".join(result.output.split())
    result = runner.invoke(app, ["bundle", str(run_dir), "--name", "tiny"])
    assert result.exit_code == 2 and "unknown --name 'tiny'" in result.output
