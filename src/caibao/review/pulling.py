"""``caibao review pull``: finished reviews merged into the gold folder and the splits, one commit point."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from caibao import faults, journal
from caibao.annotations import (
    LS_TEXT_NAME,
    LabelStudioFormatError,
    check_document,
    document_to_json,
    ls_result_to_document,
)
from caibao.io import InputError, dump_jsonl_line
from caibao.review.connection import Connection, ReviewError, held, ls_call, project_lock
from caibao.review.records import (
    GoldFolder,
    REVIEWED_FILE,
    REVIEW_METHOD,
    annotation_key,
    document_hash,
    export_tasks,
    renumber,
    require_project,
)
from caibao.schema import Document

log = logging.getLogger(__name__)


@dataclass
class Conflict:
    doc_id: str
    task_id: int
    kind: str  # "local-edit" | "reviewers-disagree" | "duplicate-task"
    detail: str

    def __str__(self) -> str:
        return f"document {self.doc_id} (task {self.task_id}): {self.kind}: {self.detail}"


@dataclass
class PullReport:
    project: str
    merged_new: list[str] = field(default_factory=list)
    merged_replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # reviewed as "nothing to annotate": merged without entities
    pending: int = 0  # tasks nobody has annotated yet
    skipped: int = 0  # tasks whose annotations were all cancelled (skipped in Label Studio): they stay queued
    conflicts: list[Conflict] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    split_assignments: dict[str, str] = field(default_factory=dict)  # new document -> split
    bases_updated: int = 0  # tasks whose base_hash now names the merged version
    recovered: bool = False  # an interrupted earlier pull was finished first

    @property
    def not_done(self) -> int:
        return self.pending + self.skipped


def completed_annotations(annotations) -> list[dict]:
    """Submitted annotations, empty ones included (an empty result says: nothing to annotate)."""
    return [a for a in annotations or [] if isinstance(a, dict) and not a.get("was_cancelled")]


def check_export(tasks) -> None:
    if not isinstance(tasks, list):
        raise ReviewError(f"malformed Label Studio export: expected a list of tasks, got {type(tasks).__name__}")
    for k, t in enumerate(tasks):
        if not isinstance(t, dict):
            raise ReviewError(f"malformed Label Studio export: item {k} is a {type(t).__name__}, not a task")
        tid = t.get("id", f"#{k}")
        data = t.get("data")
        if not isinstance(data, dict) or not isinstance(data.get(LS_TEXT_NAME), str) or data.get("doc_id") is None:
            raise ReviewError(f"malformed Label Studio export: task {tid} has no data.{LS_TEXT_NAME} or data.doc_id "
                              "(was it created by `caibao review push`?)")
        anns = t.get("annotations", [])
        if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
            raise ReviewError(f"malformed Label Studio export: task {tid} (document {data['doc_id']}): "
                              "annotations is not a list of objects")
        for a in anns:
            if not isinstance(a.get("result", []), list):
                raise ReviewError(f"malformed Label Studio export: task {tid} (document {data['doc_id']}): "
                                  f"annotation {a.get('id')} has a result that is not a list")


def _marker(anns: list[dict]) -> list[list]:
    return sorted([a.get("id"), str(a.get("updated_at") or a.get("created_at") or "")] for a in anns)


def _reviewer(ann: dict, users: dict[int, str]) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("id"))
    return users.get(who, f"user {who}")


def result_hash(doc: Document) -> str:
    """sha256 of the text and what was annotated (no ids, no meta): is a gold line still exactly a merged review?"""
    blob = json.dumps([doc.text, annotation_key(doc)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def assign_splits(splits: dict[str, list[str]], new_docs: list[Document], gold: GoldFolder) -> dict[str, str]:
    """Put new gold documents into the fixed splits: the split of their near-duplicate cluster, else train.

    Existing assignments never move (dev/test stay comparable over time);
    following the cluster keeps near-duplicates out of two splits.
    """
    from caibao.gold import cluster_of

    where = {i: name for name, ids in splits.items() for i in ids}
    by_cluster: dict[str, str] = {}
    for doc_id, entry in gold.entries.items():
        if doc_id in where:
            by_cluster.setdefault(cluster_of(entry.doc), where[doc_id])
    assigned = {}
    for doc in new_docs:
        if doc.id in where:
            continue
        name = by_cluster.get(cluster_of(doc), "train")
        splits.setdefault(name, []).append(doc.id)
        where[doc.id] = assigned[doc.id] = name
        by_cluster.setdefault(cluster_of(doc), name)
    return assigned


def read_splits(splits_path: Path | None) -> dict | None:
    if splits_path is None:
        return None
    try:
        splits = json.loads(splits_path.read_text("utf-8"))
    except FileNotFoundError:
        raise ReviewError(f"{splits_path}: no such splits file") from None
    except json.JSONDecodeError as exc:
        raise ReviewError(f"{splits_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise ReviewError(f"{splits_path}: expected {{split name: [document ids]}}")
    return splits


def pull(conn: Connection, project_title: str, gold_dir: Path | str, *, client=None, update_base: bool = True,
         splits_path: Path | str | None = None, take_review: Iterable[str] = ()) -> PullReport:
    """Merge the project's completed reviews into the gold folder (see the module docstring).

    One commit point (:mod:`caibao.journal`): the gold files and
    ``splits_path`` change together, and the tasks' new ``base_hash`` values
    are journalled with them and sent to Label Studio afterwards; a pull
    killed at any point is finished by the next one. ``take_review``:
    documents whose review replaces the local version although it was edited
    after the push (the override for a local-edit conflict).
    """
    gold_dir = Path(gold_dir)
    splits_path = Path(splits_path) if splits_path is not None else None
    client = client or conn.client()
    project = require_project(client, conn, project_title)
    report = PullReport(project_title)
    temp_dirs = (splits_path.parent,) if splits_path is not None else ()
    with held(project_lock(conn, project_title), f"project {project_title!r}"), \
            held(journal.folder_lock(gold_dir), f"gold folder {gold_dir}"):
        _finish_earlier_pull(conn, client, gold_dir, temp_dirs, report)
        splits = read_splits(splits_path)
        with ls_call(conn, "exporting annotations"):
            tasks = export_tasks(client, project.id, all_tasks=True)
        check_export(tasks)
        gold = GoldFolder.load(gold_dir)
        reviewed = _convert_reviews(tasks, gold, project_title, report)
        merges, bases = _decide(reviewed, gold, project_title, _users(client, conn), report, set(take_review))
        contents = _merged_contents(merges, gold, splits, splits_path, report)
        pending = [{"url": conn.url, "project": project_title, "task": t["id"], "base_hash": h}
                   for t, h in bases] if update_base else []
        faults.point("pull:decided")
        try:
            journal.commit(gold_dir, contents, pending)
        except journal.JournalError as exc:
            raise ReviewError(str(exc)) from None
        report.files_written = [str(f) for f in contents]
        _send_bases(conn, client, gold_dir, report)
    return report


def _finish_earlier_pull(conn: Connection, client, gold_dir: Path, temp_dirs: tuple[Path, ...],
                         report: PullReport) -> None:
    """Complete a pull that was killed: its files (journal) and then its Label Studio updates."""
    try:
        pending = journal.recover(gold_dir, temp_dirs)
    except journal.JournalError as exc:
        raise ReviewError(str(exc)) from None
    if not pending:
        return
    other = {(p.get("url"), p.get("project")) for p in pending} - {(conn.url, report.project)}
    if other:
        url, title = sorted(other, key=str)[0]
        raise ReviewError(f"{gold_dir}: an interrupted pull of project {title!r} at {url} still has to update "
                          f"its tasks; run `caibao review pull --project {title}` against that server first")
    report.recovered = True
    _send_bases(conn, client, gold_dir, report)


def _send_bases(conn: Connection, client, gold_dir: Path, report: PullReport) -> None:
    """Set each journalled task's base_hash (idempotent: only that field changes); clear the journal when done."""
    failed = 0
    for item in journal.pending(gold_dir):
        try:
            with ls_call(conn, f"updating task {item['task']}"):
                task = client.tasks.get(id=item["task"])
                if (task.data or {}).get("base_hash") != item["base_hash"]:
                    client.tasks.update(id=str(item["task"]), data={**task.data, "base_hash": item["base_hash"]})
                    report.bases_updated += 1
            faults.point("pull:base-sent")
        except ReviewError as exc:
            if "HTTP 404" in str(exc):
                continue  # the task was deleted: nothing to update
            failed += 1
            report.warnings.append(f"{exc} (kept in {gold_dir / journal.JOURNAL_NAME}; the next pull retries it)")
    if not failed:
        journal.clear_pending(gold_dir)


