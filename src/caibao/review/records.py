"""What push and pull share: canonical forms and hashes of documents, projects and tasks, the gold folder."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from caibao.annotations import annotation_files, document_to_json, labeling_config
from caibao.io import InputError, iter_jsonl
from caibao.review.connection import Connection, ReviewError, ls_call
from caibao.schema import Document, Entity, Relation

log = logging.getLogger(__name__)


REVIEWED_FILE = "reviewed.jsonl"
REVIEW_METHOD = "label studio review"


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


def task_doc_id(task) -> str | None:
    data = task.data if hasattr(task, "data") else task.get("data")
    if isinstance(data, dict) and data.get("doc_id") is not None:
        return str(data["doc_id"])
    return None


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
