"""Training-time augmentation: organisation names swapped for others (mention replacement).

The gold set names few organisations (most ORG mentions are 360数科, 乐信, 信也),
so the tagger learns those names instead of the shapes of names. Each epoch,
a share of the training documents gets every organisation replaced by a name
drawn from a gazetteer (``resources/lexicons/org_gazetteer.tsv``: real names
of Chinese financial organisations with where each was found), the same
name for every mention of the same organisation; offsets, entities and
relations follow. Only the text of ORG spans changes, so every other label
and relation stays right.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path

from caibao.io import InputError
from caibao.schema import Document, Entity

BUNDLED_GAZETTEER = "resources/lexicons/org_gazetteer.tsv"


def read_gazetteer(path: str | Path | None = None) -> list[str]:
    """Names of a gazetteer TSV (``name<TAB>source`` a line, ``#`` comments); the bundled one by default."""
    if path is None:
        raw = resources.files("caibao").joinpath(BUNDLED_GAZETTEER).read_text("utf-8")
        where = BUNDLED_GAZETTEER
    else:
        try:
            raw = Path(path).read_text("utf-8")
        except FileNotFoundError:
            raise InputError(path, "no such gazetteer file") from None
        where = str(path)
    names = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name = line.split("\t", 1)[0].strip()
        if not name or any(c.isspace() for c in name):
            raise InputError(where, f"not a name: {line!r}", lineno)
        names.append(name)
    if not names:
        raise InputError(where, "the gazetteer names no organisation")
    return sorted(set(names))


def swap_orgs(doc: Document, names: list[str], rng: random.Random) -> Document:
    """``doc`` with each distinct ORG text replaced by a random gazetteer name (consistently)."""
    orgs = sorted((e for e in doc.entities if e.label == "ORG"), key=lambda e: e.start)
    if not orgs:
        return doc
    replacement = {}
    for e in orgs:
        surface = doc.span_text(e)
        if surface not in replacement:
            replacement[surface] = rng.choice([n for n in names if n != surface] or names)
    pieces, shift_at, pos = [], [], 0  # shift_at: (old offset, cumulative shift after it)
    shift = 0
    for e in orgs:
        pieces.append(doc.text[pos : e.start])
        new = replacement[doc.span_text(e)]
        pieces.append(new)
        shift += len(new) - (e.end - e.start)
        shift_at.append((e.end, shift))
        pos = e.end
    pieces.append(doc.text[pos:])

    def moved(offset: int) -> int:
        delta = 0
        for end, s in shift_at:
            if end <= offset:
                delta = s
        return offset + delta

    entities = []
    for e in doc.entities:
        start = moved(e.start)
        end = start + len(replacement[doc.span_text(e)]) if e.label == "ORG" else moved(e.end)
        entities.append(Entity(id=e.id, start=start, end=end, label=e.label))
    return Document(id=f"{doc.id}~swap", text="".join(pieces), meta=doc.meta, entities=entities,
                    relations=doc.relations)


def swap_some(docs: list[Document], names: list[str], rate: float, rng: random.Random) -> list[Document]:
    """Each document, with probability ``rate`` replaced by its org-swapped copy."""
    return [swap_orgs(d, names, rng) if rng.random() < rate else d for d in docs]
