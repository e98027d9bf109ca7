"""The ONNX Runtime encoder: same spans as PyTorch, exported once, cached, rebuilt when the cache is bad."""

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")

from caibao.annotations import read_gold  # noqa: E402
from caibao.evaluate import strip_annotations  # noqa: E402
from caibao.extract import Extractor  # noqa: E402
from caibao.featurize import encode_document  # noqa: E402
from caibao.onnx_engine import _sha256, load_onnx_encoder  # noqa: E402
from caibao import onnx_engine  # noqa: E402

pytestmark = pytest.mark.slow  # ONNX exports

ROOT = Path(__file__).resolve().parents[1]


def _spans(pred):
    d = pred.document
    return ([(e.start, e.end, e.label) for e in d.entities], [(r.head, r.tail, r.label) for r in d.relations])


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """The bundled model on PyTorch, and its ONNX runner (from the user's cache when already built there)."""
    ex = Extractor.load(runtime="torch")
    return ex, load_onnx_encoder(ex.loaded.model)


def test_onnx_gives_the_torch_spans_on_gold_documents(bundled):
    ex, runner = bundled
    gold = sorted(read_gold(ROOT / "annotations" / "gold"), key=lambda d: len(d.text))
    max_tokens = ex.loaded.cfg.model.max_length - 2
    n_tokens = [len(encode_document(ex.loaded.tokenizer, d.text).ids) for d in gold]
    short = [d for d, n in zip(gold, n_tokens) if d.entities and n < max_tokens]
    longer = next(d for d, n in zip(gold, n_tokens) if n > 1.5 * max_tokens)  # two windows and a seam
    docs = [strip_annotations(d) for d in short[len(short) // 2 : len(short) // 2 + 3] + [longer]]
    torch_preds = ex.predict(docs, batch_size=4)
    ex.loaded.encoder_runner = runner
    try:
        onnx_preds = ex.predict(docs, batch_size=4)
    finally:
        ex.loaded.encoder_runner = None
    assert sum(len(p.document.entities) for p in torch_preds) > 0
    for a, b in zip(torch_preds, onnx_preds):
        assert _spans(a) == _spans(b), a.document.id
        for x, y in zip(a.document.entities, b.document.entities):
            assert y.score == pytest.approx(x.score, abs=1e-4)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return Extractor.load(tiny_model_dir, runtime="torch").loaded.model


def test_export_is_cached_and_reused(tiny, tmp_path, monkeypatch):
    runner = load_onnx_encoder(tiny, cache_dir=tmp_path)
    assert sorted(tmp_path.iterdir()) == sorted([runner.path, runner.path.with_suffix(".sha256")])
    stamp = runner.path.stat().st_mtime_ns

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr("caibao.onnx_engine.build_graph", no_export)
    again = load_onnx_encoder(tiny, cache_dir=tmp_path)
    assert again.path == runner.path and runner.path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("flags, reduce_range", [({"avx2", "fma"}, True), ({"avx512_vnni", "avx512f", "avx2"}, False),
                                                  ({"avx_vnni", "avx2"}, False), ({"amx_int8", "amx_tile"}, False)])
def test_int8_weights_are_7_bit_on_a_cpu_without_vnni(tiny, tmp_path, monkeypatch, flags, reduce_range):
    """ONNX Runtime's int8 products saturate their 16-bit sums on a CPU without VNNI unless the weights
    keep to 7 bits; each kind of host gets its own cached graph."""
    from caibao.hardware import Host

    monkeypatch.setattr("caibao.onnx_engine.detect", lambda: Host(flags=frozenset(flags)))
    built = []
    real = onnx_engine.build_int8_graph
    monkeypatch.setattr("caibao.onnx_engine.build_int8_graph",
                        lambda fp32, out, reduce: (built.append(reduce), real(fp32, out, reduce)))
    runner = load_onnx_encoder(tiny, cache_dir=tmp_path, int8=True)
    assert built == [reduce_range] and runner.path.name.endswith(".int8.r7.onnx" if reduce_range else ".int8.onnx")


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing", "no_digest"])
def test_a_bad_cache_file_is_rebuilt(tiny, tmp_path, damage):
    target = load_onnx_encoder(tiny, cache_dir=tmp_path).path
    digest = target.with_suffix(".sha256")
    good = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        target.write_bytes(good[:-100] + bytes([good[-100] ^ 0xFF]) + good[-99:])
    elif damage == "missing":
        target.unlink()
    else:
        digest.unlink()
    rebuilt = load_onnx_encoder(tiny, cache_dir=tmp_path)
    assert rebuilt.path == target and digest.read_text().strip() == _sha256(target)
    assert sorted(tmp_path.iterdir()) == sorted([target, digest])  # no temporary files left
    ids = torch.tensor([[2, 100, 200, 3]])
    hidden, probs = rebuilt(ids, torch.ones_like(ids))
    assert probs.shape[:2] == (1, 4) and torch.allclose(probs.sum(-1), torch.ones(1, 4), atol=1e-4)


def test_extractor_onnx_runtime_and_fallback(tiny_model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path))
    text = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。"
    ex = Extractor.load(tiny_model_dir, runtime="onnx")
    assert ex.loaded.encoder_runner is not None and list((tmp_path / "onnx").glob("*.onnx"))
    ref = Extractor.load(tiny_model_dir, runtime="torch")
    assert ref.loaded.encoder_runner is None
    assert [f.model_dump() for f in ex.extract(text)] == [f.model_dump() for f in ref.extract(text)]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert Extractor.load(tiny_model_dir, runtime="onnx").loaded.encoder_runner is None
    with pytest.raises(ValueError, match="runtime"):
        Extractor.load(tiny_model_dir, runtime="tensorrt")


def test_cli_extract_runtime_flag(tiny_model_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from caibao.cli import app

    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "facts.jsonl"
    args = ["extract", "-", "--out", str(out), "--model", str(tiny_model_dir), "--no-progress"]
    result = CliRunner().invoke(app, args + ["--runtime", "onnx"], input="营收114亿元，同比增长21%。")
    assert result.exit_code == 0, result.output
    assert out.exists() and list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    result = CliRunner().invoke(app, args + ["--runtime", "tvm"], input="营收114亿元。")
    assert result.exit_code != 0 and "--runtime" in result.output
