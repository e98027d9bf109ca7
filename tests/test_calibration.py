"""Confidence calibration (caibao.calibration): features, fitting, cross-fitting by organisation,
the bundled models' calibrators, and `caibao calibrate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caibao.annotations import read_gold
from caibao.calibration import (Calibrator, Settings, cross_fitted, feature_rows, fit, organisation_groups,
                                settings)
from caibao.cli import app
from caibao.evaluate import read_fact_gold
from caibao.facts import build_facts
from caibao.persistence import bundled_model_path

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def gold():
    splits = json.loads((ROOT / "annotations" / "splits.json").read_text("utf-8"))
    return {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}, read_fact_gold(ROOT / "annotations" / "facts"), splits


def test_settings_name_only_known_features(tmp_path):
    assert set(settings().features) <= {"score_logit", "org_missing", "org_inferred", "period_missing",
                                        "period_inferred", "unit_missing", "change", "document_orgs", "undated",
                                        "metric_unmapped"}
    bad = tmp_path / "calibration.yaml"
    bad.write_text("features: [score_logit, colour]\nregularisation: 1\nfolds: 5\n", "utf-8")
    with pytest.raises(ValueError, match=r"calibration.yaml: unknown feature 'colour'"):
        settings.__wrapped__(bad)


def test_features_of_a_roundup_see_its_many_organisations(gold):
    docs, _, splits = gold
    names = ("document_orgs", "org_inferred", "org_missing", "period_missing")
    per_doc = {}
    for doc_id in splits["heldout"]:
        facts = build_facts(docs[doc_id])
        rows = feature_rows(docs[doc_id], facts, names)
        assert len(rows) == len(facts)
        for f, row in zip(facts, rows):
            assert row[1] == float(bool(f.org and f.org.inferred)) and row[2] == float(f.org is None)
        if rows:
            per_doc[doc_id] = round(math.expm1(rows[0][0]))
    # held-out articles range from one company's results to roundups of many (and an industry
    # roundup whose figures are no one organisation's)
    assert 1 in per_doc.values() and max(per_doc.values()) >= 4


def test_calibrator_round_trips_and_keeps_the_raw_score(tmp_path, gold):
    docs, _, splits = gold
    doc = docs[splits["heldout"][0]]
    names = settings().features
    facts = [f.model_copy(update={"confidence": 0.9}) for f in build_facts(doc)]
    rows = feature_rows(doc, facts, names)
    cal = fit(rows + rows, [True] * len(rows) + [False] * len(rows), names, 1.0)
    loaded = Calibrator.load(cal.save(tmp_path).parent)
    assert loaded == cal
    out = loaded.apply(doc, facts)
    assert [f.score for f in out] == [0.9] * len(facts)
    assert all(0 < f.confidence < 1 for f in out)
    assert [f.confidence for f in loaded.apply(doc, out)] == [f.confidence for f in out]  # applied twice: same
    (tmp_path / "calibration.json").write_text('{"features": ["score_logit"]}', "utf-8")
    with pytest.raises(ValueError, match=r"calibration.json: not a calibration file"):
        Calibrator.load(tmp_path)
    assert Calibrator.load(tmp_path / "nothing-here") is None


def test_cross_fitting_never_sees_the_group_it_predicts():
    # Group 0's facts are all right and a feature says "group 0"; every other group is half right.
    groups = [g for g in range(6) for _ in range(10)]
    rows = [[float(g == 0)] for g in groups]
    right = [g == 0 or k % 2 == 0 for k, g in enumerate(groups)]
    conf = Settings(("unit_missing",), 1.0, 3)
    in_sample = fit(rows, right, conf.features, 1.0).probabilities(rows[:1])[0]
    held_out = cross_fitted(rows, right, groups, conf.features, conf)[0]
    assert in_sample > 0.65 and abs(held_out - 0.5) < 0.05


def test_organisation_groups_link_articles_about_the_same_organisation(gold):
    _, fact_gold, _ = gold
    groups = organisation_groups(fact_gold)
    by_org = {}
    for doc_id, row in fact_gold.items():
        for f in row["facts"]:
            if f["org"] == "招联消费金融":
                by_org.setdefault(groups[doc_id], set()).add(doc_id)
    assert len(by_org) == 1 and len(next(iter(by_org.values()))) >= 2


@pytest.mark.parametrize("model", ["distilled", "full"])
def test_bundled_calibration_is_fitted_off_the_training_split_and_reliable(model, gold):
    _, _, splits = gold
    cal = Calibrator.load(bundled_model_path(model))
    assert cal is not None and cal.features == settings().features
    assert not set(cal.fit["doc_ids"]) & set(splits["train"])
    report = cal.report
    # cross-fitted by organisation, the calibrated confidence is far more reliable than the raw score
    assert report["cross_fitted"]["ece"] < 0.06 and report["cross_fitted"]["ece"] < report["raw_score"]["ece"] / 4


@pytest.mark.slow
def test_extracted_facts_carry_calibrated_confidence_and_raw_score(gold):
    from caibao.extract import Extractor, fact_row

    docs, _, splits = gold
    facts = Extractor.load(runtime="torch").extract(docs[splits["heldout"][1]].text)
    assert facts and all(f.score is not None and 0 < f.confidence < 1 for f in facts)
    assert any(f.confidence != f.score for f in facts)
    assert fact_row(facts[0])["score"] == facts[0].score


@pytest.mark.parametrize("args, message", [
    (["--fit-on", "dev,nosuch"], "no split named 'nosuch'"),
    (["--fit-on", "dev", "--report-on", "heldout"], "--report-on heldout must be one of the --fit-on splits"),
])
def test_calibrate_names_bad_splits(args, message):
    result = runner.invoke(app, ["calibrate", *args])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_calibrate_fits_and_reports_cross_fitted_reliability(tmp_path):
    result = runner.invoke(app, ["calibrate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "heldout cross fitted -> share right" in result.output
    cal = Calibrator.load(tmp_path)
    assert cal.fit["documents"] == 57 and cal.report["facts"] > 600


def test_a_broken_calibration_file_is_one_line_naming_it(tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(bundled_model_path("distilled"), model)
    (model / "calibration.json").write_text('{"features": 3}', "utf-8")
    article = tmp_path / "a.txt"
    article.write_text("乐信营收114亿元。", "utf-8")
    out = tmp_path / "facts.jsonl"
    result = runner.invoke(app, ["extract", str(article), "--model", str(model), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2 and "calibration.json: not a calibration file" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("facts.jsonl*"))
