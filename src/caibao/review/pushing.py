"""``caibao review push``: documents as tasks with the model's pre-annotations, ordered by uncertainty."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from caibao.annotations import LS_TEXT_NAME
from caibao.review.connection import Connection, ReviewError, held, ls_call, project_lock
from caibao.review.predictions import Predictor, document_uncertainty, prediction_payload
from caibao.review.records import GoldFolder, task_doc_id, document_hash, list_tasks, open_project
from caibao.schema import Document

# --order uncertainty --limit N ranks a random sample of this many candidates per pushed
# document (--pool overrides): enough to find the least sure ones without predicting all.
POOL_PER_PUSHED = 4


@dataclass
class PushReport:
    project: str
    project_id: int
    model_version: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    predictions_replaced: int = 0
    order: list[tuple[str, float]] = field(default_factory=list)  # (doc id, uncertainty), push order
    ranked: int = 0  # candidates the model predicted to choose the pushed ones
    candidates: int = 0
    duplicates_removed: int = 0


def select_documents(docs: Sequence[Document], *, skip_ids: Iterable[str] = (), include_duplicates: bool = False,
                     ) -> tuple[list[Document], dict[str, int]]:
    """Candidates for review in corpus order, and counts of what was left out and why."""
    skip_ids = set(skip_ids)
    skipped = {"duplicate": 0, "gold_or_reviewed": 0, "repeated_id": 0}
    seen: set[str] = set()
    out = []
    for d in docs:
        if d.id in seen:
            skipped["repeated_id"] += 1
            continue
        seen.add(d.id)
        if not include_duplicates and d.meta.get("duplicate_of"):
            skipped["duplicate"] += 1
            continue
        if d.id in skip_ids:
            skipped["gold_or_reviewed"] += 1
            continue
        out.append(d)
    return out, skipped


def order_by_uncertainty(preds: list) -> list:
    """Predictions sorted least sure first (ties keep corpus order)."""
    return [p for _, p in sorted(enumerate(preds), key=lambda kp: (-document_uncertainty(kp[1]), kp[0]))]


def ranking_pool(candidates: list[Document], limit: int | None, pool: int | None) -> list[Document]:
    """The candidates the model ranks for ``--order uncertainty``: all, or a sample when ``--limit`` is small.

    With a limit, ``pool`` candidates (default :data:`POOL_PER_PUSHED` x
    ``limit``; 0: all) drawn at random, seeded by the candidates' ids, so a
    push of 30 out of thousands predicts a few hundred documents instead of
    every one; the rest wait for a later push. Corpus order is kept.
    """
    if limit is None or pool == 0:
        return candidates
    size = max(limit, pool if pool is not None else POOL_PER_PUSHED * limit)
    if len(candidates) <= size:
        return candidates
    rng = random.Random("|".join(d.id for d in candidates))
    chosen = set(rng.sample(range(len(candidates)), size))
    return [d for k, d in enumerate(candidates) if k in chosen]


def push(conn: Connection, project_title: str, docs: Sequence[Document], predictor: Predictor, *,
         gold_dir: Path | str | None = None, limit: int | None = None, order: str = "uncertainty",
         include_duplicates: bool = False, include_gold: bool = False, client=None,
         batch: int = 100, create: bool = False, pool: int | None = None) -> PushReport:
    """Create/update the project's tasks for ``docs`` with the predictor's pre-annotations.

    Runs under the project's lock, and removes unreviewed duplicate tasks
    afterwards (pushes from two machines at once), so a document never has
    two tasks for long.
    """
    if order not in ("uncertainty", "corpus"):
        raise ReviewError(f"unknown order {order!r} (uncertainty or corpus)")
    if (limit is not None and limit < 0) or (pool is not None and pool < 0):
        raise ReviewError("--limit and --pool must be >= 0")
    gold = GoldFolder.load(gold_dir) if gold_dir else GoldFolder(Path("."), {}, {})
    client = client or conn.client()
    with held(project_lock(conn, project_title), f"project {project_title!r}"):
        project = open_project(client, conn, project_title, create=create)
        tasks_by_doc = _tasks_by_doc(list_tasks(client, conn, project.id))
        reviewed = {d for d, t in tasks_by_doc.items() if (t.total_annotations or 0) > 0}
        skip = set(reviewed) | (set() if include_gold else set(gold.entries))
        candidates, skipped = select_documents(docs, skip_ids=skip, include_duplicates=include_duplicates)
        preds, ranked = _predict_for_push(predictor, candidates, limit, order, pool)
        if limit is not None:
            skipped["over_limit"] = len(candidates) - len(preds)
        report = PushReport(project_title, project.id, predictor.model_version, skipped=skipped,
                            ranked=ranked, candidates=len(candidates))
        new_tasks, refresh = _task_payloads(preds, candidates, tasks_by_doc, gold, report)
        _import_tasks(client, conn, project.id, new_tasks, batch, report)
        _refresh_tasks(client, conn, project.id, refresh, report)
        report.duplicates_removed = remove_duplicate_tasks(client, conn, project.id)
    return report


def _tasks_by_doc(tasks: list) -> dict[str, object]:
    """The first (lowest-id) task of each document."""
    by_doc: dict[str, object] = {}
    for t in sorted(tasks, key=lambda t: t.id):
        doc_id = task_doc_id(t)
        if doc_id is not None and doc_id not in by_doc:
            by_doc[doc_id] = t
    return by_doc


def _predict_for_push(predictor: Predictor, candidates: list[Document], limit: int | None, order: str,
                      pool: int | None) -> tuple[list, int]:
    """The predictions to push, in push order, and how many documents the model predicted."""
    if order == "corpus":
        chosen = candidates[:limit] if limit is not None else candidates
        return (predictor.predict(list(chosen)) if chosen else []), len(chosen)
    ranked = ranking_pool(candidates, limit, pool)
    preds = order_by_uncertainty(predictor.predict(list(ranked)) if ranked else [])
    return (preds[:limit] if limit is not None else preds), len(ranked)


def _task_payloads(preds: list, candidates: list[Document], tasks_by_doc: dict, gold: GoldFolder,
                   report: PushReport) -> tuple[list[dict], list[tuple[object, dict, dict]]]:
    by_id = {d.id: d for d in candidates}
    new_tasks: list[dict] = []
    refresh: list[tuple[object, dict, dict]] = []
    for p in preds:
        doc = by_id[p.document.id]
        report.order.append((doc.id, document_uncertainty(p)))
        data = {LS_TEXT_NAME: doc.text, "doc_id": doc.id, "meta": doc.meta, "base_hash": document_hash(gold.get(doc.id))}
        payload = prediction_payload(p, report.model_version)
        if doc.id in tasks_by_doc:
            refresh.append((tasks_by_doc[doc.id], data, payload))
        else:
            new_tasks.append({"data": data, "predictions": [payload]})
    return new_tasks, refresh


def _import_tasks(client, conn: Connection, project_id: int, new_tasks: list[dict], batch: int,
                  report: PushReport) -> None:
    for k in range(0, len(new_tasks), batch):
        chunk = new_tasks[k : k + batch]
        with ls_call(conn, "importing tasks"):
            client.projects.import_tasks(project_id, request=chunk, return_task_ids=True)
        report.created.extend(t["data"]["doc_id"] for t in chunk)


def _refresh_tasks(client, conn: Connection, project_id: int, refresh: list, report: PushReport) -> None:
    """Replace the same model version's predictions of existing tasks, and their data if it changed."""
    if not refresh:
        return
    with ls_call(conn, "listing predictions"):
        existing = client.predictions.list(project=project_id)
    old_by_task: dict[int, list[int]] = {}
    for pr in existing:
        if pr.model_version == report.model_version:
            old_by_task.setdefault(pr.task, []).append(pr.id)
    for task, data, payload in refresh:
        for pid in old_by_task.get(task.id, []):
            with ls_call(conn, f"deleting prediction {pid} of task {task.id}"):
                client.predictions.delete(id=pid)
            report.predictions_replaced += 1
        with ls_call(conn, f"adding a prediction to task {task.id} (document {data['doc_id']})"):
            client.predictions.create(task=task.id, result=payload["result"], score=payload["score"],
                                      model_version=report.model_version)
        if task.data != data:
            with ls_call(conn, f"updating task {task.id} (document {data['doc_id']})"):
                client.tasks.update(id=str(task.id), data=data)
        report.updated.append(data["doc_id"])


def remove_duplicate_tasks(client, conn: Connection, project_id: int) -> int:
    """Delete the unreviewed extra tasks of documents that have several; the lowest task id stays.

    Concurrent pushes on one machine are serialised by the project lock;
    pushes from two machines can still race, and both then converge here on
    the same surviving task. A reviewed extra task is kept (pull reports it).
    """
    by_doc: dict[str, list] = {}
    for t in list_tasks(client, conn, project_id):
        doc_id = task_doc_id(t)
        if doc_id is not None:
            by_doc.setdefault(doc_id, []).append(t)
    removed = 0
    for doc_id, tasks in by_doc.items():
        for extra in sorted(tasks, key=lambda t: t.id)[1:]:
            if (extra.total_annotations or 0) == 0 and (getattr(extra, "cancelled_annotations", 0) or 0) == 0:
                with ls_call(conn, f"deleting duplicate task {extra.id} (document {doc_id})"):
                    client.tasks.delete(id=str(extra.id))
                removed += 1
    return removed
