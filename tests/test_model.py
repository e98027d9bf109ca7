"""Tokenisation/alignment, windows, and real training of a tiny model on gold documents."""

from pathlib import Path

import pytest
import torch

from caibao.annotations import read_gold
from caibao.config import load_config
from caibao.evaluate import score, strip_annotations
from caibao.model import (
    BIO_TAGS,
    best_window,
    decode_tags,
    encode_document,
    gather_window_probs,
    load_model,
    load_tokenizer,
    predict_documents,
    token_tags,
    windows,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gold():
    return read_gold(ROOT / "annotations" / "gold")


def lost_spans(tokenizer, docs):
    lost = total = 0
    for d in docs:
        enc = encode_document(tokenizer, d.text)
        decoded = {(s, e, lab) for s, e, lab, _ in decode_tags(token_tags(d, enc), enc.offsets, d.text)}
        gold = {(x.start, x.end, x.label) for x in d.entities}
        lost += len(gold - decoded)
        total += len(gold)
    return lost, total


def test_cjk_pretokenisation_keeps_every_gold_boundary(pruned_encoder_dir, gold):
    # Sub-word pieces such as "全年" or "亿元" can hide an entity boundary; with the
    # cjk_chars pre-split every gold span of the whole gold set survives tags -> spans.
    tok = load_tokenizer(str(pruned_encoder_dir), "cjk_chars")
    lost, total = lost_spans(tok, gold)
    assert total > 5000 and lost == 0
    natural = load_tokenizer(str(pruned_encoder_dir), "natural")
    lost_natural, _ = lost_spans(natural, gold)
    assert lost_natural > 0  # why the pre-split exists


def test_boundary_inside_a_piece_is_tagged_at_the_piece(pruned_encoder_dir):
    from caibao.schema import Document, Entity

    tok = load_tokenizer(str(pruned_encoder_dir), "natural")
    text = "全年促成借款额2138亿元"
    enc = encode_document(tok, text)
    pieces = [text[s:e] for s, e in enc.offsets]
    # The value starts mid-piece when the tokenizer glues digits ("额2"?) or units ("亿元" stays).
    assert text[7:13] == "2138亿元"
    doc = Document(id="x", text=text, entities=[Entity(id="e1", start=7, end=13, label="VALUE")])
    tags = token_tags(doc, enc)
    spans = decode_tags(tags, enc.offsets, text)
    assert len(spans) == 1 and spans[0][2] == "VALUE"
    start_piece = next(k for k, (s, e) in enumerate(enc.offsets) if s <= 7 < e)
    assert BIO_TAGS[tags[start_piece]] == "B-VALUE", pieces
    tok_c = load_tokenizer(str(pruned_encoder_dir), "cjk_chars")
    enc_c = encode_document(tok_c, text)
    assert [text[s:e] for s, e in enc_c.offsets] == ["全", "年", "促", "成", "借", "款", "额", "2138", "亿", "元"] or \
        all(e - s == 1 for s, e in enc_c.offsets if not text[s:e].isdigit())


@pytest.mark.parametrize("n, size, stride", [(5, 10, 2), (100, 30, 8), (257, 254, 64), (1000, 62, 16)])
def test_windows_cover_every_token_with_context(n, size, stride):
    wins = windows(n, size, stride)
    assert wins[0][0] == 0 and wins[-1][1] == n
    assert all(e - s <= size for s, e in wins)
    for k in range(n):
        w = best_window(wins, k, k + 1)
        assert w is not None
        s, e = wins[w]
        # Tokens away from the document's ends keep at least stride/2 context on both sides.
        if len(wins) > 1 and stride // 2 <= k < n - stride // 2:
            assert min(k - s, e - k - 1) >= stride // 2 - 1


def test_no_span_lost_at_window_seams(pruned_encoder_dir, gold):
    """Gold tags cut into overlapping windows and gathered back give every gold span."""
    tok = load_tokenizer(str(pruned_encoder_dir), "cjk_chars")
    doc = max(gold, key=lambda d: len(d.text))
    enc = encode_document(tok, doc.text)
    tags = token_tags(doc, enc)
    wins = windows(len(enc.ids), 62, 16)
    assert len(wins) > 10
    one_hot = torch.nn.functional.one_hot(torch.tensor(tags), len(BIO_TAGS)).float()
    probs_by_win = [torch.cat([torch.zeros(1, len(BIO_TAGS)), one_hot[s:e]]) for s, e in wins]
    gathered = gather_window_probs(wins, probs_by_win, len(enc.ids)).argmax(-1).tolist()
    spans = {(s, e, lab) for s, e, lab, _ in decode_tags(gathered, enc.offsets, doc.text)}
    assert spans == {(x.start, x.end, x.label) for x in doc.entities}


def small_docs(gold, n=2):
    return sorted((d for d in gold if d.entities and d.relations and 120 < len(d.text) < 240),
                  key=lambda d: d.id)[:n]


def test_tiny_model_overfits_gold_documents(tiny_encoder_dir, gold, tmp_path):
    from caibao.train import train

    docs = small_docs(gold)
    assert len(docs) == 2
    # One window per document (max_length 256), so every gold relation fits a window.
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {
        "output_dir": str(tmp_path / "run"), "training.epochs": 300, "training.max_steps": 300,
        "model.max_length": 256, "training.learning_rate": 5e-3, "training.head_learning_rate": 5e-3,
    })
    metrics = train(cfg, encoder_path=str(tiny_encoder_dir), splits={"train": docs, "dev": [], "test": []},
                    progress=False)
    assert metrics["history"][-1]["train_loss"] < 0.05
    loaded = load_model(tmp_path / "run", encoder_path=str(tiny_encoder_dir))
    preds = predict_documents(loaded, [strip_annotations(d) for d in docs])
    result = score(docs, [p.document for p in preds])
    assert result["entity"]["micro"]["f1"] == 1.0
    assert result["relation"]["micro"]["f1"] == 1.0
    assert result["fact"]["micro"]["f1"] == 1.0

    # Save/load round trip: a second load predicts exactly the same.
    again = load_model(tmp_path / "run", encoder_path=str(tiny_encoder_dir))
    preds2 = predict_documents(again, [strip_annotations(d) for d in docs])
    assert [p.document for p in preds2] == [p.document for p in preds]
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "train_log.jsonl").exists()


