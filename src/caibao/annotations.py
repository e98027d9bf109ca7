"""Gold annotations: JSONL I/O, mechanical validation, Label Studio conversion.

The JSONL format and the rules are those of ``ANNOTATION_GUIDE.md``. The
Label Studio side uses ``labels`` results for spans and ``relation``
results for relations (see ``LABEL_STUDIO.md``); conversion is lossless in
both directions: entity ids become result ids, document meta and the
document id travel in the task's ``data``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pydantic import ValidationError

from caibao.io import InputError, atomic_writer, dump_jsonl_line, iter_jsonl
from caibao.journal import recover
from caibao.schema import (
    ENTITY_LABELS,
    LABELS,
    RELATION_LABELS,
    RELATION_SIGNATURES,
    Document,
    Entity,
    LabelScheme,
    Relation,
    sentence_index,
)

# Names of the controls in the labeling config; every converter uses them.
LS_TEXT_NAME = "text"
LS_LABELS_NAME = "label"
LS_RELATIONS_NAME = "relation"

# Colours only matter to the reviewers' eyes.


# --- JSONL I/O -------------------------------------------------------------------


def read_documents(path: Path | str) -> list[Document]:
    """Read a JSONL file of documents; errors name the file, line and document id."""
    docs = []
    for lineno, obj in iter_jsonl(path):
        try:
            docs.append(Document.model_validate(obj))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise InputError(path, f"document {obj.get('id', '?')}: {loc}: {err['msg']}", lineno) from None
    return docs


def annotation_files(path: Path | str) -> list[Path]:
    """A JSONL file, or every ``*.jsonl`` file below a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if not p.name.startswith("."))
    if not path.exists():
        raise InputError(path, "no such file or directory")
    return [path]


def read_gold(path: Path | str) -> list[Document]:
    """Every document of a gold file or folder; a folder's unfinished change (a killed pull) is finished first."""
    if Path(path).is_dir():
        recover(path)
    docs: list[Document] = []
    for f in annotation_files(path):
        docs.extend(read_documents(f))
    return docs


def document_to_json(doc: Document) -> dict:
    return {
        "id": doc.id,
        "text": doc.text,
        "meta": doc.meta,
        "entities": [e.model_dump() for e in doc.entities],
        "relations": [r.model_dump() for r in doc.relations],
    }


def write_documents(docs: Iterable[Document], path: Path | str) -> None:
    with atomic_writer(path) as fh:
        for doc in docs:
            fh.write(dump_jsonl_line(document_to_json(doc)))


# --- validation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    doc_id: str
    code: str
    message: str
    entity_id: str | None = None
    severity: str = "error"  # "error" fails validation, "warning" is reported only

    def __str__(self) -> str:
        ent = f" entity {self.entity_id}" if self.entity_id else ""
        return f"{self.file}:{self.line}: {self.severity}: [{self.code}] document {self.doc_id}{ent}: {self.message}"


def check_document(doc: Document, file: str = "<memory>", line: int = 0) -> list[Problem]:
    """Every rule of the guide that can be checked mechanically."""
    problems: list[Problem] = []

    def add(code: str, message: str, entity_id: str | None = None, severity: str = "error") -> None:
        problems.append(Problem(file, line, doc.id, code, message, entity_id, severity))

    valid = _check_entities(doc, add)
    linked = _check_relations(doc, valid, add)
    _check_orphans(doc, valid, linked, add)
    return problems


