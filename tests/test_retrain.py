"""`caibao retrain`: pull -> full model -> (transfer set) -> distilled model from the new full run -> scores -> bundle.

Tiny real runs (configs/tiny.yaml over the tiny random encoder) on a small real gold subset:
a few short documents of each split, and the hand-checked facts of the held-out one. The
test documents are trained on too (and there is no dev split, so the last epoch is kept):
a tiny run then scores above zero, and a printed score can be told from a placeholder.
"""

import hashlib
import json
import re
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from caibao import bundle
from caibao.annotations import read_gold, write_documents
from caibao.cli import app
from caibao.evaluate import read_fact_gold, score, strip_annotations
from caibao.extract import Extractor
from caibao.persistence import bundled_model_path, load_model
from caibao.retrain import RetrainError, format_scores, retrain
from caibao.review import Conflict, PullReport, ReviewError, retrain_command

pytestmark = pytest.mark.slow  # the retraining chain: training runs

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
# Documents per split in the subset: short ones with relations, so a tiny run takes a second.
PER_SPLIT = {"train": 3, "dev": 1, "test": 2, "heldout": 1}
# What the fake bundled models "recorded": far from anything a tiny random model scores.
RECORDED_F1 = 0.9876
# Enough steps on whole documents (one window each) for a tiny run to get some spans right (~4 s).
OVERFIT = {"model.max_length": 256, "training.batch_size": 2, "training.negatives_per_positive": 1.0,
           "training.learning_rate": 1e-2, "training.head_learning_rate": 1e-2, "training.epochs": 60,
           "training.max_steps": 60}

runner = CliRunner()


@pytest.fixture(scope="module")
def gold_subset(tmp_path_factory):
    """(gold folder, splits.json): a small real subset, facts/ beside the gold folder for the held-out document."""
    root = tmp_path_factory.mktemp("gold-subset")
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    facts = read_fact_gold(ROOT / "annotations" / "facts")
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    chosen = {}
    for name, n in PER_SPLIT.items():
        fit = [i for i in splits[name] if gold[i].relations and 120 < len(gold[i].text) < 400
               and (name != "heldout" or i in facts)]
        chosen[name] = sorted(fit)[:n]
    chosen["train"] += chosen["dev"] + chosen["test"]
    chosen["dev"] = []
    write_documents([gold[i] for ids in chosen.values() for i in ids], root / "gold" / "subset.jsonl")
    (root / "splits.json").write_text(json.dumps(chosen), "utf-8")
    (root / "facts").mkdir()
    (root / "facts" / "subset.jsonl").write_text(
        "".join(json.dumps(facts[i], ensure_ascii=False) + "\n" for i in chosen["heldout"]), "utf-8")
    return root / "gold", root / "splits.json"


def write_config(path: Path, encoder: Path, out: Path, **changes) -> Path:
    """configs/tiny.yaml over the tiny encoder, writing to ``out``, with dotted-key ``changes``."""
    raw = yaml.safe_load(TINY.read_text("utf-8"))
    raw["encoder"]["name"] = str(encoder)
    raw["output_dir"] = str(out)
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return path


@pytest.fixture()
def configs(tmp_path, tiny_encoder_dir):
    """(full config, distilled config): the distilled one as configs/distilled.yaml builds it, in miniature:
    the bottom layer of the encoder, starting from the bundled full model (training.init_from: full)."""
    full = write_config(tmp_path / "full.yaml", tiny_encoder_dir, tmp_path / "runs" / "full", **OVERFIT)
    distilled = write_config(tmp_path / "distilled.yaml", tiny_encoder_dir, tmp_path / "runs" / "distilled",
                             **{"name": "distilled", "model.keep_layers": [0], "training.init_from": "full"})
    return full, distilled


