"""The model learns one real sentence (spaCy's test_overfitting_IO): the training step and the
prediction path agree on the featurisation. The training loop takes a few dozen milliseconds
(about 20 steps of the tiny encoder); building the model and the save/load round trip, about a
second, are the rest of the test's time."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from caibao.annotations import read_gold
from caibao.config import load_config
from caibao.evaluate import strip_annotations
from caibao.io import InputError
from caibao.model import build_model, LoadedModel, predict_documents
from caibao.persistence import CONFIG_FILE, load_model, save_model
from caibao.schema import Document
from caibao.train import build_examples, collate, loss_on_batch

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS, TARGET_LOSS = 200, 0.02


def first_sentence(doc: Document, end: int) -> Document:
    """``doc`` cut at ``end``, with the entities and relations wholly before it."""
    ents = [e for e in doc.entities if e.end <= end]
    ids = {e.id for e in ents}
    rels = [r for r in doc.relations if r.head in ids and r.tail in ids]
    return Document(id=doc.id, text=doc.text[:end], meta=doc.meta, entities=ents, relations=rels)


@pytest.fixture(scope="module")
def sentence():
    # A train article's headline: 同程旅行上半年营收90.5亿元,年付费用户达2.52亿 (ORG, PERIOD, two
    # METRIC-VALUE pairs, six relations).
    doc = next(d for d in read_gold(ROOT / "annotations" / "gold") if d.id == "web-12-15")
    out = first_sentence(doc, doc.text.index("亿", doc.text.index("用户")) + 1)
    assert len(out.relations) == 6
    return out


def train_on(docs, cfg, encoder_dir):
    torch.manual_seed(0)
    model, tokenizer = build_model(cfg, str(encoder_dir))
    examples = build_examples(docs, tokenizer, cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for step in range(MAX_STEPS):
        loss = loss_on_batch(model, collate(examples, tokenizer, None, random.Random(0)), relation_weight=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < TARGET_LOSS:
            break
    model.eval()
    return model, tokenizer, loss.item()


def spans(doc):
    return sorted((e.start, e.end, e.label) for e in doc.entities)


def relations(doc):
    by_id = doc.entity_by_id()
    return sorted((by_id[r.head].start, by_id[r.tail].start, r.label) for r in doc.relations)


def test_overfitting_one_sentence_then_save_and_load(sentence, tiny_encoder_dir, tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"model.max_length": 128})
    model, tokenizer, loss = train_on([sentence], cfg, tiny_encoder_dir)
    assert loss < TARGET_LOSS
    loaded = LoadedModel(model, tokenizer, cfg, tmp_path)
    pred = predict_documents(loaded, [strip_annotations(sentence)])[0].document
    assert spans(pred) == spans(sentence) and relations(pred) == relations(sentence)

    save_model(model, tmp_path / "run")
    again = load_model(tmp_path / "run", encoder_path=str(tiny_encoder_dir))
    reloaded = predict_documents(again, [strip_annotations(sentence)])[0].document
    assert spans(reloaded) == spans(pred) and relations(reloaded) == relations(pred)
    # the scores the spans and relations carry come back too (to float noise: the reloaded weights are
    # the same, the kernels that run them need not be)
    scores = lambda doc: [x.score for x in (*doc.entities, *doc.relations)]  # noqa: E731
    assert scores(reloaded) == pytest.approx(scores(pred), abs=1e-3)


def test_a_model_whose_tags_are_not_its_scheme_is_refused_by_name(sentence, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "other-labels"
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / CONFIG_FILE).read_text("utf-8"))
    meta["bio_tags"] = [*meta["bio_tags"], "B-PRODUCT", "I-PRODUCT"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta), "utf-8")
    with pytest.raises(InputError, match=r"caibao_config.json: the model's bio tags \(11\) are not its label "
                                         r"scheme's \(9\): B-PRODUCT, I-PRODUCT differ"):
        load_model(folder)
    del meta["labels"]  # a model saved before schemes were: the project's scheme, checked the same way
    (folder / CONFIG_FILE).write_text(json.dumps(meta), "utf-8")
    with pytest.raises(InputError, match=r"bio tags \(11\) are not this code's \(resources/labels.yaml\) \(9\)"):
        load_model(folder)


def test_the_label_scheme_is_data_and_a_new_label_reaches_label_studio(tmp_path):
    from caibao.annotations import labeling_config
    from caibao.schema import LABELS, LabelScheme

    raw = LABELS.model_dump(mode="json")
    raw["entities"]["PRODUCT"] = "#ff7f0e"
    raw["relations"]["org_product"] = ["ORG", "PRODUCT"]
    wider = LabelScheme.model_validate(raw)
    assert wider.bio_tags[-2:] == ("B-PRODUCT", "I-PRODUCT") and wider.bio_tags[:9] == LABELS.bio_tags
    xml = labeling_config(wider)
    assert '<Label value="PRODUCT" background="#ff7f0e"/>' in xml and '<Relation value="org_product"/>' in xml
    bad = tmp_path / "labels.yaml"
    bad.write_text("entities: {ORG: '#000'}\nrelations: {org_metric: [ORG, METRIC]}\n", "utf-8")
    with pytest.raises(ValueError, match=r"labels.yaml: not a label scheme .*'METRIC', which is not an entity label"):
        LabelScheme.load(bad)


def test_a_scheme_that_does_not_fit_the_saved_weights_is_refused(tiny_model_dir, tmp_path):
    import shutil

    from caibao.schema import LABELS

    folder = tmp_path / "other-scheme"
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / CONFIG_FILE).read_text("utf-8"))
    assert meta["labels"] == LABELS.model_dump(mode="json")  # a model saves the scheme it was trained with
    meta["labels"]["entities"]["PRODUCT"] = "#ff7f0e"
    meta["bio_tags"] = [*meta["bio_tags"], "B-PRODUCT", "I-PRODUCT"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta), "utf-8")
    with pytest.raises(InputError, match=r"caibao_model.safetensors: the weights' token head has 9 outputs, "
                                         r"the model's label scheme 11 BIO tags"):
        load_model(folder)


def test_a_model_owns_its_label_scheme_from_config_to_label_studio(sentence, tiny_encoder_dir, tmp_path):
    """Adding a label touches the guide and a label scheme only: a config names a scheme with one more
    entity label and relation; the model it trains learns and predicts them, saves the scheme, loads
    with it (whatever resources/labels.yaml says), and its Label Studio labeling config offers them."""
    from caibao.annotations import labeling_config
    from caibao.schema import LABELS, Entity, Relation

    wider = LABELS.model_dump(mode="json")
    wider["entities"]["SEGMENT"] = "#ff7f0e"
    wider["relations"]["metric_segment"] = ["METRIC", "SEGMENT"]
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"model.max_length": 128, "labels": wider})
    # 年付费用户 is a METRIC of the headline; 年付费 is the segment it is measured in (an extra label).
    at = sentence.text.index("年付费用户")
    metric = next(e for e in sentence.entities if e.start <= at < e.end)
    entities = [e for e in sentence.entities if e.id != metric.id] + [
        Entity(id="s1", start=at, end=at + 3, label="SEGMENT"), Entity(id="m1", start=at + 3, end=metric.end, label="METRIC")]
    renamed = [r.model_copy(update={"head": "m1" if r.head == metric.id else r.head,
                                    "tail": "m1" if r.tail == metric.id else r.tail}) for r in sentence.relations]
    doc = sentence.model_copy(update={"entities": sorted(entities, key=lambda e: e.start),
                                      "relations": [*renamed, Relation(head="m1", tail="s1", label="metric_segment")]})
    model, tokenizer, loss = train_on([doc], cfg, tiny_encoder_dir)
    assert loss < TARGET_LOSS and model.labels.bio_tags[-2:] == ("B-SEGMENT", "I-SEGMENT")
    save_model(model, tmp_path / "run")
    loaded = load_model(tmp_path / "run", encoder_path=str(tiny_encoder_dir))
    assert loaded.cfg.label_scheme.entities["SEGMENT"] == "#ff7f0e" and loaded.model.labels.rel_classes[-1] == "metric_segment"
    prediction = predict_documents(loaded, [strip_annotations(doc)])[0]
    pred = prediction.document
    assert spans(pred) == spans(doc) and relations(pred) == relations(doc)
    assert prediction.tag_count == 11  # the review queue normalises entropy over the model's own tags
    xml = labeling_config(loaded.cfg.label_scheme)
    assert '<Label value="SEGMENT" background="#ff7f0e"/>' in xml and '<Relation value="metric_segment"/>' in xml
    from typer.testing import CliRunner

    from caibao.cli import app

    result = CliRunner().invoke(app, ["labeling-config", "--model", str(tmp_path / "run")])
    assert result.exit_code == 0 and result.output == xml
    assert "SEGMENT" not in CliRunner().invoke(app, ["labeling-config"]).output  # the project's scheme is untouched


def test_a_saved_scheme_is_compared_by_what_the_heads_mean(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "recoloured"
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / CONFIG_FILE).read_text("utf-8"))
    meta["labels"]["entities"]["ORG"] = "#000000"  # a colour is Label Studio's, not the model's
    (folder / CONFIG_FILE).write_text(json.dumps(meta), "utf-8")
    assert load_model(folder).model is not None
    meta["labels"]["relations"]["org_metric"] = ["ORG", "NOWHERE"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta), "utf-8")
    with pytest.raises(InputError, match=r"caibao_config.json: the model's label scheme is not one .*NOWHERE"):
        load_model(folder)
