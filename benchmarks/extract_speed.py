"""Extraction speed of the CPU paths, measured in one run, with the F1 each gives on the test split.

Paths (each in its own subprocess, so that peak memory is its own):

* ``fp32``: plain fp32 PyTorch, documents one at a time (a batch of one
  document: its own windows batched together, no sorting across documents).
  The baseline the ratios are taken against.
* ``fp32-batched``: the same PyTorch model with the windows of
  ``--batch-size`` documents sorted by length and batched, each batch padded
  to its longest window (``predict_documents``).
* ``onnx``: the encoder + token head in ONNX Runtime (``--runtime onnx``,
  the graph exported once and cached), batched like ``fp32-batched``;
  relation head and decoding are the same PyTorch code.
* ``distilled``: the optimised path, ``caibao extract``'s default: the
  6-layer student distilled from the full model (``configs/distilled.yaml``,
  bundled as ``distilled``) in PyTorch, batched like ``fp32-batched``.
* ``distilled-onnx``: the same in ONNX Runtime.

The first three run the full 12-layer model (bundled as ``full``).

The machine may be shared (e.g. with training), so the paths are run in
``--rounds`` interleaved rounds and each path's fastest round is reported.
Speed is over the distinct Chinese documents of the bundled corpus; F1 is
scored on the test split, by each path run the same way. Prints chars/s,
docs/s, peak RSS (of the extraction, before scoring), entity / relation /
fact F1, the ratios of each path to ``fp32`` and of ``onnx`` to
``fp32-batched``, and whether ``distilled`` and ``distilled-onnx`` each meet
the target (at least 2x the chars/s of ``fp32`` with at most 1 point of
entity and fact F1 lost).

    .venv/bin/python benchmarks/extract_speed.py [--limit 80] [--batch-size 8] [--threads 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("fp32", "fp32-batched", "onnx", "distilled", "distilled-onnx")
# path -> (bundled model, runtime)
PATH_MODEL = {"fp32": ("full", "torch"), "fp32-batched": ("full", "torch"), "onnx": ("full", "onnx"),
              "distilled": ("distilled", "torch"), "distilled-onnx": ("distilled", "onnx")}


def corpus_documents(limit: int | None):
    from caibao.corpus import ingest

    docs, _ = ingest([ROOT / "data" / "corpus"])
    docs = [d for d in docs if "duplicate_of" not in d.meta and d.meta["lang"] == "zh"]
    return docs[:limit] if limit else docs


def run_path(path: str, limit: int | None, batch_size: int, threads: int, with_scores: bool) -> dict:
    from caibao.annotations import read_gold
    from caibao.evaluate import score, strip_annotations
    from caibao.extract import Extractor

    docs = corpus_documents(limit)
    model, runtime = PATH_MODEL[path]
    extractor = Extractor.load(model, runtime=runtime, quantize=False, num_threads=threads)
    # Documents per model call: one for the plain path, batch_size for the others.
    per_call = 1 if path == "fp32" else batch_size
    extractor.extract_documents(docs[:2], batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    n_facts = 0
    for i in range(0, len(docs), per_call):
        n_facts += sum(len(f) for f in extractor.extract_documents(docs[i : i + per_call], batch_size=batch_size))
    seconds = time.perf_counter() - started
    chars = sum(len(d.text) for d in docs)
    result = {
        "path": path, "documents": len(docs), "characters": chars, "facts": n_facts, "seconds": round(seconds, 2),
        "chars_per_s": round(chars / seconds, 1), "docs_per_s": round(len(docs) / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if with_scores:
        gold = read_gold(ROOT / "annotations" / "gold")
        test_ids = json.loads((ROOT / "annotations" / "splits.json").read_text())["test"]
        by_id = {d.id: d for d in gold}
        test = [by_id[i] for i in test_ids]
        bare = [strip_annotations(d) for d in test]
        preds = [p.document for i in range(0, len(bare), per_call)
                 for p in extractor.predict(bare[i : i + per_call], batch_size=batch_size)]
        scores = score(test, preds)
        result.update({f"{k}_f1": scores[k]["micro"]["f1"] for k in ("entity", "relation", "fact")})
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each path's fastest is reported")
    ap.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--scores", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path:
        print(json.dumps(run_path(args.path, args.limit, args.batch_size, args.threads, args.scores)))
        return
    # Build (or check) the cached ONNX graph first, so that no timed round pays for the export.
    for model in ("full", "distilled"):
        subprocess.run([sys.executable, "-c", f"from caibao.extract import Extractor; "
                        f"Extractor.load({model!r}, runtime='onnx')"], check=True, capture_output=True)
    results: dict[str, dict] = {}
    for r in range(args.rounds):
        for path in PATHS:
            cmd = [sys.executable, __file__, "--path", path, "--batch-size", str(args.batch_size),
                   "--threads", str(args.threads)] + (["--limit", str(args.limit)] if args.limit else [])
            out = subprocess.run(cmd + (["--scores"] if r == 0 else []), check=True, capture_output=True,
                                 text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            print(f"round {r + 1} {path}: {res['seconds']} s", file=sys.stderr, flush=True)
            if path not in results:
                results[path] = res
            elif res["seconds"] < results[path]["seconds"]:
                results[path].update({k: res[k] for k in ("seconds", "chars_per_s", "docs_per_s", "peak_rss_mb")})
    cols = ["documents", "characters", "seconds", "chars_per_s", "docs_per_s", "peak_rss_mb", "entity_f1",
            "relation_f1", "fact_f1"]
    print(f"{'':14}" + "".join(f"{c:>13}" for c in cols))
    for path, r in results.items():
        print(f"{path:14}" + "".join(f"{r[c]:>13}" for c in cols))
    fp = results["fp32"]

    def compare(a: str, b: str) -> float:
        x, y = results[a], results[b]
        speed = x["chars_per_s"] / y["chars_per_s"]
        print(f"{a} / {b}: speed {speed:.2f}x, memory {x['peak_rss_mb'] / y['peak_rss_mb']:.2f}x, "
              f"F1 entity {x['entity_f1'] - y['entity_f1']:+.4f}, relation {x['relation_f1'] - y['relation_f1']:+.4f}, "
              f"fact {x['fact_f1'] - y['fact_f1']:+.4f}")
        return speed

    print()
    compare("fp32-batched", "fp32")
    compare("onnx", "fp32")
    compare("onnx", "fp32-batched")
    for path in ("distilled", "distilled-onnx"):
        speedup = compare(path, "fp32")
        q = results[path]
        meets = speedup >= 2.0 and fp["entity_f1"] - q["entity_f1"] <= 0.01 and fp["fact_f1"] - q["fact_f1"] <= 0.01
        print(f"target for {path} vs plain fp32 (>= 2x faster, <= 1 point entity and fact F1 lost):",
              "met" if meets else "NOT met")


if __name__ == "__main__":
    main()
