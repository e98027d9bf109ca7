"""Metric identity: metric text as written -> a canonical metric id of the taxonomy, or "unmapped".

The taxonomy (``resources/metrics.yaml``) lists each metric's id, English name, type (level, ratio,
count), unit class and the names written for it. :func:`map_metric` normalises the text (Simplified
script, half-width, lower-case Latin, no spaces), then

1. looks the whole text up among the names (``how="exact"``);
2. else takes off the qualifiers that change a figure's meaning (调整后, 归母, 扣非, non-GAAP,
   segment names) and looks the rest up (``how="qualified"``); the qualifiers stay in the key
   (``net_profit[attributable]``), so an adjusted figure never meets the plain one;
3. else (the rest unknown, or a name listed as ambiguous) it is unmapped: ``id`` None.

Rules only: a name that is not listed is never guessed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field

from caibao.identity import plain_text

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

    @classmethod
    @functools.cache
    def load(cls) -> "Taxonomy":
        raw = yaml.safe_load(resources.files("caibao").joinpath("resources/metrics.yaml").read_text("utf-8"))
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
        return cls(metrics, by_name, qualifiers, segments,
                   frozenset(normalise_metric(a) for a in raw["ambiguous"]), dict(raw["confidence"]))


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


def map_metric(text: str, taxonomy: Taxonomy | None = None) -> MetricIdentity:
    """The canonical metric of a METRIC span's text (see the module docstring)."""
    taxonomy = taxonomy or Taxonomy.load()
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
