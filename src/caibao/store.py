"""The fact store: canonical facts of many articles in one Parquet dataset (``caibao extract --format store``).

A store is a folder:

* ``facts.parquet``: one row per fact: the canonical organisation (``org_id``, ``org_name``, how it was
  found), the canonical metric (``metric_id``, ``metric_key`` = id with its qualifiers), the normalised
  period, the value, its provenance (``doc_id``, ``source``, ``date``, character offsets, the sentence)
  and the confidences (the fact's and the metric mapping's);
* ``organisations.parquet``: each organisation id with every name the articles wrote for it and the
  alias statements that linked them (``doc_id`` and offsets of each statement).

During a run each document becomes one JSON line of ``OUT.partial.jsonl`` (:func:`document_lines`: its
facts, source, date and the alias statements of its text), so ``--resume`` works as for the other
formats; at the end :func:`finish_store` learns the aliases of all documents together, resolves every
fact and writes the folder atomically (a temporary folder renamed into place). The streamed JSON lines
stay beside it as ``OUT.facts.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from caibao.identity import AliasStatement, OrgIndex, Registry, learn_aliases
from caibao.io import InputError, atomic_dir, iter_jsonl
from caibao.metric_ids import Taxonomy, map_metric, money_amount
from caibao.schema import Document, Fact

FACTS_FILE = "facts.parquet"
ORGANISATIONS_FILE = "organisations.parquet"
FORMAT_NAME = "store"

FACT_COLUMNS: dict[str, str] = {
    "doc_id": "string", "source": "string", "date": "string",
    "org_id": "string", "org_name": "string", "org_text": "string", "org_how": "string", "org_inferred": "bool",
    "org_start": "int64", "org_end": "int64",
    "metric_id": "string", "metric_key": "string", "metric_qualifiers": "string", "metric_text": "string",
    "metric_how": "string", "metric_confidence": "float64", "metric_start": "int64", "metric_end": "int64",
    "period": "string", "period_text": "string", "period_inferred": "bool",
    "value_text": "string", "number": "float64", "unit": "string", "kind": "string", "basis": "string",
    "approx": "bool", "low": "float64", "high": "float64", "value_start": "int64", "value_end": "int64",
    "guidance": "bool", "confidence": "float64", "score": "float64", "sentence": "string",
}
ORGANISATION_COLUMNS: dict[str, str] = {
    "org_id": "string", "org_name": "string", "how": "string", "names": "list<string>",
    # JSON: the alias statements that linked the names ({doc_id, name, alias, relation, start, end})
    "statements": "string",
}


# --- during a run: one line per document -------------------------------------------------------


def document_record(doc: Document, facts: list[Fact]) -> dict:
    """What the store keeps of one document until the run ends."""
    meta = doc.meta or {}
    return {
        "doc_id": doc.id,
        "source": _text_or_none(meta.get("source")),
        "date": _text_or_none(meta.get("date")),
        "aliases": [s.as_dict() for s in learn_aliases(doc.text)],
        "facts": [f.model_dump(mode="json") for f in facts],
    }


def document_lines(doc: Document, facts: list[Fact]) -> str:
    """The line a document adds to ``OUT.partial.jsonl`` in a ``--format store`` run."""
    return json.dumps(document_record(doc, facts), ensure_ascii=False) + "\n"


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


def read_records(partial: Path) -> list[dict]:
    """The document records of a run's streamed file (one JSON object a line)."""
    records = []
    for lineno, record in iter_jsonl(partial):
        if "facts" not in record:
            raise InputError(partial, "not a store record (written by a run of another --format?)", lineno)
        records.append(record)
    return records


# --- canonical rows ---------------------------------------------------------------------------


def statements_of(records: list[dict]) -> list[tuple[str, AliasStatement]]:
    return [(r["doc_id"], AliasStatement(**a)) for r in records for a in r.get("aliases", [])]


def canonical_rows(records: list[dict], registry: Registry | None = None) -> tuple[list[dict], list[dict]]:
    """(fact rows, organisation rows) of the documents' records: aliases learned from all documents
    together, each fact's organisation and metric resolved."""
    registry = registry or Registry.load()
    taxonomy = Taxonomy.load()
    statements = statements_of(records)
    index = OrgIndex.build(registry, [s for _, s in statements])
    fact_rows = []
    for record in records:
        for raw in record["facts"]:
            fact_rows.append(fact_row(Fact.model_validate(raw), record, index, taxonomy))
    return fact_rows, organisation_rows(fact_rows, statements, index)


