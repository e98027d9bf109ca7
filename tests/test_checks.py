"""The fact checks of fresh pages (annotations/checks/*): well formed, and scored as documented."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK_SETS = sorted((ROOT / "annotations" / "checks").glob("stage*"))
FIELDS = ("org", "metric", "number", "unit", "kind", "period", "guidance")


def _script():
    spec = importlib.util.spec_from_file_location("check_score", ROOT / "scripts" / "check_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("check_set", CHECK_SETS, ids=lambda p: p.name)
def test_every_checked_fact_points_into_its_page(check_set):
    docs = {d["id"]: d for d in map(json.loads, (check_set / "docs.jsonl").read_text(encoding="utf-8").splitlines())}
    checks = [json.loads(line) for line in (check_set / "checked_facts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(docs) >= 30 and len(checks) >= 500
    for c in checks:
        text = docs[c["doc_id"]]["text"]
        assert text[c["value"]["start"] : c["value"]["end"]] == c["value"]["text"], c
        assert c["expected"] is None or set(c["expected"]) == set(FIELDS), c
        assert c["expected"] is not None or "not_a_fact" in c["wrong"], c


def test_an_organisation_agrees_up_to_its_legal_form_only():
    score = _script()
    assert score.agrees("org", "宏利金融", "宏利")
    assert score.agrees("org", "招联消费金融有限公司", "招联消费金融")
    assert not score.agrees("org", "宏利香港", "宏利")
    assert score.agrees("number", 0.1 + 0.2, 0.3) and not score.agrees("period", "2025Q3", "2025Q1-Q3")


def test_a_check_set_with_bad_data_names_the_file_and_line(tmp_path):
    from caibao.io import InputError

    page = {"id": "p1", "text": "招联消金净利润30亿元", "meta": {}}
    (tmp_path / "docs.jsonl").write_text(json.dumps(page, ensure_ascii=False) + "\n", encoding="utf-8")
    good = {"doc_id": "p1", "value": {"text": "30亿元", "start": 7, "end": 12}, "expected": None, "wrong": ["not_a_fact"]}
    bad = {**good, "value": {"text": "31亿元", "start": 7, "end": 12}}
    lines = [json.dumps(c, ensure_ascii=False) for c in (good, bad)]
    (tmp_path / "checked_facts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"checked_facts\.jsonl:2: value '31亿元' is not at its offsets"):
        _script().read_check_set(tmp_path)
    (tmp_path / "checked_facts.jsonl").write_text(lines[0] + "\n", encoding="utf-8")
    docs, checks = _script().read_check_set(tmp_path)
    assert [d.id for d in docs] == ["p1"] and len(checks) == 1
