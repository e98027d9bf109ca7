"""The annotation review loop with a real Label Studio: push, pull, status, ML backend.

* **push** uploads documents as tasks keyed by ``data.doc_id`` with the
  model's predictions as pre-annotations, cut to what the guide allows
  (:func:`caibao.annotations.without_guide_errors`), so that accepting them
  unchanged passes the pull. Each prediction carries the model's
  ``model_version`` (``caibao-<config name>-<first 12 hex of the sha256 of
  the weights file>``) and a per-document ``score``. Pushing again creates no
  second task for a document and replaces the predictions of the same model
  version instead of adding to them. The project must exist unless
  ``create`` is given (a typo must not start a new project).
* **locks**: push and pull of one project run one at a time on a machine
  (a lock file in the user's cache); pushes from two machines that race are
  cleaned up by the next push (:func:`remove_duplicate_tasks`).
* **uncertainty** (``--order uncertainty``): a document's uncertainty is
  ``max(1 - p_min, H)`` where ``p_min`` is the lowest probability among the
  model's decisions in the document (entity spans: mean over the span's
  tokens of the winning tag's probability; relations: the probability of the
  chosen label) and ``H`` is the mean token entropy of the BIO tagger
  divided by ``ln(number of tags)``, so both parts lie in [0, 1] and a
  document with no predicted entity but a hesitant tagger still ranks high.
  The prediction ``score`` sent to Label Studio is ``1 - uncertainty``, so
  reviewers can also sort by it in the Data Manager. With ``--limit N`` only
  a random sample of the candidates is ranked (:func:`ranking_pool`).
* **pull** exports every task, converts and validates the submitted
  annotations (``check_document``; any error aborts the pull, naming the
  task and document, before anything is written) and merges them into the
  gold folder: a reviewed document replaces its line in whichever gold file
  holds it, new documents go to ``reviewed.jsonl``. An empty submitted
  result means "nothing to annotate": the document is merged with no
  entities. Cancelled (skipped) tasks stay queued and are counted. New
  documents also join the fixed splits (the split of their near-duplicate
  cluster, else train) when a ``splits.json`` is given, so that retraining
  sees them.
* **one commit point per pull** (:mod:`caibao.journal`): the gold files, the
  splits and the list of Label Studio updates that follow (each merged
  task's new ``base_hash``) are committed together; a pull killed at any
  point leaves the old state or a journal that the next pull (or any reader
  of the gold folder, for the files) finishes. The Label Studio updates are
  idempotent.
* **conflicts** are never merged silently: push stores in ``data.base_hash``
  the hash of the gold version of the document as it was when pushed (null
  when it was not gold yet); at pull time a local version whose hash differs
  is a local edit that the reviewer did not see. Two completed annotations
  of one task with different results are a reviewer conflict. Both are
  listed and skipped (the local file keeps its version, the review stays in
  Label Studio), and the CLI exits with 1; ``--take-review DOC`` merges a
  review over a local edit. After a merge the task's ``base_hash`` is moved
  to the merged version, and the merged document records the annotation ids
  and update times it came from and the hash of what was merged
  (``result_hash``), so pulling again is a no-op, a later edit of the
  annotation merges cleanly, and a stale ``base_hash`` on a gold line that is
  still exactly a merged review is repaired instead of reported.
* **serve-ml** is a small Label Studio ML backend (``GET /health``,
  ``POST /setup``, ``POST /predict``, ``POST /webhook``); annotation events
  enqueue a retraining command in a background thread (off unless a
  command is configured; requests never wait for it).

The Label Studio URL and API key come from arguments or the environment
(``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``), never from files, and the
key never appears in a message: every error is passed through :func:`mask`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from caibao import faults, journal
from caibao.annotations import (
    LS_TEXT_NAME,
    LabelStudioFormatError,
    annotation_files,
    check_document,
    document_to_json,
    document_to_ls_result,
    labeling_config,
    ls_result_to_document,
    without_guide_errors,
)
from caibao.io import InputError, dump_jsonl_line, iter_jsonl
from caibao.schema import BIO_TAGS, Document, Entity, Relation

log = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
REVIEWED_FILE = "reviewed.jsonl"
REVIEW_METHOD = "label studio review"
# Webhook actions that mean "the gold set may have grown".
# --order uncertainty --limit N ranks a random sample of this many candidates per pushed
# document (--pool overrides): enough to find the least sure ones without predicting all.
POOL_PER_PUSHED = 4
RETRAIN_ACTIONS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED", "START_TRAINING"})


class ReviewError(RuntimeError):
    """A review-loop failure with a message fit for the user (never containing the API key)."""


# --- secrets and connections ---------------------------------------------------------


def mask(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    return text


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Connection:
    """Where Label Studio is; ``repr`` never shows the key."""

    url: str
    api_key: str = field(repr=False)

    @classmethod
    def resolve(cls, url: str | None = None, api_key: str | None = None) -> Connection:
        url = url or os.environ.get(URL_ENV)
        api_key = api_key or os.environ.get(API_KEY_ENV)
        if not url:
            raise ReviewError(f"no Label Studio URL: pass --url or set {URL_ENV}")
        if not api_key:
            raise ReviewError(f"no Label Studio API key: pass --api-key or set {API_KEY_ENV}")
        if not urlsplit(url).scheme or not urlsplit(url).hostname:
            raise ReviewError(f"not a URL: {mask(url, api_key)!r} (expected e.g. http://127.0.0.1:8080)")
        return cls(url.rstrip("/"), api_key)

    def client(self, timeout: float = 120.0):
        import httpx
        from label_studio_sdk import LabelStudio

        # A loopback server is reached directly: proxy variables must not reroute it.
        http = httpx.Client(timeout=timeout, follow_redirects=True, trust_env=not is_loopback_url(self.url))
        return LabelStudio(base_url=self.url, api_key=self.api_key, httpx_client=http, max_retries=1)


def describe_error(exc: BaseException) -> str:
    """A short description of an SDK or HTTP error (status and body, no headers)."""
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, ensure_ascii=False, default=str)
        return f"HTTP {exc.status_code}: {body[:300]}"
    try:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect ({exc})"
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out ({type(exc).__name__})"
    except ImportError:  # pragma: no cover
        pass
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def ls_call(conn: Connection, what: str):
    """Turn any failure of a Label Studio call into a masked :class:`ReviewError`."""
    try:
        yield
    except ReviewError as exc:
        raise ReviewError(mask(str(exc), conn.api_key)) from None
    except Exception as exc:  # noqa: BLE001 - SDK, httpx and pydantic errors alike
        raise ReviewError(mask(f"Label Studio at {conn.url}: {what} failed: {describe_error(exc)}",
                               conn.api_key)) from None


@contextmanager
def held(lock, what: str):
    """``lock`` held for the block; a lock still busy after the timeout is a one-line ReviewError."""
    try:
        journal.acquire(lock, what)
    except journal.JournalError as exc:
        raise ReviewError(str(exc)) from None
    try:
        yield
    finally:
        lock.release()


def project_lock(conn: Connection, title: str):
    """Serialises push and pull of one project on this machine (no duplicate tasks from concurrent pushes)."""
    return journal.named_lock(f"project:{conn.url}|{title}")


# --- the model side ------------------------------------------------------------------------


class Predictor(Protocol):
    """What push and the ML backend need from a model."""

    model_version: str

    def predict(self, docs: list[Document]) -> list:  # list[caibao.model.Prediction]
        ...


def weights_hash(model_dir: Path | str) -> str:
    from caibao.persistence import MODEL_FILE

    h = hashlib.sha256()
    with open(Path(model_dir) / MODEL_FILE, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_version_of(model_dir: Path | str) -> str:
    """``caibao-<config name>-<sha256 of the weights file, 12 hex>``: stable across copies of one model."""
    from caibao.persistence import CONFIG_FILE

    meta = json.loads((Path(model_dir) / CONFIG_FILE).read_text("utf-8"))
    name = str((meta.get("config") or {}).get("name") or "model")
    return f"caibao-{name}-{weights_hash(model_dir)[:12]}"


class ModelPredictor:
    """A caibao model directory; thread-safe, reloads itself when its weights file changes."""

    def __init__(self, model_dir: Path | str | None = None, batch_size: int = 8):
        from caibao.persistence import resolve_model_path

        # Pre-annotations come from the full model: in review, quality matters more than speed.
        self.path = resolve_model_path(model_dir, "full")
        self.batch_size = batch_size
        self._lock = threading.Lock()
        try:
            self._load()
        except (OSError, ValueError, KeyError) as exc:
            raise ReviewError(f"cannot load the model at {self.path}: {exc}") from None

    def _load(self) -> None:
        from caibao.extract import Extractor

        # The same automatic runtime as `caibao extract` (caibao.runtimes).
        self.loaded = Extractor.load(self.path).loaded
        self.model_version = model_version_of(self.path)

    def predict(self, docs: list[Document]) -> list:
        from caibao.model import predict_documents

        with self._lock:
            return predict_documents(self.loaded, docs, batch_size=self.batch_size)

    def refresh(self) -> bool:
        """Reload if the weights changed on disk (after a retraining); True when reloaded."""
        try:
            version = model_version_of(self.path)
        except OSError:
            return False
        if version == self.model_version:
            return False
        with self._lock:
            self._load()
        log.info("model reloaded: %s", self.model_version)
        return True


def document_uncertainty(pred) -> float:
    """``max(1 - lowest decision probability, mean token entropy / ln(#tags))``, in [0, 1].

    ``pred`` is a :class:`caibao.model.Prediction`. Higher means less sure;
    ``--order uncertainty`` pushes the highest first.
    """
    probs = [float(p) for p in pred.entity_scores.values()] + [float(p) for p in pred.relation_scores.values()]
    least_sure = 1.0 - min(probs) if probs else 0.0
    entropy = float(pred.mean_token_entropy or 0.0) / math.log(len(BIO_TAGS))
    return round(min(1.0, max(0.0, least_sure, entropy)), 6)


def prediction_payload(pred, model_version: str) -> dict:
    """A Label Studio prediction: result items, ``score = 1 - uncertainty``, model version."""
    return {
        # Guide-valid, so that a reviewer who accepts it unchanged passes the pull's validation.
        "result": document_to_ls_result(without_guide_errors(pred.document)),
        "score": round(1.0 - document_uncertainty(pred), 6),
        "model_version": model_version,
    }


# --- hashing and canonical forms ----------------------------------------------------------


def document_hash(doc: Document | None) -> str | None:
    """sha256 of the document's canonical JSON (content, not bytes: reformatting is no edit)."""
    if doc is None:
        return None
    blob = json.dumps(document_to_json(doc), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def annotation_key(doc: Document) -> tuple:
    """What a reviewer decided, independent of entity ids and order."""
    ents = doc.entity_by_id()
    spans = sorted((e.start, e.end, e.label) for e in doc.entities)
    rels = sorted(
        ((ents[r.head].start, ents[r.head].end), (ents[r.tail].start, ents[r.tail].end), r.label)
        for r in doc.relations if r.head in ents and r.tail in ents
    )
    return tuple(spans), tuple(rels)


def renumber(doc: Document) -> Document:
    """Entities sorted by position and renamed e1..eN; relations follow, sorted."""
    ordered = sorted(doc.entities, key=lambda e: (e.start, e.end, e.label, e.id))
    new_id = {e.id: f"e{k + 1}" for k, e in enumerate(ordered)}
    entities = [Entity(id=new_id[e.id], start=e.start, end=e.end, label=e.label) for e in ordered]
    pos = {e.id: k for k, e in enumerate(entities)}
    relations = sorted(
        (Relation(head=new_id.get(r.head, r.head), tail=new_id.get(r.tail, r.tail), label=r.label)
         for r in doc.relations),
        key=lambda r: (pos.get(r.head, -1), pos.get(r.tail, -1), r.label),
    )
    return Document(id=doc.id, text=doc.text, meta=doc.meta, entities=entities, relations=relations)


# --- projects and tasks ---------------------------------------------------------------------


def find_project(client, conn: Connection, title: str):
    """The project with exactly this title, or None; several with that title is an error."""
    with ls_call(conn, f"listing projects named {title!r}"):
        found = [p for p in client.projects.list(title=title) if p.title == title]
    if len(found) > 1:
        raise ReviewError(f"{len(found)} Label Studio projects are named {title!r} "
                          f"(ids {', '.join(str(p.id) for p in found)}): rename all but one")
    return found[0] if found else None


def open_project(client, conn: Connection, title: str, *, create: bool = False):
    """The project named ``title`` with caibao's labeling config; created only when ``create`` says so.

    Without ``create`` a missing project is an error: a typo in ``--project``
    must not start a second, empty project.
    """
    project = find_project(client, conn, title)
    config = labeling_config()
    if project is None:
        if not create:
            raise ReviewError(f"no Label Studio project named {title!r} at {conn.url}: "
                              "check --project, or pass --create to create it")
        with ls_call(conn, f"creating project {title!r}"):
            project = client.projects.create(title=title, label_config=config)
        log.info("created project %s (id %s)", title, project.id)
    elif (project.label_config or "").strip() != config.strip():
        with ls_call(conn, f"updating the labeling config of project {title!r}"):
            client.projects.update(id=project.id, label_config=config)
        log.info("updated the labeling config of project %s", title)
    return project


def require_project(client, conn: Connection, title: str):
    project = find_project(client, conn, title)
    if project is None:
        raise ReviewError(f"no Label Studio project named {title!r} at {conn.url} (`caibao review push --create` creates it)")
    return project


def list_tasks(client, conn: Connection, project_id: int) -> list:
    with ls_call(conn, "listing tasks"):
        return list(client.tasks.list(project=project_id, fields="task_only", page_size=500))


def export_tasks(client, project_id: int, all_tasks: bool = False) -> list:
    """The project's JSON export: tasks with their annotations (only annotated ones unless ``all_tasks``)."""
    raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON",
                                                         download_all_tasks=all_tasks))
    return json.loads(raw.decode("utf-8"))


def _task_doc_id(task) -> str | None:
    data = task.data if hasattr(task, "data") else task.get("data")
    if isinstance(data, dict) and data.get("doc_id") is not None:
        return str(data["doc_id"])
    return None


# --- gold folder ------------------------------------------------------------------------------


@dataclass
class GoldEntry:
    file: Path
    index: int  # 0-based physical line
    doc: Document


@dataclass
class GoldFolder:
    root: Path
    lines: dict[Path, list[str]]
    entries: dict[str, GoldEntry]

    @classmethod
    def load(cls, root: Path | str) -> GoldFolder:
        root = Path(root)
        lines: dict[Path, list[str]] = {}
        entries: dict[str, GoldEntry] = {}
        if root.exists() and not root.is_dir():
            raise ReviewError(f"{root}: the gold location must be a folder")
        if not root.exists():
            return cls(root, lines, entries)
        for f in annotation_files(root):
            lines[f] = f.read_text("utf-8").splitlines(keepends=True)
            for lineno, obj in iter_jsonl(f):
                try:
                    doc = Document.model_validate(obj)
                except Exception as exc:  # noqa: BLE001 - pydantic ValidationError
                    raise InputError(f, f"document {obj.get('id', '?')}: {exc}", lineno) from None
                if doc.id in entries:
                    other = entries[doc.id]
                    raise ReviewError(f"document {doc.id} is in the gold set twice ({other.file}:{other.index + 1} "
                                      f"and {f}:{lineno}); fix that first")
                entries[doc.id] = GoldEntry(f, lineno - 1, doc)
        return cls(root, lines, entries)

    def get(self, doc_id: str) -> Document | None:
        entry = self.entries.get(doc_id)
        return entry.doc if entry else None


# --- push --------------------------------------------------------------------------------------


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
        doc_id = _task_doc_id(t)
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
        doc_id = _task_doc_id(t)
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


# --- pull --------------------------------------------------------------------------------------


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


def _completed(annotations) -> list[dict]:
    """Submitted annotations, empty ones included (an empty result says: nothing to annotate)."""
    return [a for a in annotations or [] if isinstance(a, dict) and not a.get("was_cancelled")]


def _check_export(tasks) -> None:
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
        _check_export(tasks)
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
        anns = _completed(t.get("annotations"))
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


# --- status -------------------------------------------------------------------------------------


def status(conn: Connection, project_title: str, *, client=None) -> dict:
    """Counts of tasks and reviews, and how far the reviewers agreed with each model version."""
    from caibao.evaluate import entity_scores

    client = client or conn.client()
    project = require_project(client, conn, project_title)
    with ls_call(conn, "exporting tasks"):
        tasks = export_tasks(client, project.id, all_tasks=True)
    _check_export(tasks)
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
        anns = _completed(t.get("annotations"))
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


# --- ML backend -----------------------------------------------------------------------------------


class Retrainer:
    """Runs a retraining command in a background thread; requests never wait for it.

    Requests that arrive while a run is queued are folded into it; a request
    during a run queues exactly one more run afterwards (the gold set may
    have grown meanwhile). ``on_success`` runs after a run that exited 0.
    """

    def __init__(self, command: Sequence[str], *, cwd: Path | str | None = None,
                 on_success: Callable[[], object] | None = None, timeout: float | None = None):
        if not command:
            raise ValueError("empty retrain command")
        self.command = [str(c) for c in command]
        self.cwd = str(cwd) if cwd else None
        self.on_success = on_success
        self.timeout = timeout
        self.runs: list[dict] = []
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def request(self, reason: str) -> str:
        """Enqueue a run; returns ``queued`` or ``coalesced`` (folded into a queued run)."""
        with self._lock:
            coalesced = bool(self._pending)
            self._pending.append(reason)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="caibao-retrain", daemon=True)
                self._thread.start()
        return "coalesced" if coalesced else "queued"

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    self._idle.set()
                    return
                reasons, self._pending = self._pending, []
            started = time.time()
            run = {"reasons": reasons, "started": started}
            try:
                proc = subprocess.run(self.command, cwd=self.cwd, timeout=self.timeout, check=False)
                run["returncode"] = proc.returncode
            except Exception as exc:  # noqa: BLE001 - a failed run must not kill the worker
                run["returncode"] = None
                run["error"] = f"{type(exc).__name__}: {exc}"
            run["seconds"] = round(time.time() - started, 3)
            log.info("retrain run finished: rc=%s in %.1fs (%d request(s))", run["returncode"], run["seconds"],
                     len(reasons))
            if run["returncode"] == 0 and self.on_success is not None:
                try:
                    self.on_success()
                except Exception as exc:  # noqa: BLE001
                    run["error"] = f"after the run: {type(exc).__name__}: {exc}"
            with self._lock:
                self.runs.append(run)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()


