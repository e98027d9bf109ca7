"""Metric code on hand-made cases with known precision / recall / F1."""

import pytest

from caibao.evaluate import char_iob2, prf, score
from caibao.schema import Document, Entity, Relation

TEXT = "乐信营收114亿元，同比增长21%。信也科技营收94.7亿元。"


def doc(entities, relations=()):
    return Document(id="d1", text=TEXT, meta={"date": "2022-03-16"},
                    entities=[Entity(id=i, start=s, end=e, label=lab) for i, s, e, lab in entities],
                    relations=[Relation(head=h, tail=t, label=lab) for h, t, lab in relations])


GOLD_ENTS = [("o1", 0, 2, "ORG"), ("m1", 2, 4, "METRIC"), ("v1", 4, 9, "VALUE"), ("v2", 14, 17, "VALUE"),
             ("o2", 18, 22, "ORG"), ("m2", 22, 24, "METRIC"), ("v3", 24, 30, "VALUE")]
GOLD_RELS = [("o1", "m1", "org_metric"), ("m1", "v1", "metric_value"), ("m1", "v2", "metric_change"),
             ("o2", "m2", "org_metric"), ("m2", "v3", "metric_value")]


def test_spans_are_what_the_test_thinks():
    d = doc(GOLD_ENTS)
    assert [d.span_text(e) for e in d.entities] == ["乐信", "营收", "114亿元", "21%", "信也科技", "营收", "94.7亿元"]


def test_prf_basics():
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(2, 4, 2) == {"precision": 0.5, "recall": 1.0, "f1": 0.6667}


def test_perfect_prediction_scores_one():
    g = doc(GOLD_ENTS, GOLD_RELS)
    s = score([g], [g])
    assert s["entity"]["micro"]["f1"] == 1.0
    assert s["relation"]["micro"]["f1"] == 1.0
    assert s["fact"]["micro"]["f1"] == 1.0
    assert s["documents"] == 1


def test_boundary_error_counts_as_miss_and_false_alarm():
    g = doc(GOLD_ENTS, GOLD_RELS)
    # VALUE 114亿 instead of 114亿元: one wrong span -> 6 of 7 right, 6 of 7 predicted right.
    ents = [e if e[0] != "v1" else ("v1", 4, 8, "VALUE") for e in GOLD_ENTS]
    p = doc(ents, GOLD_RELS)
    s = score([g], [p])
    assert s["entity"]["micro"] == {"precision": round(6 / 7, 4), "recall": round(6 / 7, 4), "f1": round(6 / 7, 4)}
    assert s["entity"]["per_label"]["VALUE"]["f1"] == pytest.approx(2 / 3, abs=1e-4)
    # The relation to the wrong span is wrong too (strict end-to-end): 4 of 5.
    assert s["relation"]["micro"]["f1"] == 0.8
    assert s["relation"]["per_label"]["metric_value"]["precision"] == 0.5


def test_wrong_relation_label_and_missing_relation():
    g = doc(GOLD_ENTS, GOLD_RELS)
    rels = [r if r[1] != "v2" else ("m1", "v2", "metric_value") for r in GOLD_RELS if r[1] != "v3"]
    p = doc(GOLD_ENTS, rels)
    s = score([g], [p])
    # predicted 4 relations, 3 right; gold 5.
    assert s["relation"]["micro"] == prf(3, 4, 5)
    assert s["relation"]["per_label"]["metric_change"]["recall"] == 0.0
    # facts: gold 3 (v1, v2 change, v3); predicted 2 (v1 level right, v2 as level wrong kind).
    assert s["fact"]["micro"] == prf(1, 2, 3)


