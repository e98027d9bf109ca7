"""Facts of many articles compared: the same figure reported twice, and figures that disagree.

Two facts speak of the same thing when their canonical key agrees: organisation id, metric key (id
with qualifiers), normalised period, kind (level/change), basis (yoy/qoq), unit and guidance. Under
one key, numbers that agree (:func:`agree`) form one :class:`Figure`; a key with more than one
figure given exactly (approximate values such as 超10亿元 or 约85亿元 contradict none) is a
:class:`Conflict`, between articles unless asked for conflicts within one article too. Facts without
a full key (no organisation, an unmapped metric, no period or no number) are not compared.

Numbers agree when they differ by no more than the rounding of the less precise one (2138亿元 and
2137.9亿元: half of 1亿) or by :data:`DEFAULT_RELATIVE_TOLERANCE` of the larger.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from caibao.identity import Registry

# Relative difference below which two numbers are one figure even when their texts show no rounding
# (the float noise of unit conversions; numbers written in words, 三成半, whose rounding is unknown).
DEFAULT_RELATIVE_TOLERANCE = 0.0001

KEY_FIELDS = ("org_id", "metric_key", "period", "kind", "basis", "unit", "guidance")
_US_SYMBOL = re.compile(r"^[A-Za-z]{1,5}$")
_LITERAL = re.compile(r"\d+(?:,\d{3})*(?:\.(\d+))?")


def rounding(number: float, text: str) -> float:
    """Half the last written digit of ``text``, in the units of ``number`` (41.44亿元 -> 0.005亿 = 500,000);
    0.0 when the text has no Arabic number."""
    m = _LITERAL.search(text or "")
    if not m:
        return 0.0
    literal = float(m.group(0).replace(",", ""))
    if literal == 0:
        return 0.0
    decimals = len(m.group(1) or "")
    return abs(number / literal) * 10.0 ** -decimals / 2


def agree(a: dict, b: dict, tolerance: float = DEFAULT_RELATIVE_TOLERANCE) -> bool:
    """Whether two fact rows give one number (see the module docstring)."""
    x, y = a["number"], b["number"]
    allowed = max(tolerance * max(abs(x), abs(y)), rounding(x, a["value_text"]), rounding(y, b["value_text"]))
    return abs(x - y) <= allowed


def fact_key(row: dict) -> tuple | None:
    """The canonical key of a fact row; None when a part is missing."""
    if row["org_id"] is None or row["metric_key"] is None or row["period"] is None or row["number"] is None:
        return None
    return tuple(row[f] for f in KEY_FIELDS)


@dataclass
class Figure:
    """One number reported for a key, with every fact (row) that reports it."""

    key: tuple
    rows: list[dict] = field(default_factory=list)

    @property
    def number(self) -> float:
        return self.rows[0]["number"]

    @property
    def documents(self) -> list[str]:
        return sorted({r["doc_id"] for r in self.rows})


@dataclass
class Conflict:
    key: tuple
    figures: list[Figure]

    @property
    def between_articles(self) -> bool:
        """Two of its figures come from different documents (else one article disagrees with itself,
        usually a fact given the wrong period or organisation)."""
        return any(d1 != d2 for i, f1 in enumerate(self.figures) for f2 in self.figures[i + 1 :]
                   for d1 in f1.documents for d2 in f2.documents)


def figures(rows: list[dict], tolerance: float = DEFAULT_RELATIVE_TOLERANCE) -> list[Figure]:
    """The rows grouped into figures: same key, numbers that agree (each with the first of its figure)."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        key = fact_key(row)
        if key is not None:
            by_key[key].append(row)
    out: list[Figure] = []
    for key in sorted(by_key, key=_sortable):
        group: list[Figure] = []
        for row in sorted(by_key[key], key=lambda r: (r["number"], r["doc_id"], r["value_start"])):
            if group and agree(group[-1].rows[0], row, tolerance):
                group[-1].rows.append(row)
            else:
                group.append(Figure(key, [row]))
        out.extend(group)
    return out