@pytest.fixture()
def targets(tmp_path):
    """Fake bundled models in a temporary place, with recorded scores."""
    out = {}
    recorded = {"entity": {"micro": {"f1": RECORDED_F1}}, "relation": {"micro": {"f1": RECORDED_F1}},
                "fact": {"micro": {"f1": RECORDED_F1}}}
    for name in ("full", "distilled"):
        folder = tmp_path / "bundled" / name
        folder.mkdir(parents=True)
        (folder / "caibao_model.safetensors").write_bytes(b"the old weights of " + name.encode())
        (folder / "metrics.json").write_text(json.dumps({"test": recorded}), "utf-8")
        out[name] = folder
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def independent_scores(run: Path, gold_dir: Path, splits_path: Path, tmp: Path) -> dict:
    """The run's test-split scores as the bundle would give them, computed here with caibao.evaluate directly."""
    folder = tmp / f"staged-{run.name}"
    folder.mkdir()
    bundle.stage(run, folder)
    gold = {d.id: d for d in read_gold(gold_dir)}
    test = [gold[i] for i in json.loads(splits_path.read_text("utf-8"))["test"]]
    preds = Extractor.load(folder, quantize=False, runtime="torch").predict([strip_annotations(d) for d in test])
    return score(test, [p.document for p in preds])