def _check_entities(doc: Document, add) -> dict[str, Entity]:
    """Ids, labels, offsets, padding, line breaks and overlaps; the entities that are valid, by id."""
    n = len(doc.text)
    seen_ids: set[str] = set()
    valid: dict[str, Entity] = {}
    for e in doc.entities:
        if e.id in seen_ids:
            add("duplicate-entity-id", f"entity id {e.id!r} is used twice", e.id)
            continue
        seen_ids.add(e.id)
        if e.label not in ENTITY_LABELS:
            add("unknown-label", f"unknown entity label {e.label!r} (known: {', '.join(ENTITY_LABELS)})", e.id)
        if not (0 <= e.start < e.end <= n):
            add("bad-offsets", f"offsets {e.start}-{e.end} not within the text (length {n}) or empty", e.id)
            continue
        span = doc.text[e.start : e.end]
        if span != span.strip():
            add("padded-span", f"span {span!r} starts or ends with whitespace", e.id)
        elif not span.strip():
            add("empty-span", "span is only whitespace", e.id)
        if "\n" in span:
            add("multiline-span", f"span {span!r} crosses a line break", e.id)
        valid[e.id] = e
    ordered = sorted(valid.values(), key=lambda e: (e.start, e.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            add("overlap", f"span {a.id} ({a.start}-{a.end}) overlaps {b.id} ({b.start}-{b.end})", b.id)
    return valid


def _check_relations(doc: Document, valid: dict[str, Entity], add) -> dict[str, set[str]]:
    """Duplicates, labels, dangling ends, type signatures, one sentence; the relation labels each
    entity takes part in."""
    sent = sentence_index(doc.text)
    rel_seen: Counter = Counter()
    linked: dict[str, set[str]] = {}
    for r in doc.relations:
        key = (r.head, r.tail, r.label)
        rel_seen[key] += 1
        if rel_seen[key] == 2:
            add("duplicate-relation", f"relation {r.head} -{r.label}-> {r.tail} is listed more than once", r.head)
        if r.label not in RELATION_LABELS:
            add("unknown-relation", f"unknown relation label {r.label!r} (known: {', '.join(RELATION_LABELS)})", r.head)
            continue
        missing = [x for x in (r.head, r.tail) if x not in valid]
        if missing:
            add("dangling-relation", f"relation {r.head} -{r.label}-> {r.tail}: no valid entity {missing[0]!r}",
                missing[0])
            continue
        head, tail = valid[r.head], valid[r.tail]
        want_head, want_tail = RELATION_SIGNATURES[r.label]
        if (head.label, tail.label) != (want_head, want_tail):
            add("relation-types", f"{r.label} must link {want_head} -> {want_tail}, "
                                  f"got {head.label} {r.head} -> {tail.label} {r.tail}", r.head)
            continue
        if sent[head.start] != sent[tail.start]:
            add("cross-sentence", f"relation {r.head} -{r.label}-> {r.tail} links two sentences", r.head)
        linked.setdefault(r.head, set()).add(r.label)
        linked.setdefault(r.tail, set()).add(r.label)
    return linked


def _check_orphans(doc: Document, valid: dict[str, Entity], linked: dict[str, set[str]], add) -> None:
    """A METRIC without a value, a PERIOD without a value, a VALUE without a METRIC (a warning)."""
    for e in valid.values():
        labels = linked.get(e.id, set())
        if e.label == "METRIC" and not labels & {"metric_value", "metric_change"}:
            add("metric-without-value", f"METRIC {doc.text[e.start:e.end]!r} has no metric_value/metric_change", e.id)
        if e.label == "PERIOD" and "value_period" not in labels:
            add("period-without-value", f"PERIOD {doc.text[e.start:e.end]!r} has no value_period", e.id)
        if e.label == "VALUE" and not labels & {"metric_value", "metric_change"}:
            add("value-without-metric", f"VALUE {doc.text[e.start:e.end]!r} belongs to no METRIC", e.id,
                severity="warning")


def without_guide_errors(doc: Document) -> Document:
    """``doc`` minus what breaks a mechanical rule of the guide (:func:`check_document` errors).

    For model predictions a reviewer may accept unchanged: relations that
    break a rule go first, then METRICs without a value and PERIODs without a
    value_period (with their relations), then any entity still named by an
    error; repeated until nothing is left to drop.
    """
    for _ in range(len(doc.entities) + 2):  # each round drops something, or stops
        problems = [p for p in check_document(doc) if p.severity == "error"]
        if not problems:
            return doc
        bad_relations = _broken_relations(doc)
        if bad_relations:
            doc = _replace(doc, doc.entities, [r for k, r in enumerate(doc.relations) if k not in bad_relations])
            continue
        drop = {p.entity_id for p in problems if p.entity_id}
        entities = [e for e in doc.entities if e.id not in drop]
        doc = _replace(doc, entities, [r for r in doc.relations if r.head not in drop and r.tail not in drop])
    return doc


def _broken_relations(doc: Document) -> set[int]:
    """Indexes of relations that break a rule: unknown label or end, wrong types, two sentences, repeated."""
    ents = {e.id: e for e in doc.entities}
    sent = sentence_index(doc.text)
    seen: set[tuple] = set()
    broken = set()
    for k, r in enumerate(doc.relations):
        head, tail = ents.get(r.head), ents.get(r.tail)
        key = (r.head, r.tail, r.label)
        if (r.label not in RELATION_LABELS or head is None or tail is None or key in seen
                or (head.label, tail.label) != RELATION_SIGNATURES[r.label]
                or not (0 <= head.start < len(sent) and 0 <= tail.start < len(sent))
                or sent[head.start] != sent[tail.start]):
            broken.add(k)
        seen.add(key)
    return broken


def _replace(doc: Document, entities: list[Entity], relations: list[Relation]) -> Document:
    return Document(id=doc.id, text=doc.text, meta=doc.meta, entities=entities, relations=relations)


def validate_paths(paths: Iterable[Path | str]) -> tuple[int, list[Problem]]:
    """Validate JSONL files (or folders of them). Returns (documents checked, problems).

    A folder may hold other JSONL files beside the documents (hand-checked facts, metric-id
    checks, justified consistency cases): a file in a folder whose first line is no document (no
    ``id`` and ``text``) is skipped with a warning; a file named on its own is always checked."""
    problems: list[Problem] = []
    count = 0
    ids: dict[str, str] = {}
    for path in paths:
        for f in annotation_files(path):
            if Path(path).is_dir() and not _holds_documents(f):
                problems.append(Problem(str(f), 1, "?", "not-documents",
                                        "its lines are not documents (no 'id' and 'text'): skipped", None, "warning"))
                continue
            for lineno, obj in iter_jsonl(f):
                doc_id = str(obj.get("id", "?"))
                try:
                    doc = Document.model_validate(obj)
                except ValidationError as exc:
                    for err in exc.errors():
                        loc = ".".join(str(x) for x in err["loc"])
                        problems.append(Problem(str(f), lineno, doc_id, "schema", f"{loc}: {err['msg']}"))
                    continue
                count += 1
                if doc.id in ids:
                    problems.append(Problem(str(f), lineno, doc.id, "duplicate-document-id",
                                            f"document id also used at {ids[doc.id]}"))
                ids[doc.id] = f"{f}:{lineno}"
                problems.extend(check_document(doc, str(f), lineno))
    return count, problems


def _holds_documents(path: Path) -> bool:
    """Whether the file's first line is a document (a JSON object with an ``id`` and a ``text``)."""
    for _, obj in iter_jsonl(path):
        return isinstance(obj, dict) and "id" in obj and "text" in obj
    return True  # an empty file: nothing to skip


# --- Label Studio -----------------------------------------------------------------


def labeling_config(labels: LabelScheme = LABELS) -> str:
    """The Label Studio labeling config XML, generated from a label scheme (default: the guide's)."""
    entity_tags = "\n".join(f"    <Label value={quoteattr(lab)} background={quoteattr(colour)}/>"
                            for lab, colour in labels.entities.items())
    relations = "\n".join(f"    <Relation value={quoteattr(r)}/>" for r in labels.relation_labels)
    return (
        "<View>\n"
        f'  <Relations name="{LS_RELATIONS_NAME}" toName="{LS_TEXT_NAME}">\n{relations}\n  </Relations>\n'
        f'  <Labels name="{LS_LABELS_NAME}" toName="{LS_TEXT_NAME}">\n{entity_tags}\n  </Labels>\n'
        f'  <Text name="{LS_TEXT_NAME}" value="$text" granularity="symbol"/>\n'
        "</View>\n"
    )


def document_to_ls_result(doc: Document) -> list[dict]:
    """Entities and relations as Label Studio result items."""
    result: list[dict] = []
    for e in doc.entities:
        result.append({
            "id": e.id,
            "from_name": LS_LABELS_NAME,
            "to_name": LS_TEXT_NAME,
            "type": "labels",
            "value": {"start": e.start, "end": e.end, "text": doc.text[e.start : e.end], "labels": [e.label]},
        })
    for r in doc.relations:
        result.append({"type": "relation", "from_id": r.head, "to_id": r.tail, "direction": "right",
                       "labels": [r.label]})
    return result


def document_to_ls_task(doc: Document, *, as_prediction: bool = False, model_version: str | None = None,
                        score: float | None = None) -> dict:
    """A Label Studio task; the annotations travel as an annotation (gold) or a prediction."""
    task: dict = {"data": {LS_TEXT_NAME: doc.text, "doc_id": doc.id, "meta": doc.meta}}
    result = document_to_ls_result(doc)
    if as_prediction:
        pred: dict = {"result": result, "model_version": model_version or "unknown"}
        if score is not None:
            pred["score"] = score
        task["predictions"] = [pred]
    else:
        task["annotations"] = [{"result": result}]
    return task


class LabelStudioFormatError(InputError):
    pass


def ls_result_to_document(doc_id: str, text: str, meta: dict, result: list[dict], *,
                          where: str = "<label studio>") -> Document:
    """Convert a Label Studio result list back; strict about labels and offsets."""
    from caibao.schema import Entity, Relation

    entities: list[Entity] = []
    relations: list[Relation] = []
    for k, item in enumerate(result):
        kind = item.get("type")
        if kind == "labels":
            value = item.get("value") or {}
            labels = value.get("labels") or []
            if len(labels) != 1:
                raise LabelStudioFormatError(where, f"task {doc_id}: result {k} has {len(labels)} labels, expected 1")
            label = labels[0]
            if label not in ENTITY_LABELS:
                raise LabelStudioFormatError(where, f"task {doc_id}: result {k}: unknown label {label!r}")
            try:
                start, end = int(value["start"]), int(value["end"])
            except (KeyError, TypeError, ValueError):
                raise LabelStudioFormatError(where, f"task {doc_id}: result {k}: missing start/end") from None
            if "text" in value and text[start:end] != value["text"]:
                raise LabelStudioFormatError(where, f"task {doc_id}: result {k}: text {value['text']!r} does not "
                                                    f"match the task text at {start}-{end} ({text[start:end]!r})")
            if not item.get("id"):
                raise LabelStudioFormatError(where, f"task {doc_id}: result {k} has no id")
            entities.append(Entity(id=str(item["id"]), start=start, end=end, label=label))
        elif kind == "relation":
            labels = item.get("labels") or []
            if len(labels) != 1:
                raise LabelStudioFormatError(where, f"task {doc_id}: relation {k} has {len(labels)} labels, "
                                                    "expected exactly 1")
            if labels[0] not in RELATION_LABELS:
                raise LabelStudioFormatError(where, f"task {doc_id}: relation {k}: unknown label {labels[0]!r}")
            head, tail = str(item.get("from_id")), str(item.get("to_id"))
            if item.get("direction") == "left":
                head, tail = tail, head
            relations.append(Relation(head=head, tail=tail, label=labels[0]))
        else:
            raise LabelStudioFormatError(where, f"task {doc_id}: result {k} has unsupported type {kind!r}")
    return Document(id=doc_id, text=text, meta=meta, entities=entities, relations=relations)


def ls_task_to_document(task: dict, *, source: str = "annotations", where: str = "<label studio>") -> Document:
    """Inverse of :func:`document_to_ls_task`: the first annotation (or prediction) becomes the document's."""
    data = task.get("data") or {}
    if LS_TEXT_NAME not in data or "doc_id" not in data:
        raise LabelStudioFormatError(where, f"task {task.get('id', '?')} has no data.{LS_TEXT_NAME} or data.doc_id")
    items = task.get(source) or []
    result = items[0].get("result", []) if items else []
    return ls_result_to_document(str(data["doc_id"]), data[LS_TEXT_NAME], data.get("meta") or {}, result,
                                 where=where)


def write_ls_tasks(docs: Iterable[Document], path: Path | str) -> None:
    with atomic_writer(path) as fh:
        json.dump([document_to_ls_task(d) for d in docs], fh, ensure_ascii=False, indent=1)


def read_ls_tasks(path: Path | str) -> list[Document]:
    try:
        tasks = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise LabelStudioFormatError(path, f"invalid JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(tasks, list):
        raise LabelStudioFormatError(path, "expected a JSON list of tasks")
    return [ls_task_to_document(t, where=str(path)) for t in tasks]


# --- building annotations from surface strings -------------------------------------


def resolve_span_spec(doc: Document, spec: dict) -> Document:
    """Turn a hand-written spec into offsets, so annotators never count characters.

    ``spec`` = ``{"entities": [{"id": "e1", "label": "ORG", "text": "乐信", "occ": 0}, ...],
    "relations": [{"head": "e1", "tail": "e2", "label": "org_metric"}], "meta": {...}}``
    where ``occ`` is the 0-based occurrence of ``text`` in the document (default 0).
    Raises ``ValueError`` naming the entity when the text does not occur that often.
    """
    from caibao.schema import Entity, Relation

    entities = []
    for item in spec.get("entities", []):
        surface, occ = item["text"], int(item.get("occ", 0))
        pos = -1
        for _ in range(occ + 1):
            pos = doc.text.find(surface, pos + 1)
            if pos < 0:
                raise ValueError(f"document {doc.id}: entity {item['id']}: {surface!r} occurs fewer than "
                                 f"{occ + 1} times")
        entities.append(Entity(id=item["id"], start=pos, end=pos + len(surface), label=item["label"]))
    entities.sort(key=lambda e: (e.start, e.end))
    relations = [Relation(**r) for r in spec.get("relations", [])]
    meta = {**doc.meta, **spec.get("meta", {})}
    return Document(id=doc.id, text=doc.text, meta=meta, entities=entities, relations=relations)
