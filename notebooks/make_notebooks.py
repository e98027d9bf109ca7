"""Writes the project's notebooks from plain cell sources (so their diffs stay readable).

    python notebooks/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
from pathlib import Path
import json, collections
import matplotlib.pyplot as plt
import pandas as pd
ROOT = Path.cwd() if (Path.cwd() / "annotations").exists() else Path.cwd().parent
from caibao.annotations import read_gold
gold = read_gold(ROOT / "annotations" / "gold")
splits = json.loads((ROOT / "annotations" / "splits.json").read_text())
split_of = {i: name for name, ids in splits.items() for i in ids}
print(len(gold), "gold documents,", sum(len(d.text) for d in gold), "characters")
"""

STATS = [
    new_markdown_cell("# Annotation statistics\nCounts of the gold set per label, relation, split and source; "
                      "span lengths; the most frequent METRIC strings. Executed by the tests, so it cannot rot."),
    new_code_cell(SETUP),
    new_code_cell("""\
from caibao.gold import stats
s = stats(gold, splits)
print(json.dumps({k: s[k] for k in ("documents", "characters", "entities", "relations")}, ensure_ascii=False, indent=1))
assert s["documents"] >= 150 and s["characters"] >= 150_000
"""),
    new_code_cell("""\
rows = []
for group in ("per_split", "per_source"):
    for name, row in s[group].items():
        rows.append({"group": group, "name": name, "documents": row["documents"], "characters": row["characters"],
                     **row["entities"], **row["relations"]})
table = pd.DataFrame(rows)
table
"""),
    new_code_cell("""\
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
labels = ["ORG", "METRIC", "VALUE", "PERIOD"]
for name in ("train", "dev", "test"):
    counts = s["per_split"][name]["entities"]
    axes[0].bar([f"{l}\\n{name}" for l in labels], [counts[l] for l in labels])
axes[0].set_title("entities per label and split")
axes[0].tick_params(axis="x", labelsize=6)
rels = s["relations"]
axes[1].bar(list(rels), list(rels.values()))
axes[1].set_title("relations per label")
fig.tight_layout()
"""),
    new_code_cell("""\
lengths = collections.defaultdict(list)
for d in gold:
    for e in d.entities:
        lengths[e.label].append(e.end - e.start)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist([lengths[l] for l in labels], bins=range(1, 30), label=labels, stacked=True)
ax.set_xlabel("span length (characters)"); ax.legend(); ax.set_title("span length distribution")
{l: (min(v), sum(v) / len(v), max(v)) for l, v in lengths.items()}
"""),
    new_code_cell("""\
metrics = collections.Counter(d.text[e.start:e.end] for d in gold for e in d.entities if e.label == "METRIC")
metrics.most_common(30)
"""),
]

ERRORS = [
    new_markdown_cell("# Error analysis of the default model on the test split\nThe bundled distilled model, "
                      "`caibao extract`'s default (its spans are the same in PyTorch and ONNX Runtime). "
                      "Per-label scores, label confusion, "
                      "relation errors by distance, examples of misses and false alarms."),
    new_code_cell(SETUP),
    new_code_cell("""\
from caibao.evaluate import score, strip_annotations
from caibao.extract import Extractor
test = [d for d in gold if split_of.get(d.id) == "test"]
extractor = Extractor.load("distilled", runtime="torch")
preds = [p.document for p in extractor.predict([strip_annotations(d) for d in test])]
result = score(test, preds)
print(json.dumps({k: result[k]["micro"] for k in ("entity", "relation", "fact")}, indent=1))
result["entity"]["per_label"]
"""),
    new_code_cell("""\
# Confusion between labels on overlapping spans (character level), 'O' = not annotated.
import numpy as np
names = ["O", "ORG", "METRIC", "VALUE", "PERIOD"]
conf = np.zeros((5, 5), dtype=int)
for g, p in zip(test, preds):
    gl = ["O"] * len(g.text); pl = ["O"] * len(g.text)
    for e in g.entities:
        for i in range(e.start, e.end): gl[i] = e.label
    for e in p.entities:
        for i in range(e.start, e.end): pl[i] = e.label
    for a, b in zip(gl, pl):
        conf[names.index(a), names.index(b)] += 1
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(np.log1p(conf)); ax.set_xticks(range(5), names); ax.set_yticks(range(5), names)
ax.set_xlabel("predicted"); ax.set_ylabel("gold"); ax.set_title("character-level label confusion")
for i in range(5):
    for j in range(5):
        ax.text(j, i, conf[i, j], ha="center", va="center", fontsize=7, color="w")
"""),
    new_code_cell("""\
# Relation recall by character distance between head and tail.
def keyed(doc):
    ents = doc.entity_by_id()
    return {(ents[r.head].start, ents[r.head].end, ents[r.tail].start, ents[r.tail].end, r.label)
            for r in doc.relations if r.head in ents and r.tail in ents}
buckets = collections.defaultdict(lambda: [0, 0])
for g, p in zip(test, preds):
    pk = keyed(p)
    for k in keyed(g):
        dist = min(abs(k[2] - k[1]), abs(k[0] - k[3]))
        b = min(dist // 10, 6)
        buckets[b][1] += 1
        buckets[b][0] += k in pk
xs = sorted(buckets)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([f"{10*b}-{10*b+9}" if b < 6 else "60+" for b in xs], [buckets[b][0] / buckets[b][1] for b in xs])
ax.set_title("relation recall by distance (characters)"); ax.set_ylim(0, 1)
{b: buckets[b] for b in xs}
"""),
    new_code_cell("""\
# Examples: missed gold entities and false alarms.
misses, alarms = [], []
for g, p in zip(test, preds):
    gs = {(e.start, e.end, e.label) for e in g.entities}
    ps = {(e.start, e.end, e.label) for e in p.entities}
    misses += [(g.id, g.text[s:e], l, g.text[max(0, s-10):e+10]) for s, e, l in sorted(gs - ps)]
    alarms += [(g.id, g.text[s:e], l, g.text[max(0, s-10):e+10]) for s, e, l in sorted(ps - gs)]
print(len(misses), "misses,", len(alarms), "false alarms")
pd.DataFrame(misses[:15], columns=["doc", "span", "label", "context"])
"""),
    new_code_cell("""\
pd.DataFrame(alarms[:15], columns=["doc", "span", "label", "context"])
"""),
]


def main() -> None:
    for name, cells in (("annotation_stats.ipynb", STATS), ("error_analysis.ipynb", ERRORS)):
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