def _users(client, conn: Connection) -> dict[int, str]:
    try:
        with ls_call(conn, "listing users"):
            return {u.id: u.email or u.username or f"user {u.id}" for u in client.users.list()}
    except ReviewError as exc:  # reviewers are then named by id
        log.warning("%s", exc)
        return {}


def _convert_reviews(tasks: list[dict], gold: GoldFolder, project_title: str,
                     report: PullReport) -> list[tuple[dict, list[dict], list[Document]]]:
    """Each reviewed task with its completed annotations as documents; any invalid one aborts the pull."""
    errors: list[str] = []
    reviewed = []
    for t in tasks:
        data = t["data"]
        doc_id, tid = str(data["doc_id"]), t.get("id")
        anns = completed_annotations(t.get("annotations"))
        if not anns:
            cancelled = any(a.get("was_cancelled") for a in t.get("annotations") or [])
            report.skipped += cancelled
            report.pending += not cancelled
            continue
        local = gold.get(doc_id)
        meta = local.meta if local is not None else (data.get("meta") or {})
        if not isinstance(meta, dict):
            errors.append(f"task {tid} (document {doc_id}): data.meta is not an object")
            continue
        docs = []
        for a in anns:
            where = f"task {tid} (document {doc_id}), annotation {a.get('id')}"
            try:
                d = ls_result_to_document(doc_id, data[LS_TEXT_NAME], meta, a.get("result") or [], where=where)
            except (LabelStudioFormatError, InputError, ValueError, TypeError, AttributeError) as exc:
                errors.append(str(exc) if isinstance(exc, InputError) else f"{where}: {exc}")
                continue
            problems = [p for p in check_document(d, where) if p.severity == "error"]
            errors.extend(f"{where}: [{p.code}]{' entity ' + p.entity_id if p.entity_id else ''}: {p.message}"
                          for p in problems)
            docs.append(d)
        reviewed.append((t, anns, docs))
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ReviewError(f"{len(errors)} problem(s) in the reviewed annotations of project {project_title!r}; "
                          f"nothing was written:\n  {shown}{more}")
    return reviewed


