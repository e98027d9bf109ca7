"""The data contract: labels, relations, documents and metric facts.

Everything here follows ``ANNOTATION_GUIDE.md`` (copied into ``docs/``).
Offsets are Python string indices (Unicode code points), ``end`` exclusive,
and always refer to ``Document.text`` exactly as stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer, model_validator,
)

LABELS_FILE = Path(__file__).parent / "resources" / "labels.yaml"


class LabelScheme(BaseModel):
    """The entity labels (with their Label Studio colours) and relation labels (with the entity
    labels they link), in order: what the guide annotates and a model predicts
    (``resources/labels.yaml``; a model saves the scheme it was trained with)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, str] = Field(min_length=1)  # label -> colour
    relations: dict[str, tuple[str, str]]  # label -> (head label, tail label)

    @model_validator(mode="after")
    def _signatures_use_known_labels(self) -> "LabelScheme":
        for rel, (head, tail) in self.relations.items():
            unknown = [x for x in (head, tail) if x not in self.entities]
            if unknown:
                raise ValueError(f"relation {rel!r} links {unknown[0]!r}, which is not an entity label")
        return self

    @classmethod
    def load(cls, path: Path | str = LABELS_FILE) -> "LabelScheme":
        import yaml

        try:
            return cls.model_validate(yaml.safe_load(Path(path).read_text("utf-8")))
        except ValidationError as exc:
            raise ValueError(f"{path}: not a label scheme ({exc.errors()[0]['msg']})") from exc

    @property
    def entity_labels(self) -> tuple[str, ...]:
        return tuple(self.entities)

    @property
    def relation_labels(self) -> tuple[str, ...]:
        return tuple(self.relations)

    @property
    def bio_tags(self) -> tuple[str, ...]:
        """The token classifier's tags in a fixed order (index = class id)."""
        return ("O",) + tuple(f"{p}-{label}" for label in self.entities for p in ("B", "I"))


LABELS = LabelScheme.load()
ENTITY_LABELS: tuple[str, ...] = LABELS.entity_labels
RELATION_LABELS: tuple[str, ...] = LABELS.relation_labels
# Relation signatures: label -> (head label, tail label).
RELATION_SIGNATURES: dict[str, tuple[str, str]] = dict(LABELS.relations)
# BIO tag set of the token classifier, in a fixed order (index = class id).
BIO_TAGS: tuple[str, ...] = LABELS.bio_tags

# A sentence ends at one of these characters (kept in the sentence) or at a line break.
SENTENCE_END = "。！？!?"


class _Scored(BaseModel):
    """An entity or relation: a predicted one carries the model's probability for it in ``score``,
    an annotated one has none and is written without the key, so that gold files, Label Studio
    exports and document hashes keep their bytes."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _no_missing_score(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        if getattr(self, "score", None) is None:
            data.pop("score", None)
        return data


class Entity(_Scored):
    id: str
    start: int
    end: int
    label: str
    score: float | None = None

    def text_in(self, text: str) -> str:
        return text[self.start : self.end]


class Relation(_Scored):
    head: str
    tail: str
    label: str
    score: float | None = None


class Document(BaseModel):
    """One document of the corpus, optionally with annotations."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    meta: dict = Field(default_factory=dict)
    entities: list[Entity] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)

    def entity_by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}

    def span_text(self, entity: Entity) -> str:
        return self.text[entity.start : entity.end]


# --- the metric fact (what inference returns) --------------------------------


class OrgRef(BaseModel):
    text: str
    start: int | None = None
    end: int | None = None
    inferred: bool = False


class MetricRef(BaseModel):
    text: str
    start: int
    end: int


class ValueRef(BaseModel):
    text: str
    start: int
    end: int
    number: float | None = None
    unit: str | None = None
    kind: Literal["level", "change"] = "level"
    basis: Literal["yoy", "qoq"] | None = None
    approx: bool = False
    low: float | None = None
    high: float | None = None


class PeriodRef(BaseModel):
    text: str | None = None
    start: int | None = None
    end: int | None = None
    normalized: str | None = None
    inferred: bool = False


class Fact(BaseModel):
    doc_id: str
    org: OrgRef | None = None
    metric: MetricRef
    value: ValueRef
    period: PeriodRef | None = None
    guidance: bool = False
    # The probability that the fact is right when the model has a calibrator (caibao.calibration),
    # else the raw score; ``score`` keeps the raw score (spans' and relation's probabilities) then.
    confidence: float = 1.0
    score: float | None = None
    sentence: str = ""


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences: [start, end) ranges, terminator kept, line breaks dropped."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for i, ch in enumerate(text):
        if ch == "\n":
            if i > start:
                bounds.append((start, i))
            start = i + 1
        elif ch in SENTENCE_END:
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def sentence_index(text: str) -> list[int]:
    """For each character, the index of its sentence (-1 for line breaks)."""
    index = [-1] * len(text)
    for k, (s, e) in enumerate(sentence_bounds(text)):
        for i in range(s, e):
            index[i] = k
    return index
