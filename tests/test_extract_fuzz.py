"""Nasty inputs through `caibao extract`: no traceback, the documented exit code, whole lines, offsets in the text.

Two sources of nastiness: a fixed corpus of what users have fed the command
(binary files, legacy encodings, terminal colours, bidi and zero-width
characters, lone surrogates, repeated ids, markup-looking text, text without
punctuation), and hypothesis-generated texts mixing financial phrases with
those characters.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from caibao.cli import app
from caibao.extract import Extractor, read_inputs, run_batch

SENTENCE = "招商银行2024年营业收入3375亿元，同比下降0.48%；净利润1484亿元，净息差1.98%，下降0.17个百分点。"


def nasty_corpus(root: Path) -> Path:
    """A folder of inputs, each a way a real file goes wrong (and one good file)."""
    folder = root / "inputs"
    folder.mkdir()
    rng = random.Random(0)
    files = {
        "good.txt": SENTENCE.encode(),
        "empty.txt": b"",
        "blank.txt": b"  \n\t\r\n",
        "binary.txt": bytes(rng.randrange(256) for _ in range(3000)) + b"\x00" * 8,
        "nul_late.txt": ("平安银行" * 1300 + "\x00" + SENTENCE).encode(),
        "ansi.txt": ("\x1b[31m招商银行\x1b[0m2024年营业收入\x1b[1;32m3375亿元\x1b[0m。").encode(),
        "bidi.txt": ("招商银行\u202e2024年净利润\u202c为1484亿元\u2066。\u2069").encode(),
        "zero_width.txt": ("招商\u200b银行净\u200d利润同比\u0007增长1.2%\ufeff。").encode(),
        "gbk.txt": SENTENCE.encode("gbk"),
        "big5.txt": "招商銀行2024年營業收入3375億元，同比下降0.48%；淨利潤1484億元，淨息差1.98%。".encode("big5"),
        "utf16.txt": SENTENCE.encode("utf-16"),
        "english.txt": b"Revenue rose 5% to $3bn in 2024, net income 1.2bn.",
        "no_punctuation.txt": ("招商银行2024年营业收入3375亿元同比下降048净利润1484亿元" * 400).encode(),
        "crlf.txt": SENTENCE.replace("；", "\r\n").encode(),
        "markup [red]x[bold].txt": ("[bold]招商银行[/bold]净利润[/]1484亿元。").encode(),
        "page.html": ("<html><script>var a='3375亿元';</script><p>招商银行净利润1484亿元。</p>"
                      "<p>&lt;b&gt;营收&#x33;375亿元</p></html>").encode(),
        "docs.jsonl": "\n".join([
            json.dumps({"id": "j1", "text": SENTENCE}, ensure_ascii=False),
            "{not json",
            json.dumps({"id": "j2"}),
            json.dumps({"text": "没有id"}, ensure_ascii=False),
            json.dumps({"id": "j1", "text": "重复的id：招商银行营收3375亿元。"}, ensure_ascii=False),
            '{"id": "j3", "text": "招商银行净利润\\ud800为1484亿元\\udfff。"}',
            json.dumps({"id": "j4", "text": None}),
            json.dumps({"id": "j5", "text": 12345678901234567890}),
            json.dumps({"id": "[/x]", "text": "平安银行净利润[/]445亿元。"}, ensure_ascii=False),
            json.dumps(["a", "list"]),
            "",
        ]).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def document_texts(inputs: list[str]) -> dict[str, str]:
    """The text of each readable document, as the reader gives it to the model (facts' offsets refer to it);
    of documents sharing an id, the first (the others are errors)."""
    texts: dict[str, str] = {}
    for item in read_inputs(inputs):
        if item.doc is not None:
            texts.setdefault(item.doc.id, item.doc.text)
    return texts


def check_outputs(out: Path, texts: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Whole JSON lines, no duplicate, every fact's spans inside its document and equal to its text."""
    fact_lines = out.read_text("utf-8").splitlines() if out.exists() else []
    assert len(fact_lines) == len(set(fact_lines)), "duplicate fact lines"
    facts = [json.loads(line) for line in fact_lines]
    for f in facts:
        text = texts[f["doc_id"]]
        for field in ("metric", "value", "org", "period"):
            span = f[field]
            if span is None:
                continue
            if field == "period" and span["start"] is None:
                # a period taken from the document (the report it is about), not from a span of it
                assert span["text"] is None and span["end"] is None and span["inferred"], (f["doc_id"], span)
                continue
            assert 0 <= span["start"] < span["end"] <= len(text), (f["doc_id"], field, span)
            assert text[span["start"] : span["end"]] == span["text"], (f["doc_id"], field, span)
    errors_path = out.with_name(out.name + ".errors.jsonl")
    errors = [json.loads(line) for line in errors_path.read_text("utf-8").splitlines()] if errors_path.exists() else []
    assert all(set(e) == {"doc_id", "error"} and e["error"] for e in errors)
    assert not {f["doc_id"] for f in facts} & {e["doc_id"] for e in errors}, "a document both done and failed"
    return facts, errors


@pytest.fixture(scope="module")
def extractor():
    return Extractor.load()


@pytest.mark.slow
def test_nasty_corpus_through_the_cli(tmp_path):
    folder = nasty_corpus(tmp_path)
    out = tmp_path / "facts.jsonl"
    result = CliRunner().invoke(app, ["extract", str(folder), "--out", str(out), "--no-progress"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output  # some documents failed, the others were processed
    facts, errors = check_outputs(out, document_texts([str(folder)]))
    failed = {Path(e["doc_id"]).name if "/" in e["doc_id"] else e["doc_id"]: e["error"] for e in errors}
    assert set(failed) == {"empty.txt", "blank.txt", "binary.txt", "english.txt", "docs.jsonl:2", "docs.jsonl:3",
                           "docs.jsonl:4", "j1#2", "docs.jsonl:7", "docs.jsonl:8", "docs.jsonl:10"}, failed
    assert "duplicate document id" in failed["j1#2"] and "binary" in failed["binary.txt"]
    assert "string" in failed["docs.jsonl:7"] and "no Chinese text" in failed["english.txt"]
    by_doc = {}
    for f in facts:
        by_doc.setdefault(Path(f["doc_id"]).name, []).append(f)
    # Cleaned or decoded inputs give the facts the good file gives.
    values = lambda name: sorted(f["value"]["text"] for f in by_doc.get(name, []))  # noqa: E731
    assert values("gbk.txt") == values("utf16.txt") == values("j1") == values("good.txt")
    assert {"3375亿元", "1484亿元"} <= set(values("ansi.txt") + values("bidi.txt"))
    assert "0.17个百分点" in values("good.txt")
    assert not any("\x1b" in f["sentence"] or "\u202e" in f["sentence"] for f in facts)

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    again = CliRunner().invoke(app, ["extract", str(folder), "--out", str(out), "--no-progress", "--resume"])
    assert again.exit_code == 1 and "Traceback" not in again.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing left to do


NASTY_CHARS = ["\x00", "\x07", "\x1b[31m", "\x1b[0m", "\u202e", "\u200b", "\ufeff", "\ud800", "\r\n", "\r", "\t",
               "[red]", "[/]", "{", "\\", '"', "𠀀", "\ue000", "　", "\u3000"]
FRAGMENTS = ["招商银行", "微众银行", "兴业消金", "2024年", "第三季度", "上半年", "营业收入", "净利润", "不良率",
             "为", "达", "同比增长", "下降", "3375亿元", "1.98%", "0.17个百分点", "1700亿元至1750亿元", "45%-50%",
             "，", "。", "；", "、", "分别为", "约", "\n", " ", "1", "亿", "至", "-", "(", "）"]
texts = st.lists(st.sampled_from(FRAGMENTS + NASTY_CHARS) | st.text(max_size=3), min_size=1, max_size=60).map("".join)


CASES = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(texts, min_size=1, max_size=4), as_jsonl=st.booleans())
@example(docs=["1.98%不良率2024年"], as_jsonl=False)  # a period from the document, with no span of its own
def test_generated_inputs_keep_the_contract(extractor, tmp_path, docs, as_jsonl):
    folder = tmp_path / f"case-{next(CASES)}"
    folder.mkdir()
    if as_jsonl:
        lines = [json.dumps({"id": f"d{k}", "text": t}) for k, t in enumerate(docs)]
        (folder / "docs.jsonl").write_text("\n".join(lines), "utf-8", errors="surrogatepass")
    else:
        for k, t in enumerate(docs):
            (folder / f"d{k}.txt").write_bytes(t.encode("utf-8", errors="surrogatepass"))
    out = folder / "facts.jsonl"  # inside the input folder: the run must not read its own files
    report = run_batch([str(folder)], out, extractor=extractor, progress=False)
    facts, errors = check_outputs(out, document_texts([str(folder)]))
    # Every document is either processed or an error line; the exit code says which happened.
    assert report.facts == len(facts) and report.documents + len(errors) == len(docs)
    assert report.exit_code == (0 if not errors else 2 if len(errors) == len(docs) else 1)
