"""Shallower models (keep_layers) and knowledge distillation from a teacher, on tiny real models."""

from pathlib import Path

import pytest
import torch

from caibao.annotations import read_gold
from caibao.config import load_config
from caibao.evaluate import strip_annotations
from caibao.io import InputError
from caibao.model import build_model, predict_documents
from caibao.persistence import BUNDLED_MODELS, bundled_model_path, load_model, resolve_model_path
from caibao.featurize import window_batch
from caibao.train import (
    batch_hidden,
    build_examples,
    kd_loss,
    load_teacher,
    teacher_hidden_states,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def docs():
    gold = read_gold(ROOT / "annotations" / "gold")
    return sorted((d for d in gold if d.relations and 120 < len(d.text) < 240), key=lambda d: d.id)[:2]


def student_config(teacher_dir, out, **extra):
    return load_config(TINY, {"model.keep_layers": [1], "distill": {"teacher": str(teacher_dir), "alpha": 0.5},
                              "output_dir": str(out), **extra})


@pytest.mark.slow
def test_keep_layers_builds_a_shallower_encoder(tiny_encoder_dir):
    cfg = load_config(TINY, {"model.keep_layers": [1]})
    model, _ = build_model(cfg, encoder_path=str(tiny_encoder_dir))
    assert len(model.encoder.encoder.layer) == 1
    assert model.encoder.config.num_hidden_layers == 1
    ids = torch.tensor([[2, 100, 200, 3]])
    assert model.encode(ids, torch.ones_like(ids)).shape == (1, 4, 64)
    with pytest.raises(ValueError, match="only 2 layers"):
        build_model(load_config(TINY, {"model.keep_layers": [0, 2]}), encoder_path=str(tiny_encoder_dir))


@pytest.mark.parametrize("bad", [[], [1, 0], [0, 0], [-1, 2]])
def test_keep_layers_is_validated_on_load(bad):
    with pytest.raises(InputError, match="keep_layers"):
        load_config(TINY, {"model.keep_layers": bad})


def test_distill_config_is_validated_on_load():
    with pytest.raises(InputError, match="distill.alpha"):
        load_config(TINY, {"distill": {"alpha": 1.5}})
    with pytest.raises(InputError, match="distill.temprature"):
        load_config(TINY, {"distill": {"temprature": 2}})


def test_kd_loss_is_zero_for_the_teacher_itself_and_ignores_masked_classes():
    logits = torch.tensor([[2.0, 0.5, float("-inf")], [0.1, 0.2, 0.3]])
    assert kd_loss(logits, logits.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.tensor([[0.5, 2.0, float("-inf")], [0.3, 0.2, 0.1]])
    loss = kd_loss(other, logits, 2.0)
    assert torch.isfinite(loss) and loss.item() > 0
    assert kd_loss(torch.zeros((0, 3)), torch.zeros((0, 3)), 2.0).item() == 0.0


@pytest.mark.slow
def test_the_student_starts_from_the_teachers_kept_layers(tiny_encoder_dir, tiny_model_dir, tmp_path):
    cfg = student_config(tiny_model_dir, tmp_path / "student")
    student, _ = build_model(cfg, encoder_path=str(tiny_encoder_dir))
    teacher = load_teacher(cfg, student, str(tiny_encoder_dir))
    t, s = teacher.state_dict(), student.state_dict()
    for name, tensor in s.items():
        src = name.replace("encoder.encoder.layer.0.", "encoder.encoder.layer.1.")
        assert torch.equal(tensor, t[src]), name
    assert not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.slow
def test_a_teacher_with_other_tokens_is_refused(tiny_encoder_dir, tiny_model_dir, tmp_path):
    cfg = student_config(tiny_model_dir, tmp_path / "student", **{"encoder.pretokenize": "scripts"})
    student, _ = build_model(cfg, encoder_path=str(tiny_encoder_dir))
    with pytest.raises(InputError, match="tokens would not line up"):
        load_teacher(cfg, student, str(tiny_encoder_dir))


@pytest.mark.slow
def test_cached_teacher_states_equal_the_teachers_forward_on_the_batch(tiny_encoder_dir, tiny_model_dir, docs,
                                                                        tmp_path):
    cfg = student_config(tiny_model_dir, tmp_path / "student")
    student, tok = build_model(cfg, encoder_path=str(tiny_encoder_dir))
    teacher = load_teacher(cfg, student, str(tiny_encoder_dir))
    examples = build_examples(docs, tok, cfg)
    cached = teacher_hidden_states(teacher, examples, tok, progress=False, batch_size=3)
    indices = [len(examples) - 1, 0]  # a short window and a full one: padding differs from the caching batches
    ids, mask = window_batch([examples[i].ids for i in indices], tok)
    with torch.no_grad():
        direct = teacher.encode(ids, mask)
    on = mask.bool()
    assert torch.allclose(batch_hidden(cached, indices, ids.shape)[on], direct[on], atol=1e-5)


@pytest.mark.slow
def test_distilled_training_saves_a_shallow_model_that_loads_and_predicts(tiny_encoder_dir, tiny_model_dir,
                                                                         docs, tmp_path):
    from caibao.annotations import write_documents

    transfer = tmp_path / "transfer.jsonl"
    write_documents([strip_annotations(d) for d in docs], transfer)
    cfg = student_config(tiny_model_dir, tmp_path / "student", **{
        "training.max_steps": 4, "training.epochs": 2,
        "distill": {"teacher": str(tiny_model_dir), "hidden_weight": 10.0, "transfer": str(transfer)}})
    metrics = train(cfg, encoder_path=str(tiny_encoder_dir), splits={"train": docs, "dev": docs[:1], "test": []},
                    progress=False)
    assert metrics["train_documents"] == 2 * len(docs)  # gold + the transfer set labelled by the teacher
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in metrics["history"])
    loaded = load_model(tmp_path / "student", encoder_path=str(tiny_encoder_dir))
    assert len(loaded.model.encoder.encoder.layer) == 1
    preds = predict_documents(loaded, [strip_annotations(d) for d in docs])
    assert [p.document.id for p in preds] == [d.id for d in docs]


def test_bundled_model_names_resolve_and_a_real_folder_wins(tmp_path, monkeypatch):
    assert resolve_model_path(None, "full") == bundled_model_path("full")
    assert resolve_model_path("distilled", "full") == bundled_model_path("distilled")
    assert bundled_model_path("distilled").name == Path(BUNDLED_MODELS["distilled"]).name
    assert resolve_model_path(tmp_path / "run", "full") == tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    assert resolve_model_path("full", "distilled") == Path("full")
    with pytest.raises(ValueError, match="no bundled model 'tiny'"):
        bundled_model_path("tiny")


def test_transfer_set_holds_no_gold_and_nothing_of_dev_or_test(tmp_path):
    import json

    from typer.testing import CliRunner

    from caibao.annotations import read_documents
    from caibao.cli import app
    from caibao.gold import MAX_HELD_OUT_OVERLAP, char_ngrams

    out = tmp_path / "transfer.jsonl"
    result = CliRunner().invoke(app, ["transfer-set", "--out", str(out), "--corpus", str(ROOT / "data" / "corpus"),
                                      "--gold", str(ROOT / "annotations" / "gold"),
                                      "--splits", str(ROOT / "annotations" / "splits.json")])
    assert result.exit_code == 0, result.output
    assert str(out) in " ".join(result.output.split())
    transfer = read_documents(out)
    gold = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    held = [gold[i] for name in ("dev", "test") for i in splits[name]]
    assert len(transfer) >= 20
    assert not {d.id for d in transfer} & set(gold)
    assert all(not d.entities for d in transfer)
    held_grams = set().union(*(char_ngrams(d.text) for d in held))
    for d in transfer:
        grams = char_ngrams(d.text)
        assert len(grams & held_grams) < MAX_HELD_OUT_OVERLAP * len(grams), d.id
    # The committed transfer set is what the command writes.
    assert out.read_text("utf-8") == (ROOT / "data" / "transfer.jsonl").read_text("utf-8")
