"""Metric identity: metric text as written -> a canonical metric id of the taxonomy, or "unmapped".

The taxonomy (``resources/metrics.yaml``) lists each metric's id, English name, type (level, ratio,
count), unit class and the names written for it. :func:`map_metric` normalises the text (Simplified
script, half-width, lower-case Latin, no spaces), then

1. looks the whole text up among the names (``how="exact"``);
2. else takes off the qualifiers that change a figure's meaning (调整后, 归母, 扣非, non-GAAP,
   segment names) and looks the rest up (``how="qualified"``); the qualifiers stay in the key
   (``net_profit[attributable]``), so an adjusted figure never meets the plain one;
3. else (the rest unknown, or a name listed as ambiguous) it is unmapped: ``id`` None;
4. given the sentence's text before the METRIC (``before``), a mapped metric also takes the
   qualifiers an adverbial clause states for it (在扣除非经常性损益后，公司的净利润 ->
   ``net_profit[excl_nonrecurring]``); given the text between the METRIC and its value
   (``between``) or the value's amount of money (``amount``), a total that is shown to be per
   share becomes the per-share metric (股息每股现金2.38元 -> ``dividend_per_share``).

Rules only: a name that is not listed is never guessed.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from caibao.identity import plain_text
from caibao.io import bundled_yaml

SEGMENT_PREFIX = "segment:"


class MetricDef(BaseModel):
    """One metric of the taxonomy."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    en: str
    type: str = Field(pattern=r"^(level|ratio|count)$")
    unit_class: str = Field(pattern=r"^(money|percent|count|per_share|multiple)$")
    names: list[str] = Field(min_length=1)


@dataclass(frozen=True)
class MetricIdentity:
    """What a metric text means: ``id`` (None when unmapped), the ``qualifiers`` kept (sorted),
    ``how`` (exact, qualified, ambiguous, unmapped), ``confidence`` and ``core`` (the text the
    lookup saw, qualifiers removed)."""

    id: str | None
    qualifiers: tuple[str, ...]
    how: str
    confidence: float
    core: str

    @property
    def key(self) -> str | None:
        """The id with its qualifiers: net_profit[adjusted,attributable]; None when unmapped."""
        if self.id is None:
            return None
        return f"{self.id}[{','.join(self.qualifiers)}]" if self.qualifiers else self.id


def normalise_metric(text: str) -> str:
    """Simplified, half-width, lower-case Latin, no white space: 歸母凈利潤 -> 归母净利润."""
    return plain_text(text).lower()


@dataclass(frozen=True)
class Taxonomy:
    metrics: dict[str, MetricDef]
    by_name: dict[str, str]
    qualifiers: tuple[tuple[str, re.Pattern], ...]
    segments: tuple[str, ...]
    ambiguous: frozenset
    confidence: dict
    clause_qualifiers: tuple[tuple[str, re.Pattern], ...] = ()
    clause_implied: dict = dataclasses.field(default_factory=dict)  # qualifier -> those that imply it
    per_share_forms: dict = dataclasses.field(default_factory=dict)  # id -> its per-share id
    per_share_cue: re.Pattern | None = None
    per_share_below: float = 0.0

    @classmethod
    @functools.cache
    def load(cls) -> "Taxonomy":
        raw = bundled_yaml("metrics.yaml")
        metrics = {m["id"]: MetricDef.model_validate(m) for m in raw["metrics"]}
        by_name: dict[str, str] = {}
        for m in metrics.values():
            for name in m.names:
                key = normalise_metric(name)
                if by_name.get(key, m.id) != m.id:
                    raise ValueError(f"metrics.yaml: name {name!r} listed for {by_name[key]} and {m.id}")
                by_name[key] = m.id
        qualifiers = tuple((q, re.compile(p)) for q, patterns in raw["qualifiers"].items() for p in patterns)
        segments = tuple(sorted((normalise_metric(s) for s in raw["segments"]), key=len, reverse=True))
        clause = tuple((q, re.compile(p)) for q, patterns in raw["clause_qualifiers"].items() for p in patterns)
        return cls(metrics, by_name, qualifiers, segments,
                   frozenset(normalise_metric(a) for a in raw["ambiguous"]), dict(raw["confidence"]),
                   clause, {k: frozenset(v) for k, v in raw["clause_implied"].items()},
                   dict(raw["per_share"]["forms"]), re.compile(raw["per_share"]["cue"]), float(raw["per_share"]["below"]))


