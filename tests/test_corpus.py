"""Corpus ingestion on the real corpus (data/corpus is a copy of the shared corpus)."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caibao.cli import app
from caibao.corpus import Boilerplate, IngestError, html_to_lines, ingest

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


@pytest.fixture(scope="module")
def ingested():
    return ingest([CORPUS])


def test_counts_per_source(ingested):
    docs, report = ingested
    per = report["per_source"]
    assert per["000_9f6ef754374d7c57.txt"]["documents"] == 1
    assert per["001_2680b2496f00e510.txt"]["documents"] == 1
    assert per["004_e4bb84d671b5ab7b.txt"]["documents"] == 1
    # 219 blank-line blocks, two of which are nothing but ads.
    assert per["002_5452195fb2792db7.txt"]["documents"] == 217
    assert per["002_5452195fb2792db7.txt"]["empty_after_cleaning"] == 2
    assert per["003_71abd0ac3770a833.txt"]["layout"] == "transcript"
    assert report["documents"] == len(docs)


def test_ids_stable_and_unique(ingested):
    docs, _ = ingested
    ids = [d.id for d in docs]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"seed-\d{3}-\d{4}", i) for i in ids)
    assert ids[0] == "seed-000-0000"


def test_no_boilerplate_left(ingested):
    docs, _ = ingested
    bp = Boilerplate.load()
    for d in docs:
        for line in d.text.split("\n"):
            assert line == line.strip() and line, (d.id, line)
            assert not bp.is_boilerplate(line), (d.id, line)
            for prefix in bp.strip_prefixes:
                assert not prefix.match(line) or prefix.match(line).end() == 0, (d.id, line)
            assert "新浪财经APP" not in line and "金麒麟" not in line and "188元红包" not in line, (d.id, line)
            assert "责任编辑" not in line and "本文结束" not in line, (d.id, line)
            assert "<p" not in line and "EM_StockImg" not in line and "返回首页" not in line


@pytest.mark.parametrize("line, kept", [
    # editor footers glued to the last paragraph of Sina and 快科技 articles in data/corpus
    ("基本上已根据自查结果实施了大部分整治措施。(责任编辑：谭梦桐)", "基本上已根据自查结果实施了大部分整治措施。"),
    ("迎来发展第二曲线。”王继平说。责任编辑：宁迪", "迎来发展第二曲线。”王继平说。"),
    ("更加突出公司自主发展金融科技战略的决心。【本文结束】如需转载请务必注明出处：快科技责任编辑：随心",
     "更加突出公司自主发展金融科技战略的决心。"),
    ("责任编辑：张紫祎", ""),
    ("贷款总额达1106.75亿元。", "贷款总额达1106.75亿元。"),
])
def test_editor_footers_are_cut(line, kept):
    assert Boilerplate.load().clean_line(line) == kept


def test_jekyll_post(ingested):
    docs, _ = ingested
    d = next(d for d in docs if d.id == "seed-000-0000")
    assert d.meta["title"] == "乐信CEO肖文杰宣布大额回购计划"
    assert d.meta["date"] == "2022-03-17"
    assert d.text.split("\n")[0] == d.meta["title"]
    assert "全年促成借款额2138亿元(人民币，下同)，同比增长21%" in d.text
    assert "webquoteklinepic" not in d.text and "http" not in d.text


def test_sina_inline_ad_prefix_removed(ingested):
    docs, _ = ingested
    d = next(d for d in docs if d.id == "seed-002-0001")
    assert d.text.split("\n")[1].startswith("疫情影响业绩，23年有望高增360数科2022年报点评")


def test_duplicates_clustered(ingested):
    docs, report = ingested
    by_id = {d.id: d for d in docs}
    # Blocks 216-218 repeat blocks 181-183 (218 differs from 183 only in whitespace).
    assert by_id["seed-002-0216"].meta["duplicate_of"] == "seed-002-0181"
    assert by_id["seed-002-0216"].text == by_id["seed-002-0181"].text
    assert by_id["seed-002-0218"].meta["duplicate_of"] == "seed-002-0183"
    # The same ESG article under two titles: a near duplicate.
    assert by_id["seed-002-0052"].meta["duplicate_of"] == "seed-002-0051"
    assert by_id["seed-002-0052"].text != by_id["seed-002-0051"].text
    assert report["exact_duplicates"] >= 6 and report["near_duplicates"] >= 1
    for d in docs:
        rep = d.meta["cluster"]
        assert "duplicate_of" not in by_id[rep].meta


def test_transcript_turns_split_by_language(ingested):
    docs, _ = ingested
    tr = [d for d in docs if d.meta["source"].startswith("003")]
    zh = [d for d in tr if d.meta["lang"] == "zh"]
    en = [d for d in tr if d.meta["lang"] == "en"]
    assert zh and en
    assert all(d.meta["script"] == "traditional" for d in zh if len(d.text) > 50)
    assert any("人民幣1,100億元" in d.text for d in zh)  # stays as written, Traditional
    assert all(not re.search(r"[\u4e00-\u9fff]{4}", d.text) for d in en)
    raw = (CORPUS / "003_71abd0ac3770a833.txt").read_text("utf-8")
    assert "使用警語" in raw and not any("使用警語" in d.text for d in tr)


@pytest.mark.slow
def test_deterministic_and_atomic(tmp_path):
    runner = CliRunner()
    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    r1 = runner.invoke(app, ["ingest", str(CORPUS), "--out", str(out1)])
    r2 = runner.invoke(app, ["ingest", str(CORPUS), "--out", str(out2)])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
    assert out1.read_bytes() == out2.read_bytes()
    first = json.loads(out1.read_text("utf-8").split("\n")[0])
    assert set(first) == {"id", "text", "meta"}


@pytest.mark.parametrize("content, message", [
    (b"---\ntitle: x\nno closing line\n", "never closed"),
    (b"---\ntitle: [unclosed\n---\n<p>x</p>\n", "not valid YAML"),
    (b"\xff\xfe\x00b\x00a\x00d", "binary"),
    ("标题\n正文".encode("gbk"), "not valid UTF-8"),
    (b"", "empty file"),
])
def test_malformed_input_clear_error_nothing_written(tmp_path, content, message):
    bad = tmp_path / "in" / "009_bad.txt"
    bad.parent.mkdir()
    bad.write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    result = CliRunner().invoke(app, ["ingest", str(bad.parent), "--out", str(out)])
    assert result.exit_code == 2
    assert "009_bad.txt" in result.output and message in result.output
    assert out.read_text() == "previous\n"
    with pytest.raises(IngestError):
        ingest([bad.parent])


def test_html_to_lines_skips_hidden_and_images():
    html = ('<p style="display:none;height:1px;"><br /></p><p><img src="x.png"/>第一段<strong>加粗</strong></p>'
            '<p>第二段&amp;符号<br/>换行</p>')
    assert html_to_lines(html) == ["第一段加粗", "第二段&符号", "换行"]