def test_fact_org_must_agree():
    g = doc(GOLD_ENTS, GOLD_RELS)
    # Without org_metric for m2, 信也科技 owns no fact in the document: the fact falls back to
    # the main org (乐信), which is wrong for 94.7亿元.
    p = doc(GOLD_ENTS, [r for r in GOLD_RELS if r != ("o2", "m2", "org_metric")])
    s = score([g], [p])
    assert s["fact"]["micro"] == prf(2, 3, 3)
    assert s["relation"]["micro"] == prf(4, 4, 5)


def test_char_iob2_by_sentence():
    tags = char_iob2(doc([("o1", 0, 2, "ORG"), ("v3", 24, 30, "VALUE")]))
    assert len(tags) == 2
    assert tags[0][:3] == ["B-ORG", "I-ORG", "O"]
    assert tags[1][24 - 18 : 30 - 18] == ["B-VALUE"] + ["I-VALUE"] * 5


def test_score_rejects_mismatched_documents():
    g = doc(GOLD_ENTS)
    other = Document(id="d2", text=TEXT)
    with pytest.raises(ValueError):
        score([g], [other])


# --- end to end: extracted facts against hand-checked facts ---------------------------------

from pathlib import Path  # noqa: E402

from caibao.annotations import read_gold  # noqa: E402
from caibao.evaluate import FACT_FIELDS, end_to_end_scores, field_agreement, match_facts, read_fact_gold  # noqa: E402
from caibao.facts import build_facts  # noqa: E402
from caibao.io import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def web_gold():
    docs = {d.id: d for d in read_gold(ROOT / "annotations" / "gold") if d.id.startswith("web-")}
    return docs, read_fact_gold(ROOT / "annotations" / "facts")


def test_fact_gold_covers_every_metric_relation_of_the_web_gold(web_gold):
    docs, facts = web_gold
    assert set(facts) == set(docs)
    for doc_id, row in facts.items():
        doc = docs[doc_id]
        values = {(e.start, e.end) for e in doc.entities if e.id in
                  {r.tail for r in doc.relations if r.label in ("metric_value", "metric_change")}}
        assert {(f["value"]["start"], f["value"]["end"]) for f in row["facts"]} == values, doc_id
        for f in row["facts"]:
            assert doc.text[f["value"]["start"]:f["value"]["end"]] == f["value"]["text"]
            assert f["org"] is None or f["org"] in row["aliases"], (doc_id, f["org"])


def test_gold_spans_through_the_fact_builder_mostly_reproduce_the_hand_checked_facts(web_gold):
    # The builder's document-level resolution on perfect spans: every fact matches, and the
    # fields the builder infers (org, period) agree with the annotators' reading most of the time.
    docs, facts = web_gold
    result = end_to_end_scores(facts, {i: build_facts(d) for i, d in docs.items()})
    # (a value with two metrics, 营收和净利润增幅均超100%, is two extracted facts and one gold fact)
    assert result["matched"] == result["gold_facts"] <= result["extracted_facts"]
    acc = result["field_accuracy"]
    assert acc["metric"] == 1.0 and acc["kind"] == 1.0
    assert acc["org"] > 0.88 and acc["period"] > 0.75 and acc["guidance"] > 0.95
    assert result["micro"]["f1"] > 0.6


def test_one_wrong_field_makes_the_fact_wrong(web_gold):
    docs, facts = web_gold
    doc_id = "web-01-00"
    extracted = build_facts(docs[doc_id])
    good = end_to_end_scores({doc_id: facts[doc_id]}, {doc_id: extracted})
    shifted = [f.model_copy(update={"period": f.period.model_copy(update={"normalized": "1999FY"})})
               if f.period else f for f in extracted]
    bad = end_to_end_scores({doc_id: facts[doc_id]}, {doc_id: shifted})
    assert bad["field_accuracy"]["period"] == 0.0 and bad["micro"]["f1"] < good["micro"]["f1"]
    assert bad["field_accuracy"]["org"] == good["field_accuracy"]["org"]


