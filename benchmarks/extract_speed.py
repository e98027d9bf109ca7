"""Extraction speed: plain fp32 PyTorch vs int8 dynamic quantisation, measured in one run.

Each path runs in its own subprocess (so peak memory is its own) over the
distinct Chinese documents of the bundled corpus, then scores the test
split. Prints characters/s, documents/s, peak RSS, entity and fact F1, and
the ratios int8 / fp32.

    .venv/bin/python benchmarks/extract_speed.py [--limit N] [--batch-size 8] [--threads 2]
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


def corpus_documents(limit: int | None):
    from caibao.corpus import ingest

    docs, _ = ingest([ROOT / "data" / "corpus"])
    docs = [d for d in docs if "duplicate_of" not in d.meta and d.meta["lang"] == "zh"]
    return docs[:limit] if limit else docs


def run_path(path: str, limit: int | None, batch_size: int, threads: int) -> dict:
    import torch

    from caibao.annotations import read_gold
    from caibao.evaluate import score, strip_annotations
    from caibao.extract import Extractor

    torch.set_num_threads(threads)
    docs = corpus_documents(limit)
    extractor = Extractor.load(quantize=(path == "int8"))
    extractor.extract_documents(docs[:2], batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    n_facts = 0
    for i in range(0, len(docs), batch_size):
        n_facts += sum(len(f) for f in extractor.extract_documents(docs[i : i + batch_size], batch_size=batch_size))
    seconds = time.perf_counter() - started
    gold = read_gold(ROOT / "annotations" / "gold")
    test_ids = json.loads((ROOT / "annotations" / "splits.json").read_text())["test"]
    by_id = {d.id: d for d in gold}
    test = [by_id[i] for i in test_ids]
    preds = [p.document for p in extractor.predict([strip_annotations(d) for d in test], batch_size=batch_size)]
    scores = score(test, preds)
    chars = sum(len(d.text) for d in docs)
    return {
        "path": path, "documents": len(docs), "characters": chars, "facts": n_facts, "seconds": round(seconds, 2),
        "chars_per_s": round(chars / seconds, 1), "docs_per_s": round(len(docs) / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "entity_f1": scores["entity"]["micro"]["f1"], "relation_f1": scores["relation"]["micro"]["f1"],
        "fact_f1": scores["fact"]["micro"]["f1"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--path", choices=["fp32", "int8"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path:
        print(json.dumps(run_path(args.path, args.limit, args.batch_size, args.threads)))
        return
    results = {}
    for path in ("fp32", "int8"):
        cmd = [sys.executable, __file__, "--path", path, "--batch-size", str(args.batch_size),
               "--threads", str(args.threads)] + (["--limit", str(args.limit)] if args.limit else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[path] = json.loads(out.strip().splitlines()[-1])
    cols = ["documents", "characters", "seconds", "chars_per_s", "docs_per_s", "peak_rss_mb", "entity_f1",
            "relation_f1", "fact_f1"]
    print(f"{'':8}" + "".join(f"{c:>13}" for c in cols))
    for path, r in results.items():
        print(f"{path:8}" + "".join(f"{r[c]:>13}" for c in cols))
    fp, q = results["fp32"], results["int8"]
    speedup = q["chars_per_s"] / fp["chars_per_s"]
    print(f"\nint8 / fp32 speed: {speedup:.2f}x; memory: {q['peak_rss_mb'] / fp['peak_rss_mb']:.2f}x; "
          f"entity F1 {q['entity_f1'] - fp['entity_f1']:+.4f}, fact F1 {q['fact_f1'] - fp['fact_f1']:+.4f}")
    meets = speedup >= 2.0 and fp["entity_f1"] - q["entity_f1"] <= 0.01 and fp["fact_f1"] - q["fact_f1"] <= 0.01
    print("target (>= 2x faster, <= 1 point F1 lost):", "met" if meets else "NOT met")


if __name__ == "__main__":
    main()