def predict_tasks(predictor: Predictor, tasks: list[dict]) -> list[dict]:
    """One ``{"result", "score", "model_version"}`` per Label Studio task, in order."""
    version = predictor.model_version
    docs: list[Document] = []
    slots: list[int | None] = []
    for k, t in enumerate(tasks):
        data = (t or {}).get("data") if isinstance(t, dict) else None
        text = data.get(LS_TEXT_NAME) if isinstance(data, dict) else None
        if not isinstance(text, str) or not text:
            slots.append(None)
            continue
        doc_id = str(data.get("doc_id") or f"task-{t.get('id', k)}")
        slots.append(len(docs))
        docs.append(Document(id=doc_id, text=text))
    preds = predictor.predict(docs) if docs else []
    out = []
    for slot in slots:
        if slot is None:
            out.append({"result": [], "score": 0.0, "model_version": version})
        else:
            out.append(prediction_payload(preds[slot], version))
    return out


class _Handler(BaseHTTPRequestHandler):
    server: MLServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - only method and path, never bodies (/setup has a token)
        log.debug("%s %s", self.command, self.path.split("?", 1)[0])

    def _reply(self, code: int, obj) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        backend = self.server.backend
        if path in ("", "/health"):
            self._reply(200, {"status": "UP", "model_class": "caibao", "model_version": backend.model_version})
        elif path == "/versions":
            self._reply(200, {"versions": [backend.model_version]})
        else:
            self._reply(404, {"error": f"no such endpoint: GET {path}"})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        backend = self.server.backend
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"invalid JSON body: {exc}"})
            return
        if not isinstance(body, dict):
            self._reply(400, {"error": "expected a JSON object"})
            return
        try:
            if path == "/setup":
                self._reply(200, {"model_version": backend.model_version})
            elif path == "/predict":
                tasks = body.get("tasks")
                if not isinstance(tasks, list):
                    self._reply(400, {"error": "expected 'tasks': a list"})
                    return
                self._reply(200, {"results": backend.predict(tasks), "model_version": backend.model_version})
            elif path in ("/webhook", "/train"):
                action = body.get("action") or ("START_TRAINING" if path == "/train" else None)
                self._reply(200, backend.webhook(str(action)))
            else:
                self._reply(404, {"error": f"no such endpoint: POST {path}"})
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("request %s failed", path)
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})


