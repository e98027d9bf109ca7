"""Batch extraction with a real (tiny) model: inputs, bad documents, resume, formats, Python API."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caibao.cli import app
from caibao.extract import Extractor, run_batch
from caibao.outputs import done_ids
from caibao.schema import Fact

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。截至2021年四季度末，90天以上的逾期率为1.92%。"


@pytest.fixture(scope="module")
def extractor(tiny_model_dir):
    return Extractor.load(tiny_model_dir)


@pytest.fixture()
def inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(ARTICLE, "utf-8")
    (folder / "sub" / "b.md").write_text("# 标题\n" + ARTICLE, "utf-8")
    (folder / "c.html").write_text(f"<html><body><p>{ARTICLE}</p><p style='display:none'>x</p></body></html>", "utf-8")
    (folder / "empty.txt").write_text("   \n", "utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (folder / "gbk.txt").write_bytes(ARTICLE.encode("gbk"))  # read: a legacy Chinese encoding is detected
    (folder / "cp1252.txt").write_bytes("Résumé: revenue grew 21% to €11.4 billion.".encode("cp1252"))
    (folder / "english.txt").write_text("Revenue grew 21% year over year to RMB11.4 billion.", "utf-8")
    (folder / "huge.txt").write_text("营收114亿元。" * 60_000, "utf-8")  # 480,000 characters
    docs = folder / "docs.jsonl"
    docs.write_text(json.dumps({"id": "j1", "text": ARTICLE, "meta": {"date": "2022-03-16"}}, ensure_ascii=False)
                    + "\n{broken json\n", "utf-8")
    return folder


def test_python_api(extractor):
    facts = extractor.extract(ARTICLE, doc_date="2022-03-16")
    assert all(isinstance(f, Fact) for f in facts)
    for f in facts:
        assert ARTICLE[f.value.start:f.value.end] == f.value.text


def test_batch_reports_bad_documents_and_keeps_going(extractor, inputs, tmp_path):
    out = tmp_path / "facts.jsonl"
    report = run_batch([str(inputs)], out, extractor=extractor, progress=False, max_chars=200_000)
    errors = {json.loads(line)["doc_id"].split("/")[-1]: json.loads(line)["error"]
              for line in (tmp_path / "facts.jsonl.errors.jsonl").read_text("utf-8").splitlines()}
    assert "empty document" in errors["empty.txt"]
    assert "binary" in errors["binary.txt"]
    assert "not valid UTF-8" in errors["cp1252.txt"] and "convert it to UTF-8" in errors["cp1252.txt"]
    assert "gbk.txt" not in errors
    assert "no Chinese text" in errors["english.txt"]
    assert "too long" in errors["huge.txt"]
    assert any("not a document" in e for e in errors.values())  # the broken JSONL line
    assert report.documents == 5  # a.txt, b.md, c.html, gbk.txt, j1
    assert report.errors == len(errors)
    assert out.exists() and not (tmp_path / "facts.jsonl.partial.jsonl").exists()
    for line in out.read_text("utf-8").splitlines():
        Fact.model_validate_json(line)


def test_resume_skips_done_documents(extractor, inputs, tmp_path):
    out = tmp_path / "facts.jsonl"
    first = run_batch([str(inputs / "a.txt")], out, extractor=extractor, progress=False)
    assert first.documents == 1
    before = out.read_text("utf-8")
    second = run_batch([str(inputs / "a.txt"), str(inputs / "c.html")], out, extractor=extractor, progress=False,
                       resume=True)
    assert second.skipped == 1 and second.documents == 1
    after = out.read_text("utf-8")
    assert after.startswith(before)
    assert len(done_ids(tmp_path / "facts.jsonl.done")) == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_formats(extractor, inputs, tmp_path, fmt):
    out = tmp_path / f"facts.{fmt}"
    run_batch([str(inputs / "a.txt"), str(inputs / "c.html")], out, extractor=extractor, fmt=fmt, progress=False)
    assert out.exists()
    if fmt == "csv":
        header = out.read_text("utf-8").splitlines()[0]
        assert header.startswith("doc_id,org,org_inferred,metric,value,number,unit")
    else:
        import pyarrow.parquet as pq

        pq.read_table(out)


def test_cli_extract_stdin(tiny_model_dir, tmp_path):
    out = tmp_path / "facts.jsonl"
    result = CliRunner().invoke(app, ["extract", "-", "--out", str(out), "--model", str(tiny_model_dir),
                                      "--no-progress"], input=ARTICLE)
    assert result.exit_code == 0, result.output
    assert "1 documents" in result.output and out.exists()


def test_a_document_the_model_fails_on_does_not_stop_the_batch(extractor, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(ARTICLE, "utf-8")
    (folder / "b.txt").write_text("营收BOOM114亿元。", "utf-8")
    (folder / "c.txt").write_text(ARTICLE, "utf-8")
    real = extractor.extract_documents

    def flaky(docs, batch_size=16):
        if any("BOOM" in d.text for d in docs):
            raise RuntimeError("simulated failure")
        return real(docs, batch_size=batch_size)

    monkeypatch.setattr(extractor, "extract_documents", flaky)
    out = tmp_path / "facts.jsonl"
    report = run_batch([str(folder)], out, extractor=extractor, progress=False, batch_size=8)
    assert report.documents == 2 and report.errors == 1
    err = json.loads((tmp_path / "facts.jsonl.errors.jsonl").read_text("utf-8"))
    assert err["doc_id"].endswith("b.txt") and "simulated failure" in err["error"]


def _cli(*args):
    return CliRunner().invoke(app, ["extract", *map(str, args), "--no-progress"])


def test_a_mistyped_input_leaves_the_output_untouched(tiny_model_dir, tmp_path):
    out = tmp_path / "facts.jsonl"
    out.write_bytes(b'{"an": "earlier run"}\n')
    result = _cli(tmp_path / "corpsu", "--out", out, "--model", tiny_model_dir)
    assert result.exit_code == 2 and "corpsu: no such file or directory" in result.output
    assert out.read_bytes() == b'{"an": "earlier run"}\n'
    assert not list(tmp_path.glob("facts.jsonl.*"))


@pytest.mark.slow
def test_exit_codes_say_whether_documents_failed(tiny_model_dir, inputs, tmp_path):
    out = tmp_path / "facts.jsonl"
    out.write_text("earlier\n", "utf-8")
    none_readable = _cli(inputs / "empty.txt", inputs / "binary.txt", "--out", out, "--model", tiny_model_dir)
    assert none_readable.exit_code == 2 and "no document could be read" in none_readable.output
    assert out.read_text("utf-8") == "earlier\n"  # kept: nothing usable replaced it
    assert "empty document" in out.with_name("facts.jsonl.errors.jsonl").read_text("utf-8")
    some_failed = _cli(inputs / "a.txt", inputs / "empty.txt", "--out", out, "--model", tiny_model_dir)
    assert some_failed.exit_code == 1 and "facts.jsonl.errors.jsonl" in some_failed.output
    assert out.read_text("utf-8") != "earlier\n"
    assert _cli(inputs / "a.txt", "--out", out, "--model", tiny_model_dir).exit_code == 0


def test_resume_after_a_kill_between_facts_and_journal_is_exact(extractor, inputs, tmp_path):
    """A kill after a document's facts reached the file but before its journal line: --resume cuts the
    facts back, redoes that document, and the output equals a clean run's."""
    files = [str(inputs / "a.txt"), str(inputs / "sub" / "b.md"), str(inputs / "c.html"), str(inputs / "empty.txt")]
    clean = tmp_path / "clean.jsonl"
    run_batch(files, clean, extractor=extractor, progress=False)
    out = tmp_path / "facts.jsonl"
    run_batch(files[:2], out, extractor=extractor, progress=False)
    partial = out.with_name("facts.jsonl.partial.jsonl")
    out.rename(partial)  # the run had not finished
    committed = partial.read_bytes()
    with open(partial, "ab") as fh:  # c.html's facts written, its journal line not, and a line torn
        fh.write(b'{"doc_id": "in flight"}\n{"doc_id": "torn')
    with open(out.with_name("facts.jsonl.done"), "ab") as fh:
        fh.write(b'["torn journal line", 12')
    report = run_batch(files, out, extractor=extractor, progress=False, resume=True)
    assert report.skipped == 2 and report.documents == 1 and report.errors == 1
    assert out.read_bytes().startswith(committed)
    assert out.read_bytes() == clean.read_bytes()
    assert sorted(done_ids(out.with_name("facts.jsonl.done"))) == sorted(done_ids(clean.with_name("clean.jsonl.done")))


def test_top_level_import():
    import caibao

    assert caibao.Extractor is Extractor


@pytest.mark.slow
def test_kills_at_random_instants_and_resume_give_a_clean_runs_output(tiny_model_dir, tmp_path):
    """benchmarks/kill_resume.py (50 kills in its own run), here with a few kills and documents."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kill_resume", ROOT / "benchmarks" / "kill_resume.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    docs = tmp_path / "docs.jsonl"
    bench.write_documents(docs, 6)
    result = bench.kill_and_resume(docs, tmp_path, str(tiny_model_dir), kills=2)
    assert result["kills"] == 2 and result["documents_with_facts"] > 0
    assert result["facts_identical"] and result["errors_identical"]
