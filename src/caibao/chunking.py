"""Long documents through the model in pieces, so that memory stays bounded whatever their length.

The encoder's windows, hidden states and relation candidates of a document
are all alive while it is decoded, so their memory grows with its length. A
document longer than ``max_chars`` is cut into pieces at sentence ends (else
at line breaks, else anywhere), the pieces go through the model a few at a
time, and their entities and relations are put back together with the
document's offsets. Relations never cross a sentence, so a cut at a sentence
end loses none; only a "sentence" longer than a piece (text without
punctuation) is cut inside.
"""

from __future__ import annotations

from caibao.schema import SENTENCE_END, Document, Relation

# A document longer than this goes through the model in pieces of at most this many characters ...
PIECE_CHARS = 20_000
# ... and no more than this many characters are in the model at once, whatever the batch of documents.
CHARS_IN_FLIGHT = 100_000


def groups_in_flight(sizes: list[int], limit: int = CHARS_IN_FLIGHT) -> list[list[int]]:
    """Consecutive indices grouped so that each group's sizes add up to at most ``limit`` (a larger
    item stands alone)."""
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if not groups or total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += size
    return groups


def cut_points(text: str, max_chars: int) -> list[int]:
    """Offsets where ``text`` is cut into pieces of at most ``max_chars`` characters: after the last
    sentence end in reach, else after the last line break, else at ``max_chars``."""
    cuts, start = [], 0
    while len(text) - start > max_chars:
        reach = text[start : start + max_chars]
        ends = [reach.rfind(c) for c in SENTENCE_END]
        best = max(ends) if max(ends) > 0 else reach.rfind("\n")
        end = start + (best + 1 if best > 0 else max_chars)
        cuts.append(end)
        start = end
    return cuts


def split_document(doc: Document, max_chars: int) -> list[tuple[int, Document]]:
    """(offset, piece) pairs covering ``doc``; a document within ``max_chars`` is its only piece."""
    bounds = [0, *cut_points(doc.text, max_chars), len(doc.text)]
    if len(bounds) == 2:
        return [(0, doc)]
    return [(s, Document(id=f"{doc.id}#{k}", text=doc.text[s:e], meta=doc.meta))
            for k, (s, e) in enumerate(zip(bounds, bounds[1:]))]


def merge_predictions(doc: Document, pieces: list[tuple[int, object]]):
    """One prediction for ``doc`` from its pieces' (offset, Prediction): offsets shifted, ids made unique,
    scores kept."""
    from caibao.model import Prediction

    if len(pieces) == 1 and pieces[0][0] == 0 and pieces[0][1].document.id == doc.id:
        return pieces[0][1]
    entities, relations, overruled, entropy, chars = [], [], [], 0.0, 0
    for k, (offset, pred) in enumerate(pieces):
        new_id = {e.id: f"c{k}.{e.id}" for e in pred.document.entities}
        entities += [e.model_copy(update={"id": new_id[e.id], "start": e.start + offset, "end": e.end + offset})
                     for e in pred.document.entities]
        relations += _renamed(pred.document.relations, new_id)
        overruled += _renamed(pred.overruled, new_id)
        size = len(pred.document.text)
        entropy += pred.mean_token_entropy * size
        chars += size
    merged = Document(id=doc.id, text=doc.text, meta=doc.meta, entities=entities, relations=relations)
    return Prediction(merged, entropy / max(1, chars), pieces[0][1].tag_count, overruled)


def _renamed(relations: list[Relation], new_id: dict[str, str]) -> list[Relation]:
    """``relations`` between the piece's entities, with their new ids (an overruled relation of a
    split METRIC links an entity the piece no longer has: it is left out)."""
    return [r.model_copy(update={"head": new_id[r.head], "tail": new_id[r.tail]})
            for r in relations if r.head in new_id and r.tail in new_id]
