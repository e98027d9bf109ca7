"""Bad input ends every command the same way: one error line naming file and line, exit 2, nothing written."""

import pytest
from typer.testing import CliRunner

from caibao.cli import app

runner = CliRunner()


@pytest.fixture()
def bad_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "d1", "text": "乐信全年营收114亿元。"}\n{"id": "d2", "text": \n', "utf-8")
    return path


@pytest.mark.parametrize("args", [
    ["validate", "{bad}"],
    ["to-labelstudio", "{bad}", "--out", "{out}"],
    ["stats", "{bad}"],
    ["consistency", "{bad}"],
    ["preannotate", "{bad}", "--out", "{out}"],
    ["evaluate", "--gold", "{bad}", "--baseline"],
])
def test_bad_jsonl_line_is_named_and_exits_2(args, bad_jsonl, tmp_path):
    out = tmp_path / "out.json"
    result = runner.invoke(app, [a.format(bad=bad_jsonl, out=out) for a in args])
    assert result.exit_code == 2, result.output
    assert f"{bad_jsonl}:2" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_input_is_named_and_exits_2(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    result = runner.invoke(app, ["validate", str(missing)])
    assert result.exit_code == 2 and "no such file" in result.output.replace("\n", "")


@pytest.mark.parametrize("command", [["extract", "-", "--out", "{out}"], ["evaluate", "--gold", "annotations/gold"]])
def test_a_model_that_is_neither_a_folder_nor_bundled_is_named_and_exits_2(command, tmp_path):
    out = tmp_path / "facts.jsonl"
    missing = tmp_path / "no-model"
    result = runner.invoke(app, [a.format(out=out) for a in command] + ["--model", str(missing)], input="乐信营收114亿元。")
    text = result.output.replace("\n", "")
    assert result.exit_code == 2, result.output
    assert str(missing) in text and "nor a bundled model (full, distilled)" in text
    assert not out.exists()


def test_evaluate_end_to_end_on_heldout_with_the_rules():
    # The --facts path end to end on real held-out articles (the rules: fast, deterministic).
    import json as _json

    result = CliRunner().invoke(app, ["evaluate", "--gold", "annotations/gold", "--split", "heldout", "--baseline",
                                      "--facts", "annotations/facts", "--json"])
    assert result.exit_code == 0, result.output[-1000:]
    e2e = _json.loads(result.output)["end_to_end"]
    assert e2e["documents"] >= 40 and e2e["gold_facts"] > 700
    assert 0 < e2e["matched"] <= e2e["gold_facts"] and set(e2e["field_accuracy"]) >= {"org", "period", "number"}


def test_evaluate_with_facts_for_other_documents_fails_with_one_line(tmp_path):
    facts = tmp_path / "facts.jsonl"
    facts.write_text('{"id": "nowhere", "aliases": {}, "facts": []}\n', "utf-8")
    result = CliRunner().invoke(app, ["evaluate", "--gold", "annotations/gold", "--split", "test", "--baseline",
                                      "--facts", str(facts)])
    assert result.exit_code == 2
    assert "none of the evaluated documents has hand-checked facts" in " ".join(result.output.split())


def test_evaluate_unknown_split_fails_with_one_line():
    result = CliRunner().invoke(app, ["evaluate", "--gold", "annotations/gold", "--split", "nosuch", "--baseline"])
    assert result.exit_code == 2 and "no split named 'nosuch'" in " ".join(result.output.split())


@pytest.mark.parametrize("args, named", [
    (["transfer-set", "--out", "{out}", "--corpus", "{missing}"], "{missing}: no such file or directory"),
    (["transfer-set", "--out", "{out}", "--splits", "{missing}"], "{missing}: no such file"),
    (["bundle", "{missing}", "--dest", "{out}"], "{missing}: no such folder"),
])
def test_the_retrain_chain_commands_name_a_missing_input_and_exit_2(args, named, tmp_path):
    out, missing = tmp_path / "out", tmp_path / "nowhere"
    result = runner.invoke(app, [a.format(out=out, missing=missing) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and named.format(missing=missing) in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()