class MLBackend:
    def __init__(self, predictor: Predictor, retrainer: Retrainer | None = None):
        self.predictor = predictor
        self.retrainer = retrainer
        self.events: list[dict] = []

    @property
    def model_version(self) -> str:
        return self.predictor.model_version

    def predict(self, tasks: list[dict]) -> list[dict]:
        return predict_tasks(self.predictor, tasks)

    def webhook(self, action: str) -> dict:
        if action not in RETRAIN_ACTIONS:
            result = {"status": "ignored", "action": action}
        elif self.retrainer is None:
            result = {"status": "ignored", "action": action, "reason": "retraining is off (--retrain-config)"}
        else:
            result = {"status": self.retrainer.request(action), "action": action}
        self.events.append(result)
        return result


class MLServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: MLBackend):
        super().__init__(address, _Handler)
        self.backend = backend

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


# What Label Studio 1.23 answers when it may not call a backend on a loopback address.
_BLOCKED_LOCAL_HINT = ("start Label Studio with LABEL_STUDIO_ML_BLOCK_LOCAL_IP=false "
                       "LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false (README, the review loop) to let it reach a "
                       "backend on this machine")


def connect_backend(conn: Connection, project_title: str, backend_url: str, *, client=None) -> dict:
    """Register ``caibao serve-ml`` at ``backend_url`` as the project's ML backend (idempotent).

    Label Studio then asks it for predictions and posts annotation events to
    its ``/webhook``. Returns ``{"id", "url", "state", "created"}``; a backend
    that Label Studio cannot reach is an error that says why.
    """
    client = client or conn.client()
    project = require_project(client, conn, project_title)
    url = backend_url.rstrip("/")
    with ls_call(conn, "listing ML backends"):
        existing = [b for b in client.ml.list(project=project.id) if (b.url or "").rstrip("/") == url]
    try:
        with ls_call(conn, f"connecting the ML backend {url}"):
            backend = existing[0] if existing else client.ml.create(project=project.id, url=url, title="caibao",
                                                                    is_interactive=False)
    except ReviewError as exc:
        hint = f"; {_BLOCKED_LOCAL_HINT}" if "reserved" in str(exc) or "HTTP 403" in str(exc) else ""
        raise ReviewError(f"{exc}{hint}") from None
    if backend.state != "CO":  # CO: connected (Label Studio got /health and /setup)
        raise ReviewError(f"Label Studio registered {url} for project {project_title!r} but cannot reach it "
                          f"(state {backend.state}): is `caibao serve-ml` running there?")
    return {"id": backend.id, "url": url, "state": backend.state, "created": not existing}


def make_ml_server(predictor: Predictor, host: str = "127.0.0.1", port: int = 9090,
                   retrainer: Retrainer | None = None) -> MLServer:
    """The ML backend bound to ``host:port`` (port 0: any free port); call ``serve_forever()``."""
    return MLServer((host, port), MLBackend(predictor, retrainer))


def retrain_command(config: Path | str, template: str | None = None, project: str | None = None,
                    gold: Path | str | None = None, splits: Path | str | None = None) -> list[str]:
    """``caibao retrain --full-config FILE`` with this interpreter: with ``project``, the project's
    finished reviews are pulled first, then the full and the distilled model retrained
    (:mod:`caibao.retrain`). Or ``template`` (shell words; ``{config}`` and, when given, ``{project}`` filled)."""
    import shlex
    import sys

    if template:
        words = [w.replace("{config}", str(config)) for w in shlex.split(template)]
        return [w.replace("{project}", project) for w in words] if project else words
    command = [sys.executable, "-c", "from caibao.cli import main; main()", "retrain", "--full-config", str(config)]
    for option, value in (("--project", project), ("--gold", gold), ("--splits", splits)):
        if value is not None:
            command += [option, str(value)]
    return command + ["--no-progress"]
