"""Validation rules (one hand-made bad file per rule) and lossless Label Studio conversion."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from caibao.annotations import (
    LabelStudioFormatError,
    document_to_json,
    document_to_ls_task,
    labeling_config,
    ls_task_to_document,
    read_ls_tasks,
    validate_paths,
    write_documents,
    write_ls_tasks,
)
from caibao.cli import app
from caibao.schema import ENTITY_LABELS, RELATION_LABELS, RELATION_SIGNATURES, Document

# The guide's worked example, annotated as the guide says.
TEXT = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。截至2021年四季度末，90天以上的逾期率为1.92%。"
ENTITIES = [
    ("e1", 0, 2, "ORG"), ("e2", 2, 4, "PERIOD"), ("e3", 4, 9, "METRIC"), ("e4", 9, 15, "VALUE"),
    ("e5", 20, 23, "VALUE"), ("e6", 24, 26, "METRIC"), ("e7", 26, 31, "VALUE"), ("e8", 34, 43, "PERIOD"),
    ("e9", 44, 53, "METRIC"), ("e10", 54, 59, "VALUE"),
]
RELATIONS = [
    ("e1", "e3", "org_metric"), ("e1", "e6", "org_metric"), ("e3", "e4", "metric_value"),
    ("e3", "e5", "metric_change"), ("e6", "e7", "metric_value"), ("e4", "e2", "value_period"),
    ("e5", "e2", "value_period"), ("e7", "e2", "value_period"), ("e9", "e10", "metric_value"),
    ("e10", "e8", "value_period"),
]


def worked_example() -> dict:
    return {
        "id": "guide-0001", "text": TEXT, "meta": {"title": None, "date": "2022-03-16", "source": "guide"},
        "entities": [{"id": i, "start": s, "end": e, "label": lab} for i, s, e, lab in ENTITIES],
        "relations": [{"head": h, "tail": t, "label": lab} for h, t, lab in RELATIONS],
    }


def test_worked_example_spans_match_the_guide():
    doc = Document.model_validate(worked_example())
    texts = [doc.span_text(e) for e in doc.entities]
    assert texts == ["乐信", "全年", "促成借款额", "2138亿元", "21%", "营收", "114亿元", "2021年四季度末",
                     "90天以上的逾期率", "1.92%"]


def write(tmp_path, docs, name="gold.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    return path


def codes(tmp_path, docs):
    _, problems = validate_paths([write(tmp_path, docs)])
    return {p.code for p in problems if p.severity == "error"}, problems


def test_valid_example_passes(tmp_path):
    found, problems = codes(tmp_path, [worked_example()])
    assert found == set() and problems == []


def mutate(fn):
    d = worked_example()
    fn(d)
    return d


@pytest.mark.parametrize("name, fn, code", [
    ("offset past the end", lambda d: d["entities"][9].update(end=999), "bad-offsets"),
    ("empty span", lambda d: d["entities"][0].update(end=0), "bad-offsets"),
    ("span padded with a space", lambda d: (d.update(text=d["text"].replace("营收", " 营收")),
                                            [e.update(start=e["start"] + (e["start"] >= 24), end=e["end"] + (e["end"] > 24))
                                             for e in d["entities"]], d["entities"][5].update(start=24)),
     "padded-span"),
    ("overlapping spans", lambda d: d["entities"][2].update(start=3), "overlap"),
    ("unknown label", lambda d: d["entities"][0].update(label="COMPANY"), "unknown-label"),
    ("duplicate entity id", lambda d: d["entities"][1].update(id="e1"), "duplicate-entity-id"),
    ("dangling relation", lambda d: d["relations"][0].update(tail="e99"), "dangling-relation"),
    ("wrong relation types", lambda d: d["relations"][0].update(head="e2"), "relation-types"),
    ("unknown relation", lambda d: d["relations"][0].update(label="owns"), "unknown-relation"),
    ("duplicate relation", lambda d: d["relations"].append(dict(d["relations"][0])), "duplicate-relation"),
    ("metric without value", lambda d: d["relations"].remove(
        {"head": "e9", "tail": "e10", "label": "metric_value"}), "metric-without-value"),
    ("period without value", lambda d: d["relations"].remove(
        {"head": "e10", "tail": "e8", "label": "value_period"}), "period-without-value"),
    ("relation across sentences", lambda d: d["relations"].append(
        {"head": "e1", "tail": "e9", "label": "org_metric"}), "cross-sentence"),
])
def test_each_rule_is_caught(tmp_path, name, fn, code):
    found, problems = codes(tmp_path, [mutate(fn)])
    assert code in found, (name, [str(p) for p in problems])
    p = next(p for p in problems if p.code == code)
    assert p.file.endswith("gold.jsonl") and p.line == 1 and p.doc_id == "guide-0001"


def test_duplicate_document_id_and_schema_errors(tmp_path):
    found, _ = codes(tmp_path, [worked_example(), worked_example()])
    assert "duplicate-document-id" in found
    bad = worked_example()
    del bad["text"]
    found, problems = codes(tmp_path, [bad])
    assert found == {"schema"} and "text" in str(problems[0])


def test_cli_validate_exit_codes(tmp_path):
    runner = CliRunner()
    good = write(tmp_path, [worked_example()], "good.jsonl")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    bad = write(tmp_path, [mutate(lambda d: d["entities"][0].update(label="COMPANY"))], "bad.jsonl")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:1" in result.output and "guide-0001" in result.output and "e1" in result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "text": "a"}\n{not json\n')
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2 and "broken.jsonl:2" in result.output


def test_labeling_config_from_schema():
    root = ET.fromstring(labeling_config())
    labels = [el.get("value") for el in root.iter("Label")]
    relations = [el.get("value") for el in root.iter("Relation")]
    assert labels == list(ENTITY_LABELS) and relations == list(RELATION_LABELS)
    assert root.find("Text").get("value") == "$text"


def test_ls_round_trip_worked_example(tmp_path):
    doc = Document.model_validate(worked_example())
    write_ls_tasks([doc], tmp_path / "tasks.json")
    back = read_ls_tasks(tmp_path / "tasks.json")
    assert [document_to_json(d) for d in back] == [document_to_json(doc)]
    write_documents(back, tmp_path / "back.jsonl")
    assert (tmp_path / "back.jsonl").read_text("utf-8") == json.dumps(document_to_json(doc), ensure_ascii=False) + "\n"


def test_ls_unknown_label_is_an_error():
    task = document_to_ls_task(Document.model_validate(worked_example()))
    task["annotations"][0]["result"][0]["value"]["labels"] = ["COMPANY"]
    with pytest.raises(LabelStudioFormatError, match="unknown label 'COMPANY'"):
        ls_task_to_document(task)


# --- property test: random valid documents survive JSONL -> Label Studio -> JSONL -------


@st.composite
def documents(draw):
    text = draw(st.text(alphabet=st.sampled_from(list("乐信营收亿元年度，。0123456789%ab \n")), min_size=1, max_size=60))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    entities = []
    for k, (s, e) in enumerate(zip(cuts[::2], cuts[1::2])):
        if e > s:
            entities.append({"id": f"e{k}", "start": s, "end": e, "label": draw(st.sampled_from(ENTITY_LABELS))})
    relations = []
    for h in entities:
        for t in entities:
            for rel, (hl, tl) in RELATION_SIGNATURES.items():
                if h["label"] == hl and t["label"] == tl and draw(st.booleans()):
                    relations.append({"head": h["id"], "tail": t["id"], "label": rel})
    meta = draw(st.dictionaries(st.sampled_from(["title", "date", "source"]), st.text(max_size=5), max_size=3))
    return {"id": draw(st.from_regex(r"seed-\d{3}-\d{4}", fullmatch=True)), "text": text, "meta": meta,
            "entities": entities, "relations": relations}


@settings(max_examples=200, deadline=None)
@given(documents())
def test_ls_round_trip_property(raw):
    doc = Document.model_validate(raw)
    task = json.loads(json.dumps(document_to_ls_task(doc), ensure_ascii=False))
    back = ls_task_to_document(task)
    assert document_to_json(back) == document_to_json(doc)


# --- model output cut to what the guide allows (review pre-annotations) -------------------------------

GUIDE_CUT_CASES = [
    # (text, entities, relations, what stays: entity texts, relation count)
    ("乐信全年营收114亿元。净利润同比增长。",
     [("e1", 0, 2, "ORG"), ("e2", 2, 4, "PERIOD"), ("e3", 4, 6, "METRIC"), ("e4", 6, 11, "VALUE"),
      ("e5", 12, 15, "METRIC")],
     [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e4", "e2", "value_period"),
      ("e1", "e5", "org_metric")],  # a link across two sentences, a METRIC without a value
     ["乐信", "全年", "营收", "114亿元"], 3),
    ("信也科技2022年净利润21亿元。",
     [("e1", 0, 4, "ORG"), ("e2", 4, 9, "PERIOD"), ("e3", 9, 12, "METRIC"), ("e4", 12, 16, "VALUE")],
     [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e2", "e4", "value_period"),
      ("e3", "e4", "metric_value")],  # a reversed relation (PERIOD -> VALUE) and a repeated one
     ["信也科技", "净利润", "21亿元"], 2),
    ("奇富科技第四季度营收41亿元。",
     [("e1", 0, 4, "ORG"), ("e2", 4, 8, "PERIOD"), ("e3", 8, 10, "METRIC"), ("e4", 10, 14, "VALUE")],
     [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e4", "e2", "value_period")],  # valid already
     ["奇富科技", "第四季度", "营收", "41亿元"], 3),
]


@pytest.mark.parametrize("text, ents, rels, kept, n_rels", GUIDE_CUT_CASES)
def test_without_guide_errors_keeps_only_what_validates(text, ents, rels, kept, n_rels):
    from caibao.annotations import check_document, without_guide_errors
    from caibao.schema import Document, Entity, Relation

    doc = Document(id="d", text=text, entities=[Entity(id=i, start=s, end=e, label=lab) for i, s, e, lab in ents],
                   relations=[Relation(head=h, tail=t, label=lab) for h, t, lab in rels])
    cut = without_guide_errors(doc)
    assert [p for p in check_document(cut) if p.severity == "error"] == []
    assert [text[e.start:e.end] for e in cut.entities] == kept and len(cut.relations) == n_rels


def test_a_folder_s_other_jsonl_files_are_skipped_with_a_warning(tmp_path):
    from caibao.annotations import validate_paths

    root = Path(__file__).resolve().parents[1] / "annotations"
    (tmp_path / "gold").mkdir()
    (tmp_path / "facts").mkdir()
    (tmp_path / "gold" / "web-01.jsonl").write_text((root / "gold" / "web-01.jsonl").read_text("utf-8"), "utf-8")
    (tmp_path / "facts" / "web-01.jsonl").write_text((root / "facts" / "web-01.jsonl").read_text("utf-8"), "utf-8")
    count, problems = validate_paths([tmp_path])
    assert count > 0 and [p.code for p in problems] == ["not-documents"]
    assert problems[0].severity == "warning" and problems[0].file.endswith("facts/web-01.jsonl")
    _, named = validate_paths([tmp_path / "facts" / "web-01.jsonl"])  # named on its own: checked
    assert any(p.code == "schema" and p.severity == "error" for p in named)