def strip_qualifiers(text: str, taxonomy: Taxonomy | None = None) -> tuple[str, tuple[str, ...]]:
    """(the text without its qualifiers, the qualifiers found, sorted): 归属于母公司股东的净利润 ->
    (净利润, (attributable,)); 信贷驱动服务的净收入 -> (净收入, (segment:信贷驱动服务,))."""
    taxonomy = taxonomy or Taxonomy.load()
    found: set[str] = set()
    for name, pattern in taxonomy.qualifiers:
        stripped = pattern.sub("", text, count=1)
        if stripped != text and stripped:
            found.add(name)
            text = stripped
    for segment in taxonomy.segments:
        if text.startswith(segment) and len(text) > len(segment):
            found.add(SEGMENT_PREFIX + segment.removesuffix("下"))
            text = text[len(segment) :]
            break
    return text.strip("的()（） -"), tuple(sorted(found))


def map_metric(text: str, taxonomy: Taxonomy | None = None, before: str = "", between: str = "",
               amount: float | None = None) -> MetricIdentity:
    """The canonical metric of a METRIC span's text (see the module docstring); ``before``: the
    sentence's text before the METRIC, whose adverbial clauses may qualify a mapped metric;
    ``between``: the text from the METRIC to its value; ``amount``: the value, when it is a level
    amount of money (in currency units)."""
    taxonomy = taxonomy or Taxonomy.load()
    found = _per_share(_map_text(text, taxonomy), taxonomy, between, amount)
    if not before or found.id is None:
        return found
    have = set(found.qualifiers)
    extra = {q for q in clause_qualifiers(before, taxonomy)
             if q not in have and not have & taxonomy.clause_implied.get(q, frozenset())}
    if not extra:
        return found
    return MetricIdentity(found.id, tuple(sorted(have | extra)), "qualified", taxonomy.confidence["qualified"],
                          found.core)


_CURRENCY_CODE = re.compile(r"[A-Z]{3}")  # units of money are ISO codes (CNY, HKD, USD); others are not


def money_amount(number: float | None, unit: str | None, kind: str) -> float | None:
    """A level value's number when it is an amount of money (the ``amount`` of :func:`map_metric`)."""
    return number if kind == "level" and unit and _CURRENCY_CODE.fullmatch(unit) else None


def _per_share(found: MetricIdentity, taxonomy: Taxonomy, between: str, amount: float | None) -> MetricIdentity:
    per_share = taxonomy.per_share_forms.get(found.id)
    if per_share is None:
        return found
    if taxonomy.per_share_cue.search(between) or (amount is not None and abs(amount) < taxonomy.per_share_below):
        return dataclasses.replace(found, id=per_share)
    return found


def clause_qualifiers(before: str, taxonomy: Taxonomy | None = None) -> tuple[str, ...]:
    """The qualifiers adverbial clauses of ``before`` state: 在扣除非经常性损益后，公司的 -> (excl_nonrecurring,)."""
    taxonomy = taxonomy or Taxonomy.load()
    text = normalise_metric(before)
    return tuple(sorted({name for name, pattern in taxonomy.clause_qualifiers if pattern.search(text)}))


def _map_text(text: str, taxonomy: Taxonomy) -> MetricIdentity:
    norm = normalise_metric(text)
    if norm in taxonomy.ambiguous:
        return MetricIdentity(None, (), "ambiguous", 0.0, norm)
    if norm in taxonomy.by_name:
        return MetricIdentity(taxonomy.by_name[norm], (), "exact", taxonomy.confidence["exact"], norm)
    core, qualifiers = strip_qualifiers(norm, taxonomy)
    if qualifiers and core in taxonomy.by_name and core not in taxonomy.ambiguous:
        return MetricIdentity(taxonomy.by_name[core], qualifiers, "qualified", taxonomy.confidence["qualified"], core)
    how = "ambiguous" if core in taxonomy.ambiguous else "unmapped"
    return MetricIdentity(None, qualifiers, how, 0.0, core)