def _decide(reviewed: list, gold: GoldFolder, project_title: str, users: dict[int, str], report: PullReport,
            take_review: set[str]) -> tuple[list[tuple[dict, Document]], list[tuple[dict, str]]]:
    """Per task: merge, unchanged, or conflict. Returns the merges and the (task, base_hash) updates to send."""
    seen_docs: dict[str, int] = {}
    merges: list[tuple[dict, Document]] = []
    bases: list[tuple[dict, str]] = []
    for t, anns, docs in reviewed:
        doc_id, tid = str(t["data"]["doc_id"]), t.get("id")
        if doc_id in seen_docs:
            report.conflicts.append(Conflict(doc_id, tid, "duplicate-task",
                                             f"task {seen_docs[doc_id]} reviews the same document"))
            continue
        seen_docs[doc_id] = tid
        local = gold.get(doc_id)
        ls_meta = ((local.meta.get("annotation") or {}).get("label_studio") or {}) if local is not None else {}
        ours = ls_meta.get("project") == project_title and ls_meta.get("task_id") == tid
        # The gold line is exactly what an earlier pull merged from this task: a stale base_hash
        # (a pull killed before it told Label Studio) is then safe to move on.
        untouched = ours and ls_meta.get("result_hash") == result_hash(local)
        current = document_hash(local)
        if ours and ls_meta.get("annotations") == _marker(anns):
            report.unchanged.append(doc_id)
            if untouched and t["data"].get("base_hash") != current:
                bases.append((t, current))
            continue
        conflict = _conflict(t, anns, docs, local, current, users, untouched or doc_id in take_review, gold)
        if conflict is not None:
            report.conflicts.append(conflict)
            continue
        merged = _merged_document(t, anns, docs[0], local, project_title, users)
        if not merged.entities:
            report.empty.append(doc_id)
        merges.append((t, merged))
        bases.append((t, document_hash(merged)))
    return merges, bases


