"""Runtime choice for the host (simulated instruction sets) and each runtime's agreement with fp32."""

from __future__ import annotations

import logging

import pytest
import torch

from caibao.hardware import Host, parse_cpuinfo
from caibao.runtimes import RUNTIMES, choose, preference_for, quality_ok, settings

AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
BF16_CPUINFO = """processor\t: 0
model name\t: Intel Xeon Processor (Cooperlake)
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16
"""
AVX2_CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma
"""

SAME = {"entity": 0.93, "fact": 0.75}
FULL_QUALITY = {"torch": SAME, "torch-bf16": {"entity": 0.929, "fact": 0.748}, "onnx": SAME,
                "onnx-int8": {"entity": 0.918, "fact": 0.729}}  # int8 loses 1.2 / 2.1 points


def host(text: str) -> Host:
    flags, name = parse_cpuinfo(text)
    return Host(flags, name, 2)


def test_cpuinfo_flags_and_name():
    h = host(AMX_CPUINFO)
    assert h.cpu == "Intel(R) Xeon(R) Platinum 8480+" and h.has("amx_bf16") and "avx512_bw" not in h.flags
    assert host(BF16_CPUINFO).isa == "avx512_bf16 avx512_vnni avx512f avx2 fma (no AMX)"
    assert host(AVX2_CPUINFO).isa == "avx2 fma (no AMX)"
    assert parse_cpuinfo("") == (frozenset(), "unknown CPU")


@pytest.mark.parametrize("cpuinfo, quality, onnx, expected", [
    (AMX_CPUINFO, FULL_QUALITY, True, "torch-bf16"),  # bf16 within half a point: AMX's fastest
    (AMX_CPUINFO, {"torch": SAME}, True, "torch"),  # bf16 never measured for this model: fp32 PyTorch
    (BF16_CPUINFO, FULL_QUALITY, True, "torch-bf16"),  # int8 loses too much; bf16 PyTorch next
    (BF16_CPUINFO, {**FULL_QUALITY, "onnx-int8": SAME}, True, "onnx-int8"),
    (BF16_CPUINFO, {"torch": SAME}, True, "onnx"),  # bf16 never measured for this model: fp32 ONNX
    (BF16_CPUINFO, FULL_QUALITY, False, "torch-bf16"),  # no onnxruntime
    (AVX2_CPUINFO, FULL_QUALITY, True, "onnx"),
    (AVX2_CPUINFO, {}, False, "torch"),
])
def test_auto_takes_the_first_fast_and_accurate_runtime(cpuinfo, quality, onnx, expected):
    name, why = choose(host(cpuinfo), quality, onnx_available=onnx)
    assert name == expected, why
    assert why.startswith("host ")


def test_a_runtime_is_never_chosen_where_the_cpu_lacks_its_instructions():
    avx2 = host(AVX2_CPUINFO)
    for name in preference_for(avx2):
        assert not RUNTIMES[name].fast_with or avx2.has(*RUNTIMES[name].fast_with)
    assert choose(avx2, {**FULL_QUALITY, "onnx-int8": SAME, "torch-bf16": SAME})[0] == "onnx"


def test_quality_gate_is_half_a_point():
    assert settings().max_f1_loss == 0.005
    assert quality_ok("torch-bf16", {"torch": SAME, "torch-bf16": {"entity": 0.9251, "fact": 0.7451}}, 0.005)
    assert not quality_ok("torch-bf16", {"torch": SAME, "torch-bf16": {"entity": 0.9249, "fact": 0.75}}, 0.005)
    assert quality_ok("onnx", {}, 0.005)  # fp32 runtimes need no record


# --- every runtime against fp32 PyTorch on a real model (the tiny test model) ---------------------------

# Tag probabilities of a reduced-precision runtime stay this close to fp32's (bf16 keeps 8 bits
# of mantissa; int8 weights one scale per output channel).
PROB_TOLERANCE = {"torch": 1e-6, "torch-bf16": 0.05, "onnx": 1e-4, "onnx-int8": 0.05}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNTIMES))
def test_each_runtime_agrees_with_fp32(tiny_model_dir, tmp_path, monkeypatch, name):
    from caibao.extract import Extractor

    monkeypatch.setenv("CAIBAO_CACHE_DIR", str(tmp_path / "cache"))
    text = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。信也科技2022年净利润21亿元。"
    ref = Extractor.load(tiny_model_dir, runtime="torch").loaded
    ex = Extractor.load(tiny_model_dir, runtime=name)
    assert ex.loaded.meta["runtime"] == name
    tok = ref.tokenizer
    ids = torch.tensor([[tok.cls_token_id, *tok(text, add_special_tokens=False)["input_ids"], tok.sep_token_id]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        want = ref.model.token_logits(ref.model.encode(ids, mask)).softmax(-1)
        got = ex.loaded.encoder_runner(ids, mask)[1] if ex.loaded.encoder_runner else want
    assert (got - want).abs().max().item() <= PROB_TOLERANCE[name]
    facts = ex.extract(text, doc_date="2023-03-01")
    assert isinstance(facts, list)  # the whole pipeline runs on this runtime


def test_auto_is_logged_once_and_kept_in_the_meta(tiny_model_dir, caplog):
    from caibao.extract import Extractor

    with caplog.at_level(logging.INFO, logger="caibao.extract"):
        first = Extractor.load(tiny_model_dir)
        Extractor.load(tiny_model_dir)
    lines = [r.getMessage() for r in caplog.records if "(auto:" in r.getMessage()]
    assert len(lines) <= 1 and first.loaded.meta["runtime"] in RUNTIMES
    # The tiny model records no runtime scores: only an fp32 runtime can be chosen for it.
    assert RUNTIMES[first.loaded.meta["runtime"]].numerics == "fp32"