def conflicts(found: list[Figure], within_article: bool = False) -> list[Conflict]:
    """Keys with more than one figure from different articles (``within_article``: from one article too).

    Only figures that some fact gives exactly count: an approximate value (超10亿元, 约85亿元) bounds or
    rounds a figure and contradicts none."""
    by_key: dict[tuple, list[Figure]] = defaultdict(list)
    for f in found:
        if any(not r["approx"] for r in f.rows):
            by_key[f.key].append(f)
    out = [Conflict(key, fs) for key, fs in by_key.items() if len(fs) > 1]
    return out if within_article else [c for c in out if c.between_articles]


def _sortable(key: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in key)


# --- selecting rows ---------------------------------------------------------------------------


def org_ids_for(query: str, fact_rows: list[dict], org_rows: list[dict], registry: Registry) -> set[str]:
    """The organisation ids a query names: an id, a registry name or ticker (a US symbol alone too: QFIN),
    or any name the store's articles wrote for an organisation (any script, legal form or short form)."""
    from caibao.identity import name_key  # here, not at the top: the `caibao` command imports this module

    ids = {r["org_id"] for r in org_rows if r["org_id"] == query}
    candidates = [query] + ([f"US:{query.upper()}"] if _US_SYMBOL.match(query) else [])  # QFIN -> US:QFIN
    ids.update(org.id for org in map(registry.find, candidates) if org)
    key = name_key(query)
    ids.update(r["org_id"] for r in org_rows if any(name_key(n) == key for n in r["names"]))
    ids.update(r["org_id"] for r in fact_rows if r["org_text"] and name_key(r["org_text"]) == key)
    return {i for i in ids if i}


def metric_matches(query: str, row: dict) -> bool:
    """A metric id (any qualifiers), a metric key (exactly these qualifiers) or a metric name (its key)."""
    from caibao.metric_ids import map_metric

    if row["metric_key"] is None:
        return False
    if query in (row["metric_id"], row["metric_key"]):
        return True
    return map_metric(query).key == row["metric_key"]


def period_matches(query: str, row: dict) -> bool:
    """A normalised period or its beginning: 2023 matches 2023Q1, 2023FY and 2023-12-31."""
    return row["period"] is not None and row["period"].startswith(query)


def select(fact_rows: list[dict], org_ids: set[str] | None = None, metric: str | None = None,
           period: str | None = None) -> list[dict]:
    return [r for r in fact_rows
            if (org_ids is None or r["org_id"] in org_ids)
            and (metric is None or metric_matches(metric, r))
            and (period is None or period_matches(period, r))]


# --- output ----------------------------------------------------------------------------------


def _key_text(key: tuple, row: dict) -> str:
    org_id, metric_key, period, kind, basis, unit, guidance = key
    parts = [f"{row['org_name']} [{org_id}]", metric_key, period, kind + (f"/{basis}" if basis else ""), unit or "-"]
    return "  ".join(str(p) for p in parts) + ("  guidance" if guidance else "")


def _source_text(row: dict) -> str:
    where = ", ".join(x for x in (row["source"], row["date"]) if x)
    return f"{row['doc_id']}@{row['value_start']}" + (f" ({where})" if where else "")


def figure_line(figure: Figure) -> str:
    """One line: key, value as written, number, and the articles reporting it."""
    first = figure.rows[0]
    docs = figure.documents
    return (f"{_key_text(figure.key, first)}  {first['value_text']} = {figure.number:g}  "
            f"{len(docs)} article{'s' if len(docs) != 1 else ''}: " + ", ".join(docs))


def conflict_lines(conflict: Conflict) -> list[str]:
    """A header line, then one line per source of each figure (value, document, source, date, sentence)."""
    first = conflict.figures[0].rows[0]
    lines = [f"conflict: {_key_text(conflict.key, first)}"]
    for figure in conflict.figures:
        for row in figure.rows:
            lines.append(f"  {row['value_text']} = {row['number']:g}  {_source_text(row)}  {row['sentence'][:80]}")
    return lines


def figure_json(figure: Figure) -> dict:
    key = dict(zip(KEY_FIELDS, figure.key))
    return {**key, "org_name": figure.rows[0]["org_name"], "number": figure.number,
            "sources": [{f: r[f] for f in ("doc_id", "source", "date", "value_text", "number", "value_start",
                                           "value_end", "confidence", "sentence")} for r in figure.rows]}