def test_resume_continues_after_the_last_epoch(tiny_encoder_dir, gold, tmp_path):
    from caibao.train import train

    docs = small_docs(gold)
    base = {"output_dir": str(tmp_path / "run"), "training.max_steps": None, "model.max_length": 128}
    first = train(load_config(ROOT / "configs" / "tiny.yaml", {**base, "training.epochs": 1}),
                  encoder_path=str(tiny_encoder_dir), splits={"train": docs, "dev": docs[:1], "test": []},
                  progress=False)
    assert [h["epoch"] for h in first["history"]] == [1]
    resumed = train(load_config(ROOT / "configs" / "tiny.yaml", {**base, "training.epochs": 3}), resume=True,
                    encoder_path=str(tiny_encoder_dir), splits={"train": docs, "dev": docs[:1], "test": []},
                    progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][0] == first["history"][0]


def test_config_validation_errors_name_the_key(tmp_path):
    from caibao.io import InputError

    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  max_length: 64\n  stride: 80\ntraining:\n  epochs: 0\n  lerning_rate: 1\n")
    with pytest.raises(InputError) as err:
        load_config(bad)
    msg = str(err.value)
    assert "bad.yaml" in msg and "training.epochs" in msg and "lerning_rate" in msg and "stride" in msg


def test_viterbi_repairs_fragments():
    from caibao.model import TAG2ID, viterbi_bio

    def probs(rows):
        out = torch.full((len(rows), len(BIO_TAGS)), 0.01)
        for i, row in enumerate(rows):
            for tag, p in row.items():
                out[i, TAG2ID[tag]] = p
        return out / out.sum(-1, keepdim=True)

    # argmax says O, I-METRIC, I-METRIC: a fragment without B. Viterbi makes it a whole span.
    p = probs([{"O": 0.5, "B-METRIC": 0.45}, {"I-METRIC": 0.9}, {"I-METRIC": 0.9}])
    assert [BIO_TAGS[t] for t in p.argmax(-1).tolist()] == ["O", "I-METRIC", "I-METRIC"]
    assert [BIO_TAGS[t] for t in viterbi_bio(p)] == ["B-METRIC", "I-METRIC", "I-METRIC"]
    # I-VALUE right after B-METRIC is not allowed either.
    p = probs([{"B-METRIC": 0.9}, {"I-VALUE": 0.5, "I-METRIC": 0.4}])
    assert [BIO_TAGS[t] for t in viterbi_bio(p)] == ["B-METRIC", "I-METRIC"]
    # A confident, valid argmax path is kept as is.
    p = probs([{"B-ORG": 0.9}, {"I-ORG": 0.9}, {"O": 0.9}, {"B-VALUE": 0.9}])
    assert viterbi_bio(p) == p.argmax(-1).tolist()


def test_a_run_without_dev_split_still_saves_its_model(tiny_encoder_dir, gold, tmp_path):
    # Selection falls back to the training loss, which is above 1 at first: the
    # first epoch must still count as the best so far.
    from caibao.train import train

    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"output_dir": str(tmp_path / "run"), "training.max_steps": 1,
                                                       "training.epochs": 1})
    train(cfg, encoder_path=str(tiny_encoder_dir), splits={"train": small_docs(gold), "dev": [], "test": []},
          progress=False)
    assert (tmp_path / "run" / "caibao_model.safetensors").exists()
