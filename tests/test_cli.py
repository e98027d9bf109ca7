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