def _conflict(t: dict, anns: list[dict], docs: list[Document], local: Document | None, current: str | None,
              users: dict[int, str], base_may_be_stale: bool, gold: GoldFolder) -> Conflict | None:
    doc_id, tid = str(t["data"]["doc_id"]), t.get("id")
    if len({annotation_key(d) for d in docs}) > 1:
        who = ", ".join(f"{_reviewer(a, users)} (annotation {a.get('id')})" for a in anns)
        return Conflict(doc_id, tid, "reviewers-disagree", f"{len(anns)} completed annotations differ: {who}")
    base = t["data"].get("base_hash")
    if current == base or base_may_be_stale:
        return None
    detail = ("the document was added to the gold set after it was pushed" if base is None else
              "the gold version was edited after it was pushed" if local is not None else
              "the gold version was removed after it was pushed")
    where = f" ({gold.entries[doc_id].file})" if local is not None else ""
    return Conflict(doc_id, tid, "local-edit", detail + where + "; the local version is kept, the review stays in "
                    f"Label Studio (`--take-review {doc_id}` merges the review over it)")


def _merged_document(t: dict, anns: list[dict], reviewed: Document, local: Document | None, project_title: str,
                     users: dict[int, str]) -> Document:
    """The reviewed document, renumbered, with the review recorded in ``meta.annotation``."""
    tid = t.get("id")
    old = dict(local.meta.get("annotation") or {}) if local is not None else {}
    pred = next((a.get("prediction") for a in anns if isinstance(a.get("prediction"), dict)
                 and a["prediction"].get("model_version")), None)
    reviewers = sorted({_reviewer(a, users) for a in anns})
    merged = renumber(reviewed)
    record = {
        **old,
        "method": REVIEW_METHOD,
        "reviewers": reviewers,
        "reviewed_at": max(str(a.get("updated_at") or a.get("created_at") or "") for a in anns),
        "review_passes": int(old.get("review_passes") or 0) + 1,
        # The same history as the hand-made gold: one line per pass, this one last.
        "passes": [*(old.get("passes") or []),
                   f"label studio: reviewed by {', '.join(reviewers)} (project {project_title!r}, task {tid})"],
        "label_studio": {"project": project_title, "task_id": tid, "annotations": _marker(anns),
                         "result_hash": result_hash(merged),
                         **({"prediction_model_version": pred["model_version"]} if pred else {})},
    }
    return Document(id=merged.id, text=merged.text, meta={**merged.meta, "annotation": record},
                    entities=merged.entities, relations=merged.relations)


def _merged_contents(merges: list[tuple[dict, Document]], gold: GoldFolder, splits: dict | None,
                     splits_path: Path | None, report: PullReport) -> dict[Path, str]:
    """The new text of every file the merges touch: gold files, reviewed.jsonl and the splits."""
    new_lines = {f: list(lines) for f, lines in gold.lines.items()}
    touched: set[Path] = set()
    reviewed_file = gold.root / REVIEWED_FILE
    for _, doc in merges:
        entry = gold.entries.get(doc.id)
        line = dump_jsonl_line(document_to_json(doc))
        if entry is not None:
            new_lines[entry.file][entry.index] = line
            touched.add(entry.file)
            report.merged_replaced.append(doc.id)
        else:
            lines = new_lines.setdefault(reviewed_file, [])
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(line)
            touched.add(reviewed_file)
            report.merged_new.append(doc.id)
    contents = {f: "".join(new_lines[f]) for f in sorted(touched)}
    if splits is not None:
        new_ids = set(report.merged_new)
        report.split_assignments = assign_splits(splits, [d for _, d in merges if d.id in new_ids], gold)
        if report.split_assignments:
            contents[splits_path] = json.dumps(splits, ensure_ascii=False, indent=1) + "\n"
    return contents
