"""Ray engine scaling: throughput with 1 and 2 workers (model replicas), measured in one run.

Runs ``caibao extract --engine ray`` (:func:`caibao.distributed.run_ray_batch`)
over the distinct Chinese documents of the bundled corpus on a local Ray
started once with this machine's cores, first with 1 worker then with 2
(each worker ``--cpus-per-worker`` CPUs = torch threads), checks that both
runs give the same facts, and prints documents/s, characters/s and the
ratio 2 workers / 1 worker. Each run's time is end to end: the workers'
start and model load are included. The "startup_s" column is the time of a
run over a single document; "steady_docs_s" = (documents - 1) / (seconds -
startup_s) estimates the throughput once the workers are up.

    .venv/bin/python benchmarks/ray_scaling.py [--model DIR] [--limit N] [--batch-size 8] [--cpus-per-worker 1]

Uses the bundled model when it is there (src/caibao/resources/model), else
``--model`` is required.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpus_documents(limit: int | None):
    from caibao.corpus import ingest

    docs, _ = ingest([ROOT / "data" / "corpus"])
    docs = [d for d in docs if "duplicate_of" not in d.meta and d.meta["lang"] == "zh"]
    return docs[:limit] if limit else docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--cpus-per-worker", type=float, default=1.0)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (comma-separated)")
    args = ap.parse_args()

    from caibao.annotations import write_documents
    from caibao.distributed import run_ray_batch, start_local_ray
    from caibao.persistence import CONFIG_FILE, bundled_model_path

    model = args.model or bundled_model_path()
    if not (Path(model) / CONFIG_FILE).exists():
        sys.exit(f"no bundled model at {bundled_model_path()}: pass --model DIR")
    counts = [int(w) for w in args.workers.split(",")]
    docs = corpus_documents(args.limit)
    chars = sum(len(d.text) for d in docs)
    print(f"{len(docs)} documents, {chars} characters; model {model}; {os.cpu_count()} cores; "
          f"{args.cpus_per_worker:g} CPUs per worker", flush=True)

    ray = start_local_ray()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_documents(docs, tmp / "docs.jsonl")
        write_documents(docs[:1], tmp / "one.jsonl")
        facts = {}
        for n in counts:
            kw = dict(model_path=str(model), num_workers=n, cpus_per_worker=args.cpus_per_worker,
                      batch_size=args.batch_size, progress=False)
            startup = run_ray_batch([str(tmp / "one.jsonl")], tmp / f"one-{n}.jsonl", **kw).seconds
            report = run_ray_batch([str(tmp / "docs.jsonl")], tmp / f"facts-{n}.jsonl", **kw)
            facts[n] = sorted((tmp / f"facts-{n}.jsonl").read_text("utf-8").splitlines())
            results[n] = {"workers": n, "documents": report.documents, "characters": report.characters,
                          "facts": report.facts, "errors": report.errors, "seconds": report.seconds,
                          "docs_per_s": round(report.documents / report.seconds, 3),
                          "chars_per_s": round(report.characters / report.seconds, 1), "startup_s": startup,
                          "steady_docs_s": round((report.documents - 1) / max(1e-9, report.seconds - startup), 3)}
            print(json.dumps(results[n]), flush=True)
    ray.shutdown()

    cols = ["documents", "characters", "facts", "seconds", "docs_per_s", "chars_per_s", "startup_s", "steady_docs_s"]
    print(f"\n{'workers':>8}" + "".join(f"{c:>14}" for c in cols))
    for n, r in results.items():
        print(f"{n:>8}" + "".join(f"{r[c]:>14}" for c in cols))
    same = all(facts[n] == facts[counts[0]] for n in counts)
    print(f"\nsame facts with every worker count: {same}")
    base = results[counts[0]]
    for n in counts[1:]:
        r = results[n]
        print(f"{n} workers / {counts[0]} worker(s): {r['docs_per_s'] / base['docs_per_s']:.2f}x docs/s, "
              f"{r['chars_per_s'] / base['chars_per_s']:.2f}x chars/s "
              f"({r['steady_docs_s'] / base['steady_docs_s']:.2f}x steady docs/s)")


if __name__ == "__main__":
    main()
