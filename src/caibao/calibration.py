"""A fact's confidence as the probability that it is right, end to end.

The raw score of a fact (the product of its spans' and relation's
probabilities, :func:`caibao.facts.build_facts`) ranks facts but says nothing
of what goes wrong most on unseen articles: the organisation and the period
the fact builder resolves. A logistic regression over the raw score and a few
resolution features (``resources/calibration.yaml``) is fitted on hand-checked
facts with ``caibao calibrate`` and saved with the model (``calibration.json``);
:class:`Calibrator` applies it to every extracted fact, keeping the raw score
in ``Fact.score``.

Fit data and honesty: the figures a fit reports are *cross-fitted by
organisation* (:func:`cross_fitted`): each fact's confidence comes from a fit
that never saw an article about its organisation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from caibao.io import InputError, atomic_write_text
from caibao.schema import Document, Fact

SETTINGS_FILE = Path(__file__).parent / "resources" / "calibration.yaml"
CALIBRATION_FILE = "calibration.json"
# The raw score is a probability: kept off 0 and 1 so that its logit is finite.
SCORE_FLOOR = 1e-4


@dataclass(frozen=True)
class DocumentContext:
    """What a fact's features need from its document."""

    organisations: int  # distinct organisations owning the document's facts
    undated: bool  # no publication date in the metadata


def document_context(doc: Document, facts: Sequence[Fact]) -> DocumentContext:
    from caibao.facts import org_key

    orgs = {org_key(f.org.text) for f in facts if f.org}
    return DocumentContext(organisations=len(orgs), undated=not doc.meta.get("date"))


def _logit(p: float) -> float:
    p = min(max(p, SCORE_FLOOR), 1 - SCORE_FLOOR)
    return math.log(p / (1 - p))


def _metric_unmapped(fact: Fact, ctx: DocumentContext) -> float:
    from caibao.metric_ids import map_metric

    return float(map_metric(fact.metric.text).id is None)


FEATURES: dict[str, Callable[[Fact, DocumentContext], float]] = {
    "score_logit": lambda f, c: _logit(f.score if f.score is not None else f.confidence),
    "org_missing": lambda f, c: float(f.org is None),
    "org_inferred": lambda f, c: float(bool(f.org and f.org.inferred)),  # from the document, not the sentence
    "period_missing": lambda f, c: float(f.period is None or f.period.normalized is None),
    "period_inferred": lambda f, c: float(bool(f.period and f.period.inferred)),
    "unit_missing": lambda f, c: float(f.value.unit is None),
    "change": lambda f, c: float(f.value.kind == "change"),
    "document_orgs": lambda f, c: math.log1p(c.organisations),  # roundups name many organisations
    "undated": lambda f, c: float(c.undated),
    "metric_unmapped": _metric_unmapped,
}


@dataclass(frozen=True)
class Settings:
    features: tuple[str, ...]
    regularisation: float
    folds: int


@lru_cache(maxsize=1)
def settings(path: Path = SETTINGS_FILE) -> Settings:
    raw = yaml.safe_load(path.read_text("utf-8"))
    unknown = [f for f in raw["features"] if f not in FEATURES]
    if unknown:
        raise ValueError(f"{path}: unknown feature {unknown[0]!r} (known: {', '.join(FEATURES)})")
    if float(raw["regularisation"]) <= 0 or int(raw["folds"]) < 2:
        raise ValueError(f"{path}: regularisation must be > 0 and folds >= 2")
    return Settings(tuple(raw["features"]), float(raw["regularisation"]), int(raw["folds"]))


def feature_rows(doc: Document, facts: Sequence[Fact], names: Sequence[str]) -> list[list[float]]:
    """One row of the named features per fact of ``doc``."""
    ctx = document_context(doc, facts)
    return [[FEATURES[n](f, ctx) for n in names] for f in facts]


