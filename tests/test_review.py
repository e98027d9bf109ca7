"""The review loop against a real Label Studio (session fixture ``label_studio``) and a tiny real model.

Every test works in its own project; the server is started once per session.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from caibao import faults, journal
from caibao.annotations import (
    check_document,
    document_to_json,
    document_to_ls_result,
    labeling_config,
    read_gold,
    validate_paths,
)
from caibao.model import Prediction
from caibao.review import (
    Connection,
    ModelPredictor,
    Retrainer,
    ReviewError,
    annotation_key,
    document_hash,
    document_uncertainty,
    make_ml_server,
    model_version_of,
    order_by_uncertainty,
    prediction_payload,
    pull,
    push,
    ranking_pool,
    select_documents,
    status,
)
from caibao.schema import BIO_TAGS, Document, Entity, Relation

ROOT = Path(__file__).resolve().parents[1]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# --- documents and hand-made annotations -------------------------------------------------------

T1 = "乐信全年促成借款额2138亿元，同比增长21%；营收114亿元。"
T2 = "信也科技2022年净利润21亿元。"
T3 = "奇富科技第四季度营收41亿元。"

# What the reviewer should end up with for T1 (the guide's worked example, first sentence).
T1_ENTS = [("e1", 0, 2, "ORG"), ("e2", 2, 4, "PERIOD"), ("e3", 4, 9, "METRIC"), ("e4", 9, 15, "VALUE"),
           ("e5", 20, 23, "VALUE"), ("e6", 24, 26, "METRIC"), ("e7", 26, 31, "VALUE")]
T1_RELS = [("e1", "e3", "org_metric"), ("e1", "e6", "org_metric"), ("e3", "e4", "metric_value"),
           ("e3", "e5", "metric_change"), ("e6", "e7", "metric_value"), ("e4", "e2", "value_period"),
           ("e5", "e2", "value_period"), ("e7", "e2", "value_period")]
T2_ENTS = [("e1", 0, 4, "ORG"), ("e2", 4, 9, "PERIOD"), ("e3", 9, 12, "METRIC"), ("e4", 12, 16, "VALUE")]
T2_RELS = [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e4", "e2", "value_period")]
T3_ENTS = [("e1", 0, 4, "ORG"), ("e2", 4, 8, "PERIOD"), ("e3", 8, 10, "METRIC"), ("e4", 10, 14, "VALUE")]
T3_RELS = [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e4", "e2", "value_period")]


def make_doc(doc_id, text, ents=(), rels=(), meta=None) -> Document:
    return Document(id=doc_id, text=text, meta=meta if meta is not None else {"date": "2022-03-16"},
                    entities=[Entity(id=i, start=s, end=e, label=lab) for i, s, e, lab in ents],
                    relations=[Relation(head=h, tail=t, label=lab) for h, t, lab in rels])


def bare(doc: Document) -> Document:
    return Document(id=doc.id, text=doc.text, meta=doc.meta)


def as_prediction(doc: Document, p: float = 0.9, entropy: float = 0.1) -> Prediction:
    """A Prediction whose entities are renamed p1..pN (as the model names them)."""
    ids = {e.id: f"p{k + 1}" for k, e in enumerate(doc.entities)}
    ents = [Entity(id=ids[e.id], start=e.start, end=e.end, label=e.label, score=p) for e in doc.entities]
    rels = [Relation(head=ids[r.head], tail=ids[r.tail], label=r.label, score=p) for r in doc.relations]
    pdoc = Document(id=doc.id, text=doc.text, meta=doc.meta, entities=ents, relations=rels)
    return Prediction(pdoc, entropy)


class ScriptedPredictor:
    """Fixed predictions per document id (empty for unknown ones); used where the content must be known."""

    def __init__(self, version: str, preds: dict[str, Prediction]):
        self.model_version = version
        self.preds = preds
        self.calls: list[list[str]] = []

    def predict(self, docs):
        self.calls.append([d.id for d in docs])
        return [self.preds.get(d.id) or Prediction(bare(d), 0.0) for d in docs]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _boot_label_studio_early(request):
    """Start Label Studio (if installed) before anything else, so its ~45 s cold start overlaps the
    unit tests and the tiny model build; the tests that need it wait for it through ``label_studio``
    (all marked slow by it: the fast tier, ``-m "not slow"``, starts no server)."""
    if "not slow" in (request.config.getoption("markexpr") or ""):
        return
    try:
        request.getfixturevalue("label_studio_launch")
    except pytest.skip.Exception:
        pass


@pytest.fixture(scope="module")
def tiny_predictor(tiny_model_dir) -> ModelPredictor:
    return ModelPredictor(tiny_model_dir)


@pytest.fixture
def conn(label_studio) -> Connection:
    url, token = label_studio
    return Connection(url, token)


@pytest.fixture
def client(conn):
    return conn.client()


def task_by_doc(client, project_id: int) -> dict:
    return {t.data["doc_id"]: t for t in client.tasks.list(project=project_id, fields="all")}


# --- unit: uncertainty, ordering, selection, hashing --------------------------------------------------


def test_uncertainty_is_the_least_sure_decision_or_the_tagger_entropy():
    d = make_doc("d", T2, T2_ENTS, T2_RELS)
    sure = as_prediction(d, p=0.95, entropy=0.05)
    pred = as_prediction(d, p=0.95, entropy=0.05)
    pred.document.entity_by_id()["p3"].score = 0.4  # one hesitant span
    assert document_uncertainty(sure) == pytest.approx(0.05)
    assert document_uncertainty(pred) == pytest.approx(0.6)
    next(r for r in pred.document.relations if (r.head, r.tail) == ("p3", "p4")).score = 0.3  # a relation counts too
    assert document_uncertainty(pred) == pytest.approx(0.7)
    # ... and so does one the decoding rules removed (a VALUE keeps only its most probable METRIC)
    pred.overruled.append(Relation(head="p1", tail="p4", label="metric_value", score=0.2))
    assert document_uncertainty(pred) == pytest.approx(0.8)
    pred.overruled.clear()
    # Nothing predicted, but the tagger hesitates everywhere: normalised entropy decides.
    empty = Prediction(bare(d), 0.5 * math.log(len(BIO_TAGS)))
    assert document_uncertainty(empty) == pytest.approx(0.5)
    assert document_uncertainty(Prediction(bare(d), 0.0)) == 0.0
    # ... over the model's own tags: a scheme with one more label has 11, not 9
    wider = Prediction(bare(d), 0.5 * math.log(11), tag_count=11)
    assert document_uncertainty(wider) == pytest.approx(0.5)
    payload = prediction_payload(pred, "v1")
    assert payload["score"] == pytest.approx(0.3) and payload["model_version"] == "v1"
    assert payload["result"] == document_to_ls_result(pred.document)


def test_order_and_selection():
    docs = [make_doc(f"d{i}", T2) for i in range(4)]
    docs[2].meta["duplicate_of"] = "d0"
    preds = [as_prediction(make_doc(d.id, T2, T2_ENTS, T2_RELS), p=p) for d, p in zip(docs, (0.9, 0.5, 0.2, 0.7))]
    assert [p.document.id for p in order_by_uncertainty(preds)] == ["d2", "d1", "d3", "d0"]
    tie = [as_prediction(make_doc(f"t{i}", T2, T2_ENTS), p=0.8) for i in range(3)]
    assert [p.document.id for p in order_by_uncertainty(tie)] == ["t0", "t1", "t2"]  # ties keep corpus order
    chosen, skipped = select_documents(docs + [docs[0]], skip_ids={"d3"})
    assert [d.id for d in chosen] == ["d0", "d1"]
    assert skipped == {"duplicate": 1, "gold_or_reviewed": 1, "repeated_id": 1}
    chosen, _ = select_documents(docs, include_duplicates=True)
    assert [d.id for d in chosen] == ["d0", "d1", "d2", "d3"]


def test_new_documents_join_their_clusters_split_or_train():
    from caibao.review import GoldFolder, GoldEntry, assign_splits

    g = make_doc("g", T2, meta={"cluster": "K"})
    gold = GoldFolder(Path("."), {}, {"g": GoldEntry(Path("x.jsonl"), 0, g)})
    splits = {"train": ["t"], "dev": [], "test": ["g"]}
    new = [make_doc("n1", T2, meta={"cluster": "K"}), make_doc("n2", T3, meta={"cluster": "Z"}),
           make_doc("n3", T3, meta={"duplicate_of": "n2", "cluster": "Z"}), make_doc("t", T1)]
    assert assign_splits(splits, new, gold) == {"n1": "test", "n2": "train", "n3": "train"}
    assert splits == {"train": ["t", "n2", "n3"], "dev": [], "test": ["g", "n1"]}


def test_document_hash_is_about_content():
    a = make_doc("d", T2, T2_ENTS, T2_RELS)
    b = Document.model_validate(json.loads(json.dumps(document_to_json(a))))
    assert document_hash(a) == document_hash(b)
    b.meta["note"] = "edited"
    assert document_hash(a) != document_hash(b)
    assert document_hash(None) is None


def test_credentials_come_from_arguments_or_environment(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ReviewError, match="LABEL_STUDIO_URL"):
        Connection.resolve()
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    with pytest.raises(ReviewError, match="LABEL_STUDIO_API_KEY"):
        Connection.resolve()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "f" * 40)
    c = Connection.resolve()
    assert c.url == "http://127.0.0.1:9" and c.api_key == "f" * 40
    assert "f" * 40 not in repr(c)


# --- push ----------------------------------------------------------------------------------------------


def test_push_twice_with_the_real_model_is_idempotent(conn, client, tiny_predictor, tmp_path):
    title = unique("push")
    docs = [make_doc("a", T1), make_doc("b", T2), make_doc("c", T3),
            make_doc("dup", T3, meta={"duplicate_of": "c"})]
    first = push(conn, title, docs, tiny_predictor, gold_dir=tmp_path / "gold", create=True)
    assert sorted(first.created) == ["a", "b", "c"] and first.skipped["duplicate"] == 1
    version = tiny_predictor.model_version
    assert version == model_version_of(tiny_predictor.path) and version.startswith("caibao-tiny-")
    second = push(conn, title, docs, tiny_predictor, gold_dir=tmp_path / "gold", create=True)
    assert second.created == [] and sorted(second.updated) == ["a", "b", "c"]
    assert second.predictions_replaced == 3

    project_id = first.project_id
    tasks = task_by_doc(client, project_id)
    assert sorted(tasks) == ["a", "b", "c"]  # no duplicate tasks, the duplicate document skipped
    expected = {p.document.id: p for p in tiny_predictor.predict([bare(d) for d in docs[:3]])}
    for doc_id, task in tasks.items():
        assert task.data["base_hash"] is None and task.data["text"] == {"a": T1, "b": T2, "c": T3}[doc_id]
        preds = [p for p in task.predictions if p.model_version == version]
        assert len(preds) == 1  # one prediction per model version, however often we push
        want = prediction_payload(expected[doc_id], version)
        assert preds[0].result == want["result"]  # the model's forward pass travels unchanged
        assert preds[0].score == pytest.approx(want["score"], abs=1e-6)

    # Another model version adds its own prediction next to the first one.
    other = ScriptedPredictor("scripted-v2", {})
    push(conn, title, docs, other, gold_dir=tmp_path / "gold", order="corpus", create=True)
    versions = sorted(p.model_version for p in client.predictions.list(project=project_id))
    assert versions == sorted([version] * 3 + ["scripted-v2"] * 3)


def test_push_limit_takes_the_least_sure_first(conn, client, tmp_path):
    title = unique("order")
    docs = [make_doc("a", T1), make_doc("b", T2), make_doc("c", T3)]
    preds = {"a": as_prediction(make_doc("a", T1, T1_ENTS, T1_RELS), p=0.9),
             "b": as_prediction(make_doc("b", T2, T2_ENTS, T2_RELS), p=0.3),
             "c": as_prediction(make_doc("c", T3, T3_ENTS, T3_RELS), p=0.6)}
    report = push(conn, title, docs, ScriptedPredictor("s1", preds), limit=2, order="uncertainty", create=True)
    assert [d for d, _ in report.order] == ["b", "c"] and report.skipped["over_limit"] == 1
    assert sorted(task_by_doc(client, report.project_id)) == ["b", "c"]
    report = push(conn, title, docs, ScriptedPredictor("s1", preds), limit=1, order="corpus", create=True)
    assert [d for d, _ in report.order] == ["a"]
    tasks = task_by_doc(client, report.project_id)
    assert sorted(tasks) == ["a", "b", "c"]
    assert tasks["a"].predictions[0].score == pytest.approx(0.9)


# --- push -> review -> pull --------------------------------------------------------------------------


def test_review_roundtrip_merges_exactly_the_reviewed_result(conn, client, tmp_path):
    title = unique("roundtrip")
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    (gold_dir / "batch-01.jsonl").write_text(
        json.dumps(document_to_json(make_doc("g", T2, T2_ENTS, T2_RELS)), ensure_ascii=False) + "\n", "utf-8")
    # The model's T1 misses the VALUE 21% (and its relations) and adds a wrong relation 营收 -> 2138亿元.
    wrong = [r for r in T1_RELS if "e5" not in (r[0], r[1])] + [("e6", "e4", "metric_value")]
    pred_doc = make_doc("a", T1, [e for e in T1_ENTS if e[0] != "e5"], wrong)
    predictor = ScriptedPredictor("scripted-v1", {"a": as_prediction(pred_doc)})
    docs = [make_doc("a", T1), make_doc("b", T3), make_doc("c", T3, meta={"n": 3}), make_doc("g", T2)]
    push(conn, title, docs, predictor, gold_dir=gold_dir, create=True)
    tasks = task_by_doc(client, find_id(client, title))
    assert sorted(tasks) == ["a", "b", "c"]  # g is gold already: not pushed by default

    # The reviewer opens task a: deletes the wrong relation, adds the missing span and its two relations.
    result = [dict(r) for r in tasks["a"].predictions[0].result]
    by_text = {r["value"]["text"]: r["id"] for r in result if r["type"] == "labels"}
    result = [r for r in result if not (r["type"] == "relation" and r["from_id"] == by_text["营收"]
                                        and r["to_id"] == by_text["2138亿元"])]
    result += [
        {"id": "rv21", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual",
         "value": {"start": 20, "end": 23, "text": "21%", "labels": ["VALUE"]}},
        {"type": "relation", "from_id": by_text["促成借款额"], "to_id": "rv21", "direction": "right",
         "labels": ["metric_change"]},
        {"type": "relation", "from_id": "rv21", "to_id": by_text["全年"], "direction": "right",
         "labels": ["value_period"]},
    ]
    client.annotations.create(id=tasks["a"].id, result=result)
    client.annotations.create(id=tasks["c"].id, result=[], was_cancelled=True)  # skipped: not gold
    again = push(conn, title, docs, predictor, gold_dir=gold_dir, create=True)  # a reviewed task is left alone
    assert sorted(again.updated) == ["b", "c"] and again.skipped["gold_or_reviewed"] == 2

    gold_before = (gold_dir / "batch-01.jsonl").read_bytes()
    report = pull(conn, title, gold_dir)
    assert report.merged_new == ["a"] and report.conflicts == [] and (report.pending, report.skipped) == (1, 1)
    assert (gold_dir / "batch-01.jsonl").read_bytes() == gold_before
    merged = read_jsonl(gold_dir / "reviewed.jsonl")
    assert [d["id"] for d in merged] == ["a"]
    got = Document.model_validate(merged[0])
    assert annotation_key(got) == annotation_key(make_doc("a", T1, T1_ENTS, T1_RELS))
    assert [e.id for e in got.entities] == [f"e{k}" for k in range(1, 8)]
    ann = got.meta["annotation"]
    assert ann["reviewers"] == ["reviewer@example.com"] and ann["review_passes"] == 1
    assert ann["passes"] == [f"label studio: reviewed by reviewer@example.com (project {title!r}, task {tasks['a'].id})"]
    assert ann["label_studio"]["prediction_model_version"] == "scripted-v1" and ann["reviewed_at"]
    assert got.meta["date"] == "2022-03-16"

    # Pulling again changes nothing.
    before = snapshot(gold_dir)
    again = pull(conn, title, gold_dir)
    assert again.unchanged == ["a"] and again.merged_new == again.merged_replaced == [] and again.files_written == []
    assert snapshot(gold_dir) == before

    # The status compares the model with the reviewers: 6 of 7 spans found, none wrong.
    st = status(conn, title)
    assert (st["tasks"], st["annotated"], st["pending"], st["skipped"]) == (3, 1, 1, 1)
    (row,) = st["agreement"]
    assert row["model_version"] == "scripted-v1" and row["tasks"] == 1
    assert row["precision"] == 1.0 and row["recall"] == pytest.approx(6 / 7, abs=1e-3)

    # A second look at task a (the reviewer removes the 114亿元 fact): merges cleanly as pass 2.
    ann_id = client.tasks.get(id=tasks["a"].id).annotations[0]["id"]
    keep = [r for r in result if r.get("value", {}).get("text") != "114亿元"
            and by_text["114亿元"] not in (r.get("from_id"), r.get("to_id"))
            and not (r["type"] == "relation" and r["from_id"] == by_text["乐信"] and r["to_id"] == by_text["营收"])]
    keep = [r for r in keep if r.get("value", {}).get("text") != "营收"]
    client.annotations.update(id=ann_id, result=keep)
    third = pull(conn, title, gold_dir)
    assert third.merged_replaced == ["a"] and third.conflicts == []
    got = Document.model_validate(read_jsonl(gold_dir / "reviewed.jsonl")[0])
    assert len(got.entities) == 5 and got.meta["annotation"]["review_passes"] == 2
    assert len(got.meta["annotation"]["passes"]) == 2


def find_project_or_none(client, title: str):
    return next((p for p in client.projects.list(title=title) if p.title == title), None)


def find_id(client, title: str) -> int:
    return next(p.id for p in client.projects.list(title=title) if p.title == title)


def test_local_edit_after_push_is_a_conflict(conn, client, tmp_path):
    from typer.testing import CliRunner

    from caibao.cli import app

    title = unique("conflict")
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    gold_g = make_doc("g", T2, T2_ENTS, T2_RELS, meta={"annotation": {"annotator": "batch-01", "review_passes": 1}})
    gold_file = gold_dir / "batch-01.jsonl"
    gold_file.write_text(json.dumps(document_to_json(gold_g), ensure_ascii=False) + "\n", "utf-8")
    preds = {"g": as_prediction(make_doc("g", T2, T2_ENTS, T2_RELS)),
             "b": as_prediction(make_doc("b", T3, T3_ENTS, T3_RELS))}
    report = push(conn, title, [make_doc("g", T2), make_doc("b", T3)], ScriptedPredictor("s1", preds),
                  gold_dir=gold_dir, include_gold=True, create=True)
    tasks = task_by_doc(client, report.project_id)
    assert tasks["g"].data["base_hash"] == document_hash(gold_g) and tasks["b"].data["base_hash"] is None

    # Someone fixes g locally after the push (drops the ORG) ...
    edited = make_doc("g", T2, T2_ENTS[1:], T2_RELS[1:], meta=gold_g.meta)
    gold_file.write_text(json.dumps(document_to_json(edited), ensure_ascii=False) + "\n", "utf-8")
    edited_bytes = gold_file.read_bytes()
    # ... while the reviewer accepts the predictions of both tasks.
    for doc_id in ("g", "b"):
        client.annotations.create(id=tasks[doc_id].id, result=tasks[doc_id].predictions[0].result)

    env = {"LABEL_STUDIO_URL": conn.url, "LABEL_STUDIO_API_KEY": conn.api_key}
    res = CliRunner().invoke(app, ["review", "pull", "--project", title, "--out", str(gold_dir)], env=env)
    assert res.exit_code == 1, res.output
    assert "conflict" in res.output and "g" in res.output and "local-edit" in res.output
    assert conn.api_key not in res.output
    assert gold_file.read_bytes() == edited_bytes  # the local version is kept
    assert [d["id"] for d in read_jsonl(gold_dir / "reviewed.jsonl")] == ["b"]  # the rest is merged


def test_reviewers_who_disagree_are_a_conflict(conn, client, tmp_path):
    title = unique("disagree")
    preds = {"b": as_prediction(make_doc("b", T3, T3_ENTS, T3_RELS))}
    report = push(conn, title, [make_doc("b", T3)], ScriptedPredictor("s1", preds), create=True)
    task = task_by_doc(client, report.project_id)["b"]
    full = task.predictions[0].result
    client.annotations.create(id=task.id, result=full)
    no_period = [r for r in full if r.get("value", {}).get("labels") != ["PERIOD"] and r["type"] == "labels"]
    no_period += [r for r in full if r["type"] == "relation" and r["labels"] != ["value_period"]]
    client.annotations.create(id=task.id, result=no_period)
    out = pull(conn, title, tmp_path / "gold")
    assert [(c.doc_id, c.kind) for c in out.conflicts] == [("b", "reviewers-disagree")]
    assert out.files_written == [] and not (tmp_path / "gold" / "reviewed.jsonl").exists()


# --- pull failures leave the gold set untouched -------------------------------------------------------


def _gold_with_two_files(gold_dir: Path) -> None:
    gold_dir.mkdir()
    for name, doc in (("batch-01.jsonl", make_doc("g", T2, T2_ENTS, T2_RELS)),
                      ("batch-02.jsonl", make_doc("h", T3, T3_ENTS, T3_RELS))):
        (gold_dir / name).write_text(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n", "utf-8")


def test_pull_aborts_on_broken_export_or_unknown_label(conn, client, tmp_path, monkeypatch):
    import caibao.review as review

    title = unique("broken")
    gold_dir = tmp_path / "gold"
    _gold_with_two_files(gold_dir)
    preds = {d: as_prediction(make_doc(d, T, E, R)) for d, T, E, R in
             (("g", T2, T2_ENTS, T2_RELS), ("h", T3, T3_ENTS, T3_RELS))}
    report = push(conn, title, [make_doc("g", T2), make_doc("h", T3), make_doc("n", T1)],
                  ScriptedPredictor("s1", preds), gold_dir=gold_dir, include_gold=True, create=True)
    tasks = task_by_doc(client, report.project_id)
    for doc_id in ("g", "h"):
        client.annotations.create(id=tasks[doc_id].id, result=tasks[doc_id].predictions[0].result)
    # An unknown label on task n, made through the real API.
    client.annotations.create(id=tasks["n"].id, result=[
        {"id": "x1", "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 0, "end": 2, "text": "乐信", "labels": ["BANANA"]}}])
    before = snapshot(gold_dir)

    with pytest.raises(ReviewError) as err:
        pull(conn, title, gold_dir)
    msg = str(err.value)
    assert "BANANA" in msg and f"task {tasks['n'].id}" in msg and "document n" in msg and "nothing was written" in msg
    assert snapshot(gold_dir) == before

    real_export = review.export_tasks
    broken = [
        {"detail": "not a list"},
        [{"id": 7, "data": {"text": T1}, "annotations": []}],  # no doc_id
        [{"id": 8, "data": {"text": T1, "doc_id": "a"}, "annotations": [{"id": 1, "result": "oops"}]}],
        [{"id": 9, "data": {"text": T1, "doc_id": "a"}, "annotations": [
            {"id": 2, "result": [{"id": "q", "type": "labels", "value": {"labels": ["ORG"]}}]}]}],  # no offsets
        [{"id": 10, "data": {"text": T1, "doc_id": "a"}, "annotations": [
            {"id": 3, "result": [{"id": "q", "type": "labels", "value": {"start": 0, "end": 3, "text": "乐信",
                                                                         "labels": ["ORG"]}}]}]}],  # text mismatch
    ]
    for bad in broken:
        monkeypatch.setattr(review.pulling, "export_tasks", lambda *a, bad=bad, **k: bad)
        with pytest.raises(ReviewError, match="malformed|task (8|9|10)"):
            pull(conn, title, gold_dir)
        assert snapshot(gold_dir) == before
    monkeypatch.setattr(review.pulling, "export_tasks", real_export)

    # The CLI says the same, exits 2, and never shows the key.
    from typer.testing import CliRunner

    from caibao.cli import app

    env = {"LABEL_STUDIO_URL": conn.url, "LABEL_STUDIO_API_KEY": conn.api_key}
    res = CliRunner().invoke(app, ["review", "pull", "--project", title, "--out", str(gold_dir)], env=env)
    assert res.exit_code == 2 and "BANANA" in res.output and conn.api_key not in res.output
    assert snapshot(gold_dir) == before

    # Fix task n; then make the write of the second target file fail: still nothing changes on disk.
    ann_id = client.tasks.get(id=tasks["n"].id).annotations[0]["id"]
    client.annotations.delete(id=ann_id)
    calls = []

    import caibao.journal as journal

    def failing_write(path, text, _real=journal._stage):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return _real(path, text)

    monkeypatch.setattr(journal, "_stage", failing_write)
    with pytest.raises(OSError, match="disk full"):
        pull(conn, title, gold_dir)
    assert len(calls) == 2 and snapshot(gold_dir) == before  # no partial file, no temp file left
    monkeypatch.undo()
    ok = pull(conn, title, gold_dir)
    assert sorted(ok.merged_replaced) == ["g", "h"] and len(ok.files_written) == 2


# --- crash safety and things that must never get stuck -------------------------------------------------

# Every point where a real kill (os._exit, as kill -9) can stop a pull: before its commit point
# (decided, staged) the old state stays; after it (committed, between renames, between the Label
# Studio updates) the journal lets the next reader finish the files and the next pull the rest.
PULL_KILL_POINTS = {"pull:decided": "old", "journal:staged": "old", "journal:committed": "new",
                    "journal:renamed#1": "new", "journal:renamed#2": "new", "pull:base-sent#1": "new"}


def _reviewed_project(conn, client, tmp_path: Path, title: str):
    """A gold folder with g and its splits beside it; a project where g (changed), a and b are reviewed."""
    root = tmp_path / "annotations"
    gold_dir = root / "gold"
    gold_dir.mkdir(parents=True)
    g = make_doc("g", T2, T2_ENTS, T2_RELS)
    (gold_dir / "batch-01.jsonl").write_text(json.dumps(document_to_json(g), ensure_ascii=False) + "\n", "utf-8")
    splits = root / "splits.json"
    splits.write_text(json.dumps({"train": ["g"], "dev": [], "test": []}), "utf-8")
    preds = {"g": as_prediction(make_doc("g", T2, T2_ENTS[1:], T2_RELS[1:])),  # the reviewer drops the ORG
             "a": as_prediction(make_doc("a", T1, T1_ENTS, T1_RELS)),
             "b": as_prediction(make_doc("b", T3, T3_ENTS, T3_RELS))}
    report = push(conn, title, [make_doc("g", T2), make_doc("a", T1), make_doc("b", T3)],
                  ScriptedPredictor("s1", preds), gold_dir=gold_dir, include_gold=True, create=True)
    tasks = task_by_doc(client, report.project_id)
    for task in tasks.values():
        client.annotations.create(id=task.id, result=task.predictions[0].result)
    return gold_dir, splits, tasks


def _cli(conn, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """``caibao ARGS`` in a child process (a kill must not take pytest with it)."""
    env = {k: v for k, v in os.environ.items() if k != faults.KILL_ENV}
    env.update({"LABEL_STUDIO_URL": conn.url, "LABEL_STUDIO_API_KEY": conn.api_key})
    if kill_at:
        env[faults.KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-c", "from caibao.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(journal.TEMP_PREFIX)]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", list(PULL_KILL_POINTS))
def test_a_pull_killed_at_any_step_is_finished_by_the_next(conn, client, tmp_path, kill_at):
    title = unique("kill")
    gold_dir, splits, tasks = _reviewed_project(conn, client, tmp_path, title)
    root = gold_dir.parent
    before = snapshot(root)
    res = _cli(conn, "review", "pull", "--project", title, "--out", str(gold_dir), kill_at=kill_at)
    assert res.returncode == faults.KILLED_EXIT_CODE, res.stderr

    if PULL_KILL_POINTS[kill_at] == "old":
        assert {k: v for k, v in snapshot(root).items() if journal.TEMP_PREFIX not in k} == before
        assert not (gold_dir / journal.JOURNAL_NAME).exists()
    # Whoever reads the gold folder next sees one whole state, never half of one.
    ids = sorted(d.id for d in read_gold(gold_dir))
    split_train = json.loads(splits.read_text("utf-8"))["train"]
    if PULL_KILL_POINTS[kill_at] == "old":
        assert ids == ["g"] and split_train == ["g"]
    else:
        assert ids == ["a", "b", "g"] and sorted(split_train) == ["a", "b", "g"]

    report = pull(conn, title, gold_dir, splits_path=splits)
    assert report.conflicts == [] and report.warnings == []
    assert _temps(root) == [] and not (gold_dir / journal.JOURNAL_NAME).exists()
    gold = {d.id: d for d in read_gold(gold_dir)}
    assert sorted(gold) == ["a", "b", "g"] and not any(e.label == "ORG" for e in gold["g"].entities)
    for doc_id, task in tasks.items():
        assert client.tasks.get(id=task.id).data["base_hash"] == document_hash(gold[doc_id])
    again = pull(conn, title, gold_dir, splits_path=splits)
    assert sorted(again.unchanged) == ["a", "b", "g"] and again.files_written == [] and again.bases_updated == 0


def test_concurrent_pushes_make_one_task_per_document(conn, client):
    title = unique("race")
    docs = [make_doc(f"d{k}", T1) for k in range(6)]

    class SlowPredictor(ScriptedPredictor):
        def predict(self, docs):
            time.sleep(0.5)  # both pushes have listed the (no) tasks before either imports
            return super().predict(docs)

    errors: list[BaseException] = []

    def run():
        try:
            push(conn, title, docs, SlowPredictor("s1", {}), create=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    tasks = list(client.tasks.list(project=find_id(client, title), fields="task_only"))
    assert sorted(t.data["doc_id"] for t in tasks) == [d.id for d in docs]

    # Pushes from two machines are not serialised by the lock: the next push removes the extra task.
    pid = find_id(client, title)
    client.projects.import_tasks(pid, request=[{"data": {"text": T1, "doc_id": "d0", "meta": {}, "base_hash": None}}])
    report = push(conn, title, docs, SlowPredictor("s1", {}))
    assert report.duplicates_removed == 1 and report.created == []
    assert len([t for t in client.tasks.list(project=pid, fields="task_only") if t.data["doc_id"] == "d0"]) == 1


def test_an_empty_review_is_merged_as_a_document_without_facts(conn, client, tmp_path):
    title = unique("empty")
    text = "据悉，该公司将于下周召开董事会。"
    report = push(conn, title, [make_doc("quiet", text), make_doc("b", T3)], ScriptedPredictor("s1", {}), create=True)
    tasks = task_by_doc(client, report.project_id)
    client.annotations.create(id=tasks["quiet"].id, result=[])  # submitted with nothing marked
    out = pull(conn, title, tmp_path / "gold")
    assert out.merged_new == ["quiet"] and out.empty == ["quiet"] and (out.pending, out.skipped) == (1, 0)
    (merged,) = read_jsonl(tmp_path / "gold" / "reviewed.jsonl")
    assert merged["entities"] == [] and merged["relations"] == [] and merged["text"] == text
    assert validate_paths([tmp_path / "gold"]) == (1, [])
    assert pull(conn, title, tmp_path / "gold").unchanged == ["quiet"]  # not stuck, not merged twice


def test_a_stale_base_hash_is_repaired_and_a_real_local_edit_can_be_overridden(conn, client, tmp_path):
    title = unique("stale")
    gold_dir = tmp_path / "gold"
    preds = {"b": as_prediction(make_doc("b", T3, T3_ENTS, T3_RELS))}
    report = push(conn, title, [make_doc("b", T3)], ScriptedPredictor("s1", preds), create=True)
    task = task_by_doc(client, report.project_id)["b"]
    client.annotations.create(id=task.id, result=task.predictions[0].result)
    # A pull that merged but never told Label Studio (what a kill before the update used to leave).
    first = pull(conn, title, gold_dir, update_base=False)
    assert first.merged_new == ["b"] and client.tasks.get(id=task.id).data["base_hash"] is None
    # The reviewer edits the annotation: the gold line is still exactly the first merge, so no conflict.
    ann = client.tasks.get(id=task.id).annotations[0]
    no_period = [r for r in ann["result"] if r.get("value", {}).get("labels") != ["PERIOD"]
                 and r.get("labels") != ["value_period"]]
    client.annotations.update(id=ann["id"], result=no_period)
    second = pull(conn, title, gold_dir)
    assert second.conflicts == [] and second.merged_replaced == ["b"]
    merged = Document.model_validate(read_jsonl(gold_dir / "reviewed.jsonl")[0])
    assert client.tasks.get(id=task.id).data["base_hash"] == document_hash(merged)

    # A real local edit, then another review: a conflict, until --take-review says which wins.
    line = read_jsonl(gold_dir / "reviewed.jsonl")[0]
    line["meta"]["note"] = "checked by hand"
    line["entities"] = [e for e in line["entities"] if e["label"] != "ORG"]
    org_ids = {e.id for e in merged.entities if e.label == "ORG"}
    line["relations"] = [r for r in line["relations"] if r["head"] not in org_ids]
    (gold_dir / "reviewed.jsonl").write_text(json.dumps(line, ensure_ascii=False) + "\n", "utf-8")
    client.annotations.update(id=ann["id"], result=ann["result"])
    res = _cli(conn, "review", "pull", "--project", title, "--out", str(gold_dir))
    assert res.returncode == 1 and "local-edit" in res.stderr and "--take-review b" in res.stderr
    res = _cli(conn, "review", "pull", "--project", title, "--out", str(gold_dir), "--take-review", "b")
    assert res.returncode == 0, res.stderr
    got = Document.model_validate(read_jsonl(gold_dir / "reviewed.jsonl")[0])
    assert annotation_key(got) == annotation_key(make_doc("b", T3, T3_ENTS, T3_RELS))
    assert got.meta["note"] == "checked by hand"  # the local meta is kept; the annotation is the review's


def test_messages_keep_bracketed_text(conn, client, tmp_path):
    res = _cli(conn, "review", "pull", "--project", "[/x] [bold]q", "--out", str(tmp_path / "gold"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no Label Studio project named '[/x] [bold]q'" in res.stderr

    title = unique("[algorithm]")
    report = push(conn, title, [make_doc("b", T3)], ScriptedPredictor("s1", {}), create=True)
    task = task_by_doc(client, report.project_id)["b"]
    only_metric = [{"id": "m1", "from_name": "label", "to_name": "text", "type": "labels",
                    "value": {"start": 8, "end": 10, "text": "营收", "labels": ["METRIC"]}}]
    client.annotations.create(id=task.id, result=only_metric)
    res = _cli(conn, "review", "pull", "--project", title, "--out", str(tmp_path / "gold"))
    assert res.returncode == 2, res.stderr
    assert "[metric-without-value]" in res.stderr and f"project '{title}'" in res.stderr


def test_pre_annotations_accepted_unchanged_pass_the_pull(conn, client, tiny_predictor, tmp_path):
    title = unique("accept")
    # What the model may say: a relation across two sentences and a METRIC without a value.
    text = "乐信全年营收114亿元。净利润同比增长。"
    raw = make_doc("x", text, [("e1", 0, 2, "ORG"), ("e2", 2, 4, "PERIOD"), ("e3", 4, 6, "METRIC"),
                               ("e4", 6, 11, "VALUE"), ("e5", 12, 15, "METRIC")],
                   [("e1", "e3", "org_metric"), ("e3", "e4", "metric_value"), ("e4", "e2", "value_period"),
                    ("e1", "e5", "org_metric")])
    assert {p.code for p in check_document(raw)} >= {"cross-sentence", "metric-without-value"}
    gold = [Document.model_validate(o) for o in read_jsonl(ROOT / "annotations" / "gold" / "batch-01.jsonl")[:3]]
    docs = [make_doc("x", text)] + [bare(d) for d in gold]
    scripted = ScriptedPredictor("s1", {"x": as_prediction(raw)})
    push(conn, title, docs[:1], scripted, create=True)
    push(conn, title, docs[1:], tiny_predictor)  # the real (tiny, barely trained) model
    for task in task_by_doc(client, find_id(client, title)).values():
        (pred,) = task.predictions
        client.annotations.create(id=task.id, result=pred.result)
    report = pull(conn, title, tmp_path / "gold")
    assert sorted(report.merged_new) == sorted(d.id for d in docs)
    x = next(d for d in read_gold(tmp_path / "gold") if d.id == "x")
    assert [(e.label, text[e.start:e.end]) for e in x.entities] == [
        ("ORG", "乐信"), ("PERIOD", "全年"), ("METRIC", "营收"), ("VALUE", "114亿元")]


def test_pull_keeps_file_modes_and_removes_stale_temps(conn, client, tmp_path):
    title = unique("modes")
    gold_dir, splits, _ = _reviewed_project(conn, client, tmp_path, title)
    (gold_dir / "batch-01.jsonl").chmod(0o640)
    splits.chmod(0o664)
    stale = gold_dir / f"{journal.TEMP_PREFIX}reviewed.jsonl.abc123"
    stale.write_text("half a line", "utf-8")
    pull(conn, title, gold_dir, splits_path=splits)
    assert (gold_dir / "batch-01.jsonl").stat().st_mode & 0o777 == 0o640
    assert splits.stat().st_mode & 0o777 == 0o664
    assert not stale.exists() and _temps(gold_dir.parent) == []


def test_uncertainty_ranks_a_sample_when_the_limit_is_small(conn, client):
    candidates = [make_doc(f"d{k:02d}", T3) for k in range(40)]
    pool = ranking_pool(candidates, limit=3, pool=None)
    assert len(pool) == 12 and pool == sorted(pool, key=lambda d: d.id)  # 4 per pushed document, corpus order
    assert ranking_pool(candidates, limit=3, pool=None) == pool  # the same candidates, the same sample
    assert ranking_pool(candidates, limit=3, pool=0) == candidates and ranking_pool(candidates, None, None) == candidates
    title = unique("pool")
    predictor = ScriptedPredictor("s1", {})
    report = push(conn, title, candidates, predictor, limit=2, pool=5, create=True)
    assert [len(c) for c in predictor.calls] == [5] and (report.ranked, report.candidates) == (5, 40)
    assert len(report.created) == 2 and report.skipped["over_limit"] == 38


# --- secrets --------------------------------------------------------------------------------------------


def test_api_key_never_appears_in_errors(conn, label_studio):
    from typer.testing import CliRunner

    from caibao.cli import app

    wrong = "0badc0de" * 5
    with pytest.raises(ReviewError) as err:
        status(Connection(conn.url, wrong), "anything")
    assert "401" in str(err.value) and wrong not in str(err.value)

    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ReviewError) as err:
        status(Connection(closed, conn.api_key), "anything")
    assert "cannot connect" in str(err.value) and conn.api_key not in str(err.value)

    # Even a URL that (wrongly) contains the key is masked.
    res = CliRunner().invoke(app, ["review", "status", "--project", "x", "--url", f"{closed}/{conn.api_key}"],
                             env={"LABEL_STUDIO_API_KEY": conn.api_key, "LABEL_STUDIO_URL": ""})
    assert res.exit_code == 2 and conn.api_key not in res.output and "***" in res.output


# --- the CLI, end to end -----------------------------------------------------------------------------


def test_cli_push_status_pull(conn, client, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from caibao.cli import app

    title = unique("cli")
    docs_file = tmp_path / "documents.jsonl"
    docs = (make_doc("a", T1), make_doc("b", T2, meta={"cluster": "K"}), make_doc("g0", T3, meta={"cluster": "K"}))
    docs_file.write_text("".join(json.dumps(document_to_json(d), ensure_ascii=False) + "\n" for d in docs), "utf-8")
    # A gold folder with its fixed splits beside it, as in the repository (annotations/gold, annotations/splits.json).
    gold_dir = tmp_path / "annotations" / "gold"
    gold_dir.mkdir(parents=True)
    g0 = make_doc("g0", T3, T3_ENTS, T3_RELS, meta={"cluster": "K"})
    (gold_dir / "batch-01.jsonl").write_text(json.dumps(document_to_json(g0), ensure_ascii=False) + "\n", "utf-8")
    splits_file = tmp_path / "annotations" / "splits.json"
    splits_file.write_text(json.dumps({"train": [], "dev": [], "test": ["g0"]}), "utf-8")
    env = {"LABEL_STUDIO_URL": conn.url, "LABEL_STUDIO_API_KEY": conn.api_key}
    runner = CliRunner()
    res = runner.invoke(app, ["review", "push", "--project", title, "--docs", str(docs_file), "--model",
                              str(tiny_model_dir), "--gold", str(gold_dir), "--limit", "1"], env=env)
    assert res.exit_code == 2 and f"no Label Studio project named {title!r}" in res.output and "--create" in res.output
    assert find_project_or_none(client, title) is None  # a typo never creates a project
    res = runner.invoke(app, ["review", "push", "--project", title, "--docs", str(docs_file), "--model",
                              str(tiny_model_dir), "--gold", str(gold_dir), "--limit", "1", "--create"], env=env)
    assert res.exit_code == 0, res.output
    assert "1 created" in res.output and model_version_of(tiny_model_dir) in res.output
    res = runner.invoke(app, ["review", "push", "--project", title, "--docs", str(docs_file), "--model",
                              str(tiny_model_dir), "--gold", str(gold_dir), "--order", "corpus"], env=env)
    assert res.exit_code == 0, res.output
    tasks = task_by_doc(client, find_id(client, title))
    assert sorted(tasks) == ["a", "b"]
    client.annotations.create(id=tasks["b"].id, result=document_to_ls_result(make_doc("b", T2, T2_ENTS, T2_RELS)))
    res = runner.invoke(app, ["review", "status", "--project", title, "--json"], env=env)
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)
    assert (st["tasks"], st["annotated"], st["pending"]) == (2, 1, 1)
    assert [r["model_version"] for r in st["agreement"]] == [model_version_of(tiny_model_dir)]
    assert conn.api_key not in res.output
    res = runner.invoke(app, ["review", "status", "--project", title], env=env)
    assert res.exit_code == 0 and "annotated" in res.output
    res = runner.invoke(app, ["review", "pull", "--project", title, "--out", str(gold_dir)], env=env)
    assert res.exit_code == 0, res.output
    assert [d["id"] for d in read_jsonl(gold_dir / "reviewed.jsonl")] == ["b"]
    # b is a near-duplicate (cluster K) of the test document g0: it joins test, never train.
    assert json.loads(splits_file.read_text("utf-8")) == {"train": [], "dev": [], "test": ["g0", "b"]}


# --- the ML backend ---------------------------------------------------------------------------------------


def _post(url: str, obj: dict, timeout: float = 10) -> dict:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    with NO_PROXY.open(req, timeout=timeout) as r:
        return json.loads(r.read())


def _fake_retrain(tmp_path: Path, seconds: float) -> list[str]:
    marker = tmp_path / "retrain.log"
    code = ("import pathlib, sys, time; time.sleep(float(sys.argv[1])); "
            "p = pathlib.Path(sys.argv[2]); p.write_text(p.read_text() + ' '.join(sys.argv[3:]) + '\\n' "
            "if p.exists() else ' '.join(sys.argv[3:]) + '\\n')")
    return [sys.executable, "-c", code, str(seconds), str(marker), "train", "--config", "configs/tiny.yaml"]


def test_label_studio_gets_predictions_from_serve_ml(conn, client, tiny_predictor, tmp_path):
    retrainer = Retrainer(_fake_retrain(tmp_path, 3.0))
    server = make_ml_server(tiny_predictor, "127.0.0.1", 0, retrainer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        project = client.projects.create(title=unique("ml"), label_config=labeling_config())
        imported = client.projects.import_tasks(project.id, request=[
            {"data": {"text": T1, "doc_id": "a"}}, {"data": {"text": T2, "doc_id": "b"}}], return_task_ids=True)
        backend = client.ml.create(project=project.id, url=server.url, title="caibao")
        assert backend.state == "CO"  # connected: /health and /setup answered
        client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                              selected_items={"all": True, "excluded": []})
        preds = client.predictions.list(project=project.id)
        version = tiny_predictor.model_version
        assert sorted(p.task for p in preds) == sorted(imported.task_ids)
        assert {p.model_version for p in preds} == {version}
        expected = {p.document.id: prediction_payload(p, version)
                    for p in tiny_predictor.predict([make_doc("a", T1), make_doc("b", T2)])}
        by_task = {t.id: t.data["doc_id"] for t in client.tasks.list(project=project.id)}
        for p in preds:
            assert p.result == expected[by_task[p.task]]["result"]
            assert p.score == pytest.approx(expected[by_task[p.task]]["score"], abs=1e-6)

        # Label Studio posts ANNOTATION_CREATED to /webhook (ml.create registered it): the retrain
        # job starts in the background and the annotation request does not wait for it (3 s).
        client.annotations.create(id=imported.task_ids[0], result=[])
        assert server.backend.events[-1] == {"status": "queued", "action": "ANNOTATION_CREATED"}
        assert retrainer.busy  # still running after Label Studio got its answer
        assert retrainer.wait_idle(30)
        assert [r["returncode"] for r in retrainer.runs] == [0]
        assert (tmp_path / "retrain.log").read_text() == "train --config configs/tiny.yaml\n"
    finally:
        server.shutdown()
        server.server_close()


def test_review_connect_registers_serve_ml_once(conn, client, tiny_predictor):
    server = make_ml_server(tiny_predictor, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        title = unique("connect")
        push(conn, title, [make_doc("a", T1)], ScriptedPredictor("s1", {}), create=True)
        first = _cli(conn, "review", "connect", "--project", title, "--backend", server.url)
        assert first.returncode == 0 and "connected" in first.stderr, first.stderr
        again = _cli(conn, "review", "connect", "--project", title, "--backend", server.url + "/")
        assert again.returncode == 0 and "already connected" in again.stderr, again.stderr
        (backend,) = client.ml.list(project=find_id(client, title))
        assert backend.url.rstrip("/") == server.url and backend.state == "CO"
    finally:
        server.shutdown()
        server.server_close()
    dead = _cli(conn, "review", "connect", "--project", title, "--backend", f"http://127.0.0.1:{free_port()}")
    assert dead.returncode == 2 and "Traceback" not in dead.stderr and "error:" in dead.stderr


@pytest.mark.slow  # starts the ML backend server
def test_webhook_enqueues_without_blocking_and_coalesces(tiny_predictor, tmp_path):
    reloaded = []
    retrainer = Retrainer(_fake_retrain(tmp_path, 2.5), on_success=lambda: reloaded.append(1))
    server = make_ml_server(tiny_predictor, "127.0.0.1", 0, retrainer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    off = make_ml_server(tiny_predictor, "127.0.0.1", 0, None)
    threading.Thread(target=off.serve_forever, daemon=True).start()
    try:
        with NO_PROXY.open(server.url + "/health", timeout=5) as r:
            assert json.loads(r.read())["status"] == "UP"
        assert _post(server.url + "/setup", {"project": "1.1", "access_token": "secret"}) == \
            {"model_version": tiny_predictor.model_version}
        got = _post(server.url + "/predict", {"tasks": [{"id": 1, "data": {"text": T2}}, {"id": 2, "data": {}}]})
        assert len(got["results"]) == 2 and got["results"][1] == {
            "result": [], "score": 0.0, "model_version": tiny_predictor.model_version}
        t0 = time.monotonic()
        answers = [_post(server.url + "/webhook", {"action": a, "project": {"id": 1}})["status"]
                   for a in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_UPDATED", "TASKS_CREATED")]
        assert time.monotonic() - t0 < 2.0  # all answered while the first run still sleeps (2.5 s)
        assert answers == ["queued", "queued", "coalesced", "ignored"]
        assert retrainer.wait_idle(30)
        assert len(retrainer.runs) == 2 and all(r["returncode"] == 0 for r in retrainer.runs)
        assert retrainer.runs[1]["reasons"] == ["ANNOTATION_UPDATED", "ANNOTATION_UPDATED"]
        assert reloaded == [1, 1]
        assert _post(off.url + "/webhook", {"action": "ANNOTATION_CREATED"})["status"] == "ignored"
    finally:
        for s in (server, off):
            s.shutdown()
            s.server_close()


@pytest.mark.slow  # starts the ML backend server
def test_serve_ml_command(tiny_model_dir, tmp_path):
    """`caibao serve-ml` as a user starts it: a separate process answering on loopback."""
    import os
    import signal
    import subprocess

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from caibao.cli import main; main()", "serve-ml", "--model",
                             str(tiny_model_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"),
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with NO_PROXY.open(url + "/health", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "serve-ml did not come up"
                time.sleep(0.5)
        assert health["model_version"] == model_version_of(tiny_model_dir)
        got = _post(url + "/predict", {"tasks": [{"id": 5, "data": {"text": T3, "doc_id": "c"}}]})
        assert len(got["results"]) == 1 and got["results"][0]["model_version"] == health["model_version"]
        assert _post(url + "/webhook", {"action": "ANNOTATION_CREATED"})["status"] == "ignored"  # retraining off
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