def test_the_chain_pulls_first_trains_distilled_from_the_new_full_run_and_bundles(
        configs, targets, gold_subset, tmp_path, monkeypatch):
    import caibao.train

    full_config, distilled_config = configs
    gold_dir, splits_path = gold_subset
    full_run = tmp_path / "runs" / "full"
    events = []

    def pull():
        events.append(("pull", full_run.exists()))
        return PullReport("caibao-gold", merged_new=["d1"], conflicts=[Conflict("d2", 7, "local-edit", "edited [sic]")])

    real_init = caibao.train.init_from_model
    initialised = []

    def spy_init(model, name, encoder_path):
        real_init(model, name, encoder_path)
        initialised.append((name, {k: v.clone() for k, v in model.state_dict().items()}))

    monkeypatch.setattr(caibao.train, "init_from_model", spy_init)
    said = []
    report = retrain(full_config, distilled_config, gold=gold_dir, splits=splits_path, pull=pull, bundle=True,
                     targets=targets, progress=False, say=said.append)

    assert events == [("pull", False)]  # pulled before anything was trained
    assert "pull: 1 new and 0 replaced documents merged, 1 conflicts" in said
    assert any("conflict" in s and "edited [sic]" in s for s in said)  # reported; the chain went on
    # The distilled run started from the new full run's weights, not from the bundled full model.
    assert [name for name, _ in initialised] == [str(full_run)]
    new_full = load_model(full_run).model.state_dict()
    state = initialised[0][1]
    layer0 = [k for k in state if k.startswith("encoder.encoder.layer.0.")]
    assert layer0 and all((state[k] == new_full[k].to(state[k].dtype)).all() for k in layer0)
    assert len(load_model(tmp_path / "runs" / "distilled").model.encoder.encoder.layer) == 1

    # Scores: the ones computed for the new models, next to the bundled models' recorded ones.
    assert [(r.model, r.split) for r in report.rows] == [("full", "test"), ("full", "heldout"),
                                                        ("distilled", "test"), ("distilled", "heldout")]
    for row in report.rows:
        assert (row.new["end to end"] is not None) == (row.split == "heldout")  # facts exist for held-out only
        assert row.bundled == ({"entity": RECORDED_F1, "relation": RECORDED_F1, "fact": RECORDED_F1,
                                "end to end": None} if row.split == "test" else None)
    for name, row in (("full", report.rows[0]), ("distilled", report.rows[2])):
        expected = independent_scores(tmp_path / "runs" / name, gold_dir, splits_path, tmp_path)
        assert {k: row.new[k] for k in ("entity", "relation", "fact")} == \
            {k: expected[k]["micro"]["f1"] for k in ("entity", "relation", "fact")}
    assert report.rows[0].new["entity"] > 0  # a real score, not a placeholder
    # ... installed, with exactly those scores recorded.
    assert report.installed == targets
    for name, folder in targets.items():
        metrics = json.loads((folder / "metrics.json").read_text("utf-8"))
        row = next(r for r in report.rows if r.model == name and r.split == "test")
        assert metrics["test"]["entity"]["micro"]["f1"] == row.new["entity"]
        assert metrics["heldout"]["end_to_end"]["micro"]["f1"] == \
            next(r for r in report.rows if r.model == name and r.split == "heldout").new["end to end"]
        assert load_model(folder).cfg.name == ("distilled" if name == "distilled" else "tiny")
    assert not [p for p in targets["full"].parent.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize("failing", ["train distilled", "evaluate distilled"])
def test_a_failing_step_is_named_and_installs_nothing(failing, configs, targets, gold_subset, tmp_path,
                                                      monkeypatch, tiny_encoder_dir):
    full_config, distilled_config = configs
    gold_dir, splits_path = gold_subset
    if failing == "train distilled":  # a layer the 2-layer encoder does not have
        write_config(distilled_config, tiny_encoder_dir, tmp_path / "runs" / "distilled",
                     **{"model.keep_layers": [0, 5], "training.init_from": "full"})
    else:  # the full model is already staged for installation when the distilled one fails to score
        real_score = bundle.score_model

        def score_or_fail(folder, data):
            if json.loads((Path(folder) / "caibao_config.json").read_text("utf-8"))["config"]["name"] == "distilled":
                raise OSError("disk full")
            return real_score(folder, data)

        monkeypatch.setattr(bundle, "score_model", score_or_fail)
    before = {name: tree_digest(folder) for name, folder in targets.items()}
    with pytest.raises(RetrainError) as err:
        retrain(full_config, distilled_config, gold=gold_dir, splits=splits_path, bundle=True, targets=targets,
                progress=False, say=lambda _: None)
    assert err.value.step == failing and str(err.value).startswith(failing + ": ")
    assert "\n" not in str(err.value)
    assert {name: tree_digest(folder) for name, folder in targets.items()} == before
    assert sorted(p.name for p in targets["full"].parent.iterdir()) == ["distilled", "full"]


def test_a_failed_pull_stops_the_chain_before_training(configs, gold_subset, tmp_path):
    full_config, distilled_config = configs
    gold_dir, splits_path = gold_subset

    def pull():
        raise ReviewError("2 problem(s) in the reviewed annotations of project 'p'; nothing was written:\n  task 1\n"
                          "  task 2")

    with pytest.raises(RetrainError) as err:
        retrain(full_config, distilled_config, gold=gold_dir, splits=splits_path, pull=pull, say=lambda _: None)
    assert str(err.value) == "pull: 2 problem(s) in the reviewed annotations of project 'p'; nothing was written:"
    assert err.value.details == ["  task 1", "  task 2"]
    assert not (tmp_path / "runs").exists()


def test_cli_prints_the_computed_scores(configs, gold_subset, tmp_path):
    full_config, distilled_config = configs
    gold_dir, splits_path = gold_subset
    result = runner.invoke(app, ["retrain", "--full-config", str(full_config), "--distilled-config",
                                 str(distilled_config), "--gold", str(gold_dir), "--splits", str(splits_path),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    table = {tuple(line.split()[:3]): line.split()[3:] for line in result.stdout.splitlines()
             if re.match(r"(full|distilled)\s+(test|heldout)\s+(new|bundled)", line)}
    assert len(table) == 8
    assert float(table[("full", "test", "new")][0]) > 0  # a real score, not a placeholder
    for name in ("full", "distilled"):
        expected = independent_scores(tmp_path / "runs" / name, gold_dir, splits_path, tmp_path)
        assert table[(name, "test", "new")][:3] == [f"{expected[k]['micro']['f1']:.4f}"
                                                    for k in ("entity", "relation", "fact")]
        recorded = json.loads((bundled_model_path(name) / "metrics.json").read_text("utf-8"))
        assert table[(name, "test", "bundled")][0] == f"{recorded['test']['entity']['micro']['f1']:.4f}"
    assert "nothing installed" in result.output


def test_cli_step_failure_and_bad_config(configs, gold_subset, tmp_path, tiny_encoder_dir):
    full_config, _ = configs
    gold_dir, splits_path = gold_subset
    common = ["--gold", str(gold_dir), "--splits", str(splits_path), "--no-progress", "--no-distilled"]
    broken = write_config(tmp_path / "broken.yaml", tiny_encoder_dir, tmp_path / "runs" / "broken",
                          **{"model.keep_layers": [0, 5]})
    result = runner.invoke(app, ["retrain", "--full-config", str(broken), *common])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: train full: ") and "layers" in errors[0]
    assert "Traceback" not in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: 0}\n", "utf-8")
    result = runner.invoke(app, ["retrain", "--full-config", str(bad), *common])
    assert result.exit_code == 2 and "training.epochs" in result.output

    result = runner.invoke(app, ["retrain", "--full-config", str(full_config), "--url", "http://127.0.0.1:1", *common])
    assert result.exit_code == 2 and "--project" in result.output


def test_help_lists_the_options():
    result = runner.invoke(app, ["retrain", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--project", "--gold", "--splits", "--full-config", "--distilled-config", "--no-distilled",
                   "--bundle", "--no-progress"):
        assert option in result.output
    result = runner.invoke(app, ["serve-ml", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "--project" in result.output and "caibao retrain" in result.output


def test_cli_pulls_first_and_a_failed_pull_trains_nothing(configs, gold_subset, tmp_path):
    full_config, distilled_config = configs
    gold_dir, splits_path = gold_subset
    secret = "k" * 40
    with socket.socket() as s:  # a loopback port nobody listens on: the pull fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["retrain", "--project", "caibao-gold", "--url", f"http://127.0.0.1:{port}",
                                 "--api-key", secret, "--full-config", str(full_config), "--distilled-config",
                                 str(distilled_config), "--gold", str(gold_dir), "--splits", str(splits_path)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: pull: ") and str(port) in errors[0]
    assert secret not in result.output
    assert not (tmp_path / "runs").exists()


def test_serve_ml_webhook_runs_caibao_retrain(monkeypatch):
    import sys

    command = retrain_command("configs/default.yaml", project="caibao-gold")
    assert command[:3] == [sys.executable, "-c", "from caibao.cli import main; main()"]
    assert command[3:] == ["retrain", "--full-config", "configs/default.yaml", "--project", "caibao-gold",
                           "--no-progress"]
    assert "--project" not in retrain_command("configs/default.yaml")
    assert retrain_command("c.yaml", "echo {config} {project}", project="p") == ["echo", "c.yaml", "p"]
    assert retrain_command("c.yaml", "echo {config}") == ["echo", "c.yaml"]
    # --project without --retrain-config is refused before anything starts.
    result = runner.invoke(app, ["serve-ml", "--project", "caibao-gold"])
    assert result.exit_code == 2 and "--retrain-config" in result.output
    # ... and so is a project that the retraining could not pull from.
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k")
    result = runner.invoke(app, ["serve-ml", "--project", "caibao-gold", "--retrain-config", str(TINY)])
    assert result.exit_code == 2 and "set LABEL_STUDIO_URL" in result.output


def test_score_table_formats_missing_scores_as_dashes():
    from caibao.retrain import ScoreRow

    text = format_scores([ScoreRow("full", "heldout", {"entity": 0.5, "relation": 0.25, "fact": 0.125,
                                                       "end to end": 0.1}, None)])
    lines = text.splitlines()
    assert lines[0].split() == ["model", "split", "F1", "entity", "relation", "fact", "end", "to", "end"]
    assert lines[1].split() == ["full", "heldout", "new", "0.5000", "0.2500", "0.1250", "0.1000"]
    assert lines[2].split() == ["full", "heldout", "bundled", "-", "-", "-", "-"]


def test_a_distillation_gets_the_transfer_set_and_the_new_full_run_as_teacher(configs, gold_subset, tmp_path,
                                                                             monkeypatch, tiny_encoder_dir):
    import caibao.train

    full_config, _ = configs
    gold_dir, splits_path = gold_subset
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy2(next((ROOT / "data" / "corpus").glob("000_*.txt")), corpus)
    transfer = tmp_path / "transfer.jsonl"
    distill = write_config(tmp_path / "distill.yaml", tiny_encoder_dir, tmp_path / "runs" / "distilled",
                           **{"model.keep_layers": [1], "distill": {"teacher": "full", "transfer": str(transfer)}})
    real_teacher = caibao.train.load_teacher
    teachers = []

    def spy_teacher(cfg, student, encoder_path):
        teachers.append(cfg.distill.teacher)
        return real_teacher(cfg, student, encoder_path)

    monkeypatch.setattr(caibao.train, "load_teacher", spy_teacher)
    said = []
    retrain(full_config, distill, gold=gold_dir, splits=splits_path, corpus=corpus, progress=False, say=said.append)
    assert teachers == [str(tmp_path / "runs" / "full")]
    kept = read_gold(transfer)
    assert kept and all(not d.entities for d in kept) and all(d.id.startswith("seed-000-") for d in kept)
    assert any(s.startswith(f"transfer set: {len(kept)} documents") for s in said)
    metrics = json.loads((tmp_path / "runs" / "distilled" / "metrics.json").read_text("utf-8"))
    train_ids = json.loads(splits_path.read_text("utf-8"))["train"]
    assert metrics["train_documents"] == len(train_ids) + len(kept)  # gold + the teacher-labelled transfer set
