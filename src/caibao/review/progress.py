"""``caibao review status``: progress and agreement between each model version and the reviewers."""

from __future__ import annotations

from caibao.annotations import LS_TEXT_NAME, LabelStudioFormatError, ls_result_to_document
from caibao.review.connection import Connection, ls_call
from caibao.review.pulling import check_export, completed_annotations
from caibao.review.records import annotation_key, export_tasks, require_project
from caibao.schema import Document


def status(conn: Connection, project_title: str, *, client=None) -> dict:
    """Counts of tasks and reviews, and how far the reviewers agreed with each model version."""
    from caibao.evaluate import entity_scores

    client = client or conn.client()
    project = require_project(client, conn, project_title)
    with ls_call(conn, "exporting tasks"):
        tasks = export_tasks(client, project.id, all_tasks=True)
    check_export(tasks)
    with ls_call(conn, "listing predictions"):
        preds = client.predictions.list(project=project.id)
    preds_by_task: dict[int, list] = {}
    for p in preds:
        preds_by_task.setdefault(p.task, []).append(p)

    counts = {"tasks": len(tasks), "annotated": 0, "pending": 0, "skipped": 0, "disagreements": 0,
              "invalid_annotations": 0, "predictions": len(preds)}
    pairs: dict[str, tuple[list[Document], list[Document]]] = {}
    for t in tasks:
        data = t["data"]
        anns = completed_annotations(t.get("annotations"))
        if not anns:
            cancelled = any(isinstance(a, dict) and a.get("was_cancelled") for a in t.get("annotations") or [])
            counts["skipped" if cancelled else "pending"] += 1
            continue
        counts["annotated"] += 1
        docs = []
        for a in anns:
            try:
                docs.append(ls_result_to_document(str(data["doc_id"]), data[LS_TEXT_NAME], {}, a["result"]))
            except (LabelStudioFormatError, ValueError, TypeError, AttributeError):
                counts["invalid_annotations"] += 1
        if len({annotation_key(d) for d in docs}) > 1:
            counts["disagreements"] += 1
        if not docs:
            continue
        for p in preds_by_task.get(t["id"], []):
            try:
                pdoc = ls_result_to_document(str(data["doc_id"]), data[LS_TEXT_NAME], {}, p.result or [])
            except (LabelStudioFormatError, ValueError, TypeError, AttributeError):
                continue
            gold_list, pred_list = pairs.setdefault(p.model_version or "unknown", ([], []))
            gold_list.append(docs[0])
            pred_list.append(pdoc)
    agreement = []
    for version, (g, p) in sorted(pairs.items()):
        micro = entity_scores(g, p)["micro"]
        agreement.append({"model_version": version, "tasks": len(g), **micro})
    return {"project": project_title, "project_id": project.id, "url": conn.url, **counts, "agreement": agreement}
