"""The gold set as a whole: splits by duplicate cluster, statistics, consistency checks."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict

from caibao.io import InputError
from caibao.schema import ENTITY_LABELS, RELATION_LABELS, Document


# --- splits -------------------------------------------------------------------------


def read_splits(path) -> dict[str, list[str]]:
    """A splits file (split name -> document ids); an :class:`InputError` naming it when it cannot be read."""
    import json
    from pathlib import Path

    try:
        splits = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a splits file ({exc})") from None
    if not isinstance(splits, dict):
        raise InputError(path, "not a splits file (a JSON object of split name -> document ids)")
    return splits


def unknown_ids(splits: dict[str, list[str]], names, gold: dict[str, Document]) -> list[str]:
    """The document ids that the named splits hold and the gold set does not (a splits file of another gold set)."""
    return [i for name in names for i in splits.get(name, []) if i not in gold]


def cluster_of(doc: Document) -> str:
    return doc.meta.get("cluster") or doc.meta.get("duplicate_of") or doc.id


def split_by_cluster(docs: list[Document], test_fraction: float = 0.22, dev_fraction: float = 0.13,
                     min_test: int = 30, seed: str = "caibao") -> dict[str, list[str]]:
    """Assign whole near-duplicate clusters to train/dev/test, stratified by source file.

    Deterministic: clusters are ordered by a seeded hash, not by a random
    generator, so adding documents of one source does not reshuffle others.
    """
    by_source: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for d in docs:
        by_source[str(d.meta.get("source", ""))][cluster_of(d)].append(d.id)
    splits: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for source in sorted(by_source):
        clusters = sorted(by_source[source].items(),
                          key=lambda kv: hashlib.sha256(f"{seed}:{kv[0]}".encode()).hexdigest())
        n = sum(len(ids) for _, ids in clusters)
        test_target, dev_target = round(n * test_fraction), round(n * dev_fraction)
        counts = {"test": 0, "dev": 0}
        for _, ids in clusters:
            if counts["test"] < test_target:
                name = "test"
            elif counts["dev"] < dev_target:
                name = "dev"
            else:
                name = "train"
            splits[name].extend(ids)
            if name in counts:
                counts[name] += len(ids)
    # Top up the test split from train clusters if the per-source rounding fell short.
    if len(splits["test"]) < min_test:
        train_clusters = defaultdict(list)
        by_id = {d.id: d for d in docs}
        for i in splits["train"]:
            train_clusters[cluster_of(by_id[i])].append(i)
        for cl in sorted(train_clusters, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest()):
            if len(splits["test"]) >= min_test:
                break
            splits["test"].extend(train_clusters[cl])
            splits["train"] = [i for i in splits["train"] if i not in train_clusters[cl]]
    order = {d.id: k for k, d in enumerate(docs)}
    return {k: sorted(v, key=order.__getitem__) for k, v in splits.items()}


def check_splits(docs: list[Document], splits: dict[str, list[str]]) -> list[str]:
    """Problems: a document in two splits, a gold document in none, a cluster split across splits."""
    problems = []
    where: dict[str, str] = {}
    for name, ids in splits.items():
        for i in ids:
            if i in where:
                problems.append(f"{i} is in both {where[i]} and {name}")
            where[i] = name
    by_id = {d.id: d for d in docs}
    for d in docs:
        if d.id not in where:
            problems.append(f"{d.id} is in no split")
    cluster_splits: dict[str, set[str]] = defaultdict(set)
    for i, name in where.items():
        if i in by_id:
            cluster_splits[cluster_of(by_id[i])].add(name)
    for cl, names in cluster_splits.items():
        if len(names) > 1:
            problems.append(f"cluster {cl} is split across {sorted(names)}")
    return problems


# --- statistics -------------------------------------------------------------------------


def stats(docs: list[Document], splits: dict[str, list[str]] | None = None) -> dict:
    split_of = {i: name for name, ids in (splits or {}).items() for i in ids}
    out: dict = {
        "documents": len(docs),
        "characters": sum(len(d.text) for d in docs),
        "entities": dict(Counter(e.label for d in docs for e in d.entities)),
        "relations": dict(Counter(r.label for d in docs for r in d.relations)),
        "per_source": {},
        "per_split": {},
    }
    for key, group_of in (("per_source", lambda d: str(d.meta.get("source", "?"))),
                          ("per_split", lambda d: split_of.get(d.id, "none"))):
        groups: dict[str, list[Document]] = defaultdict(list)
        for d in docs:
            groups[group_of(d)].append(d)
        for name, group in sorted(groups.items()):
            out[key][name] = {
                "documents": len(group),
                "characters": sum(len(d.text) for d in group),
                "entities": {lab: sum(e.label == lab for d in group for e in d.entities) for lab in ENTITY_LABELS},
                "relations": {lab: sum(r.label == lab for d in group for r in d.relations) for lab in RELATION_LABELS},
            }
    return out


# --- consistency ---------------------------------------------------------------------------


def consistency(docs: list[Document]) -> list[dict]:
    """Cases for a second pass: one surface string labelled differently, missed ORG mentions,
    METRICs without values, VALUEs without metrics."""
    cases: list[dict] = []
    labels_of: dict[str, Counter] = defaultdict(Counter)
    for d in docs:
        for e in d.entities:
            labels_of[d.text[e.start : e.end]][e.label] += 1
    for surface, counts in sorted(labels_of.items()):
        if len(counts) > 1:
            cases.append({"kind": "label-conflict", "text": surface, "labels": dict(counts)})
    # Every named ORG mention is marked: an unmarked occurrence of a known ORG string is suspicious.
    orgs = sorted({s for s, c in labels_of.items() if c.get("ORG") and len(s) >= 2}, key=len, reverse=True)
    org_re = re.compile("|".join(map(re.escape, orgs))) if orgs else None
    for d in docs:
        covered = [False] * len(d.text)
        for e in d.entities:
            for i in range(e.start, e.end):
                covered[i] = True
        if org_re:
            for m in org_re.finditer(d.text):
                before = d.text[m.start() - 1] if m.start() else ""
                after = d.text[m.end()] if m.end() < len(d.text) else ""
                # "360" inside 3600万股 or 601360.SH, "中金" inside 中金融机构 are no mentions.
                glued = (m.group()[0].isdigit() and before.isdigit()) or (m.group()[-1].isdigit() and after.isdigit())
                if not any(covered[m.start() : m.end()]) and not glued:
                    # A longer word that merely contains the name (360数科技术) is not a mention.
                    cases.append({"kind": "unmarked-org", "doc": d.id, "text": m.group(), "start": m.start(),
                                  "context": d.text[max(0, m.start() - 12) : m.end() + 12]})
        linked = defaultdict(set)
        for r in d.relations:
            linked[r.head].add(r.label)
            linked[r.tail].add(r.label)
        for e in d.entities:
            has_value = linked[e.id] & {"metric_value", "metric_change"}
            if e.label == "METRIC" and not has_value:
                cases.append({"kind": "metric-without-value", "doc": d.id, "text": d.text[e.start : e.end]})
            if e.label == "VALUE" and not has_value:
                cases.append({"kind": "value-without-metric", "doc": d.id, "text": d.text[e.start : e.end],
                              "context": d.text[max(0, e.start - 15) : e.end + 5]})
    return cases


# --- the distillation transfer set ----------------------------------------------------------

# A corpus document that shares this share or more of its 12-character strings with a dev or
# test document is left out: a reworded copy of a held-out article that the clustering missed.
TRANSFER_NGRAM = 12
MAX_HELD_OUT_OVERLAP = 0.02
# The splits whose documents must not leak into training through the transfer set.
HELD_OUT_SPLITS = ("dev", "test")


def char_ngrams(text: str, n: int = TRANSFER_NGRAM) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def select_transfer(docs: list[Document], gold: dict[str, Document],
                    splits: dict[str, list[str]]) -> tuple[list[Document], dict[str, int]]:
    """The corpus documents a distillation may use without gold labels, and how many were left out why.

    Kept: Chinese, not an exact duplicate, not gold, not in a near-duplicate cluster
    that holds a dev or test document, sharing under :data:`MAX_HELD_OUT_OVERLAP` of
    its n-grams with any dev or test document.
    """
    held_out = [gold[i] for name in HELD_OUT_SPLITS for i in splits.get(name, [])]
    held_clusters = {cluster_of(d) for d in held_out}
    held_grams = set().union(*(char_ngrams(d.text) for d in held_out))
    kept, dropped = [], {"gold": 0, "held-out cluster": 0, "held-out overlap": 0}
    for d in docs:
        if d.meta.get("lang") != "zh" or "duplicate_of" in d.meta:
            continue
        grams = char_ngrams(d.text)
        if d.id in gold:
            dropped["gold"] += 1
        elif cluster_of(d) in held_clusters:
            dropped["held-out cluster"] += 1
        elif len(grams & held_grams) / max(1, len(grams)) >= MAX_HELD_OUT_OVERLAP:
            dropped["held-out overlap"] += 1
        else:
            kept.append(d)
    return kept, dropped


def write_transfer_set(out, corpus_dir, gold_dir, splits_path) -> str:
    """Ingest the corpus, keep :func:`select_transfer`'s documents (no annotations) and write them to
    ``out`` atomically; returns a one-line summary."""
    from pathlib import Path

    from caibao.annotations import read_gold, write_documents
    from caibao.corpus import ingest

    gold = {d.id: d for d in read_gold(gold_dir)}
    splits = read_splits(splits_path)
    missing = unknown_ids(splits, HELD_OUT_SPLITS, gold)
    if missing:
        raise InputError(splits_path, f"{missing[0]} ({len(missing)} ids of dev/test in all) is not in {gold_dir}")
    docs, _ = ingest([Path(corpus_dir)])
    kept, dropped = select_transfer(docs, gold, splits)
    write_documents(kept, out)  # atomically, with empty entities and relations
    return f"{len(kept)} documents, {sum(len(d.text) for d in kept):,} characters -> {out}; left out: {dropped}"