def test_org_is_right_under_any_name_the_article_gives_it(web_gold):
    docs, facts = web_gold
    row = facts["web-01-00"]  # 招联金融, also called 招联消费金融 in the article
    gold = next(f for f in row["facts"] if f["org"] == "招联金融")
    extracted = {f.value.start: f for f in build_facts(docs["web-01-00"])}[gold["value"]["start"]]
    for name in ["招联金融", *row["aliases"]["招联金融"]]:
        renamed = extracted.model_copy(update={"org": extracted.org.model_copy(update={"text": name})})
        assert field_agreement(gold, renamed, row["aliases"])["org"]
    other = extracted.model_copy(update={"org": extracted.org.model_copy(update={"text": "兴业消金"})})
    assert not field_agreement(gold, other, row["aliases"])["org"]


def test_matching_is_one_to_one_by_value_overlap(web_gold):
    docs, facts = web_gold
    gold = facts["web-01-00"]["facts"]
    extracted = build_facts(docs["web-01-00"])
    pairs = match_facts(gold, extracted + extracted)  # every extracted fact twice
    assert len(pairs) == len(gold) and len({id(p) for _, p in pairs}) == len(gold)
    assert set(FACT_FIELDS) <= set(field_agreement(*pairs[0], {}))


def test_fact_gold_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "facts.jsonl"
    bad.write_text('{"id": "d1", "facts": [{"org": "乐信"}]}\n', "utf-8")
    with pytest.raises(InputError, match=r"facts.jsonl:1: document d1: a fact lacks metric, value, kind, guidance"):
        read_fact_gold(bad)


def test_confidence_report_bins_and_thresholds():
    from caibao.evaluate import confidence_report

    judged = [(0.3, False), (0.6, True), (0.85, False), (0.92, True), (0.97, True), (1.0, True)]
    report = confidence_report(judged, n_gold=8)
    by_bin = {(b["from"], b["to"]): (b["facts"], b["right"]) for b in report["bins"]}
    assert by_bin[(0.0, 0.5)] == (1, 0.0) and by_bin[(0.8, 0.9)] == (1, 0.0)
    assert by_bin[(0.95, 1.0)] == (2, 1.0)  # 1.0 falls in the last bin
    assert by_bin[(0.7, 0.8)] == (0, None)
    at_09 = report["thresholds"]["0.9"]
    assert at_09["facts"] == 3 and at_09["precision"] == 1.0 and at_09["recall"] == 0.375


def test_end_to_end_reports_confidence_of_every_extracted_fact(web_gold):
    docs, facts = web_gold
    result = end_to_end_scores(facts, {i: build_facts(d) for i, d in docs.items()})
    bins = result["confidence"]["bins"]
    assert sum(b["facts"] for b in bins) == result["extracted_facts"]
    assert bins[-1]["facts"] == result["extracted_facts"]  # gold spans: every confidence is 1


def _fact_builder_check():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "fact_builder_check.py"
    spec = importlib.util.spec_from_file_location("fact_builder_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fact_builder_check_scores_the_builder_on_gold_spans(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["fact_builder_check.py", "--split", "dev", "--show", "period"])
    _fact_builder_check().main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dev: 12 articles, 148 hand-checked facts, 148 matched")
    accuracy = dict(item.split() for item in out[1].removeprefix("field accuracy: ").split(", "))
    assert float(accuracy["org"]) > 0.9 and float(accuracy["period"]) > 0.85
    shown = [line for line in out[2:] if not line.startswith("    ")]
    assert shown and all(": gold " in line and ", built " in line for line in shown)


@pytest.mark.parametrize("args, message", [
    (["--split", "dev,nope"], "has no split nope"),
    (["--split", "dev", "--show", "colour"], "--show takes one of org"),
])
def test_fact_builder_check_names_a_bad_argument(args, message, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["fact_builder_check.py", *args])
    with pytest.raises(SystemExit) as exit_:
        _fact_builder_check().main()
    assert exit_.value.code == 2 and message in capsys.readouterr().err