@dataclass(frozen=True)
class Calibrator:
    """A fitted logistic regression on standardised features; ``fit`` says what it was fitted on
    and ``report`` the cross-fitted reliability measured when it was."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    fit: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]:
        out = []
        for row in rows:
            z = self.intercept + sum(w * (x - m) / s for w, x, m, s in zip(self.coef, row, self.mean, self.scale))
            out.append(1 / (1 + math.exp(-z)))
        return out

    def apply(self, doc: Document, facts: list[Fact]) -> list[Fact]:
        """``facts`` of ``doc`` with the calibrated confidence; the raw score moves to ``score``."""
        if not facts:
            return facts
        rows = feature_rows(doc, facts, self.features)
        return [f.model_copy(update={"confidence": round(p, 4), "score": f.score if f.score is not None else f.confidence})
                for f, p in zip(facts, self.probabilities(rows))]

    def fitted_on(self, doc_ids) -> int:
        """How many of ``doc_ids`` the calibrator was fitted on (their reliability is in-sample)."""
        return len(set(self.fit.get("doc_ids", ())) & set(doc_ids))

    def save(self, model_dir: Path | str) -> Path:
        path = Path(model_dir) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path | str) -> "Calibrator | None":
        """The model's calibrator, or None when it has none (confidence stays the raw score)."""
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text("utf-8"))
            cal = cls(tuple(raw["features"]), tuple(raw["mean"]), tuple(raw["scale"]), tuple(raw["coef"]),
                      float(raw["intercept"]), raw.get("fit", {}), raw.get("report", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"not a calibration file ({exc})") from exc
        unknown = [f for f in cal.features if f not in FEATURES]
        if unknown or not len(cal.features) == len(cal.mean) == len(cal.scale) == len(cal.coef):
            raise InputError(path, f"unknown feature {unknown[0]!r}" if unknown else "lengths differ")
        return cal


def fit(rows: Sequence[Sequence[float]], right: Sequence[bool], names: Sequence[str],
        regularisation: float) -> Calibrator:
    """A logistic regression of ``right`` on ``rows`` (scikit-learn), as a :class:`Calibrator`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(rows)
    scale = [float(s) if s > 0 else 1.0 for s in scaler.scale_]  # a constant feature: weight 0 anyway
    model = LogisticRegression(C=regularisation).fit(
        [[(x - m) / s for x, m, s in zip(r, scaler.mean_, scale)] for r in rows], right)
    return Calibrator(tuple(names), tuple(float(m) for m in scaler.mean_), tuple(scale),
                      tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))


def cross_fitted(rows: Sequence[Sequence[float]], right: Sequence[bool], groups: Sequence[int],
                 names: Sequence[str], conf: Settings) -> list[float]:
    """Each fact's probability from a fit on the folds that do not hold its group (organisation)."""
    from sklearn.model_selection import GroupKFold

    out = [0.0] * len(rows)
    for train, test in GroupKFold(n_splits=conf.folds).split(rows, right, groups):
        cal = fit([rows[i] for i in train], [right[i] for i in train], names, conf.regularisation)
        for i, p in zip(test, cal.probabilities([rows[i] for i in test])):
            out[i] = p
    return out


def organisation_groups(fact_gold: dict[str, dict]) -> dict[str, int]:
    """Document id -> group number: documents linked by any organisation owning one of their gold
    facts (names grouped by :func:`caibao.facts.org_key`) share a group."""
    from caibao.facts import org_key

    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for doc_id, row in fact_gold.items():
        for f in row["facts"]:
            if f["org"]:
                parent[root(f"doc:{doc_id}")] = root(f"org:{org_key(f['org'])}")
    roots = {doc_id: root(f"doc:{doc_id}") for doc_id in fact_gold}
    numbers = {r: k for k, r in enumerate(sorted(set(roots.values())))}
    return {doc_id: numbers[r] for doc_id, r in roots.items()}


def calibrate(extractor, docs: Sequence[Document], fact_gold: dict[str, dict], report_ids: set[str],
              conf: Settings | None = None) -> Calibrator:
    """Extract ``docs`` (gold documents; their annotations are not shown to the model), judge each
    fact against ``fact_gold``, fit a calibrator on all of them and report, on the documents of
    ``report_ids``, the raw score's reliability and the cross-fitted confidence's."""
    from caibao.evaluate import confidence_report, judge_document, strip_annotations
    from caibao.facts import build_facts

    conf = conf or settings()
    docs = [d for d in docs if d.id in fact_gold]
    group_of = organisation_groups({d.id: fact_gold[d.id] for d in docs})
    rows: list[list[float]] = []
    scores: list[float] = []  # the raw scores, as build_facts gives them
    right: list[bool] = []
    groups: list[int] = []
    owners: list[str] = []
    for pred in extractor.predict([strip_annotations(d) for d in docs]):
        facts = build_facts(pred.document)
        rows += feature_rows(pred.document, facts, conf.features)
        scores += [f.confidence for f in facts]
        right += judge_document(fact_gold[pred.document.id], facts)[1]
        groups += [group_of[pred.document.id]] * len(facts)
        owners += [pred.document.id] * len(facts)
    if len(set(groups)) < conf.folds:
        raise ValueError(f"{len(set(groups))} groups of organisations: fewer than the {conf.folds} folds")
    held = [i for i, d in enumerate(owners) if d in report_ids]
    n_gold = sum(len(fact_gold[d]["facts"]) for d in report_ids if d in fact_gold)
    oof = cross_fitted(rows, right, groups, conf.features, conf)
    cal = fit(rows, right, conf.features, conf.regularisation)
    report = {"documents": len(set(owners[i] for i in held)), "facts": len(held),
              "cross_fitted": confidence_report([(oof[i], right[i]) for i in held], n_gold),
              "raw_score": confidence_report([(scores[i], right[i]) for i in held], n_gold)}
    fitted = {"documents": len(docs), "facts": len(rows), "right": sum(right), "groups": len(set(groups)),
              "doc_ids": sorted(d.id for d in docs)}
    return dataclasses.replace(cal, fit=fitted, report=report)