def fact_row(fact: Fact, record: dict, index: OrgIndex, taxonomy: Taxonomy) -> dict:
    """One row of ``facts.parquet``."""
    org = index.resolve(fact.org.text) if fact.org else None
    v, p = fact.value, fact.period
    before, between = metric_context(fact)
    metric = map_metric(fact.metric.text, taxonomy, before=before, between=between,
                        amount=money_amount(v.number, v.unit, v.kind))
    return {
        "doc_id": fact.doc_id, "source": record.get("source"), "date": record.get("date"),
        "org_id": org.id if org else None, "org_name": org.name if org else None,
        "org_text": fact.org.text if fact.org else None, "org_how": org.how if org else None,
        "org_inferred": fact.org.inferred if fact.org else None,
        "org_start": fact.org.start if fact.org else None, "org_end": fact.org.end if fact.org else None,
        "metric_id": metric.id, "metric_key": metric.key, "metric_qualifiers": ",".join(metric.qualifiers) or None,
        "metric_text": fact.metric.text, "metric_how": metric.how, "metric_confidence": metric.confidence,
        "metric_start": fact.metric.start, "metric_end": fact.metric.end,
        "period": p.normalized if p else None, "period_text": p.text if p else None,
        "period_inferred": p.inferred if p else None,
        "value_text": v.text, "number": v.number, "unit": v.unit, "kind": v.kind, "basis": v.basis,
        "approx": v.approx, "low": v.low, "high": v.high, "value_start": v.start, "value_end": v.end,
        "guidance": fact.guidance, "confidence": fact.confidence, "score": fact.score, "sentence": fact.sentence,
    }


def metric_context(fact: Fact) -> tuple[str, str]:
    """The text of the fact's sentence before its METRIC (where adverbial clauses may qualify it) and
    from the METRIC to the value: the occurrence of the metric text followed, at the facts'
    distance, by the value text."""
    m, v, sentence = fact.metric.text, fact.value, fact.sentence
    gap = v.start - fact.metric.start
    starts = [i for i in range(len(sentence)) if sentence.startswith(m, i)]
    exact = [i for i in starts if i + gap >= 0 and sentence.startswith(v.text, i + gap)]
    at = (exact or starts or [0])[0]
    return sentence[:at], sentence[at + len(m) : at + gap] if gap > len(m) else ""


def organisation_rows(fact_rows: list[dict], statements: list[tuple[str, AliasStatement]],
                      index: OrgIndex) -> list[dict]:
    """One row per organisation id the facts name: its names as written and the statements linking them."""
    names: dict[str, set[str]] = defaultdict(set)
    shown: dict[str, tuple[str, str]] = {}
    for row in fact_rows:
        if row["org_id"]:
            names[row["org_id"]].add(row["org_text"])
            shown.setdefault(row["org_id"], (row["org_name"], row["org_how"]))
    linked: dict[str, list[dict]] = defaultdict(list)
    for doc_id, s in statements:
        org_id = index.resolve(s.name).id
        if org_id in names:
            linked[org_id].append({"doc_id": doc_id, **s.as_dict()})
            if s.relation != "ticker":
                names[org_id].update((s.name, s.alias))
    return [{"org_id": org_id, "org_name": shown[org_id][0], "how": shown[org_id][1],
             "names": sorted(names[org_id]), "statements": json.dumps(linked[org_id], ensure_ascii=False)}
            for org_id in sorted(names)]


# --- writing and reading ------------------------------------------------------------------------


def _schema(columns: dict[str, str]):
    import pyarrow as pa

    types = {"string": pa.string(), "bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64(),
             "list<string>": pa.list_(pa.string())}
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


def write_store(out: Path, fact_rows: list[dict], org_rows: list[dict]) -> None:
    """Write the store folder atomically: a temporary sibling renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_dir(out) as tmp:
        pq.write_table(pa.Table.from_pylist(fact_rows, schema=_schema(FACT_COLUMNS)), tmp / FACTS_FILE)
        pq.write_table(pa.Table.from_pylist(org_rows, schema=_schema(ORGANISATION_COLUMNS)), tmp / ORGANISATIONS_FILE)


def finish_store(partial: Path, out: Path, registry_files: list[Path] = ()) -> None:
    """Turn a run's streamed records into the store folder ``out``; the records stay as ``OUT.facts.jsonl``."""
    registry = Registry.load(list(registry_files))
    fact_rows, org_rows = canonical_rows(read_records(partial), registry)
    write_store(out, fact_rows, org_rows)
    os.replace(partial, out.with_name(out.name + ".facts.jsonl"))


def read_store(path: Path | str) -> tuple[list[dict], list[dict]]:
    """(fact rows, organisation rows) of a store folder; InputError (one line) when it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "no such store (a folder written by caibao extract --format store)")
    tables = []
    for name in (FACTS_FILE, ORGANISATIONS_FILE):
        try:
            tables.append(pq.read_table(path / name).to_pylist())
        except FileNotFoundError:
            raise InputError(path, f"not a fact store: no {name}") from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(path / name, f"unreadable Parquet ({str(exc).splitlines()[0]})") from None
    missing = set(FACT_COLUMNS) - set(tables[0][0]) if tables[0] else set()
    if missing:
        raise InputError(path / FACTS_FILE, f"not a fact store: columns missing ({', '.join(sorted(missing))})")
    return tables[0], tables[1]
