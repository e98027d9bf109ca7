"""Extraction speed of every runtime of one model on this host, measured in one run, with F1 and a profile.

Paths (each in its own subprocess, so that peak memory is its own), all the
same model (``--model``, default the bundled default ``distilled``), windows
of ``--batch-size`` documents sorted by length and batched:

* ``torch``: fp32 PyTorch, the baseline the ratios are taken against;
* ``torch-bf16``, ``onnx``, ``onnx-int8``: the other runtimes (``caibao.runtimes``);
* ``auto``: what ``caibao extract`` runs by default on this host (the choice is printed).

Printed: the host's CPU and instruction sets; per path chars/s, docs/s, peak
RSS, entity / relation / fact F1 on the test split, the speed ratio to
``torch``; the share of each stage of the pipeline (tokenise, encoder,
relation head, decoding, fact building, writing rows) for the ``auto`` path;
and the encoder's achieved GFLOP/s as a fraction of a matmul of the encoder's
shape measured in the same run (fp32, and bf16 for ``torch-bf16``): how close
to the machine's limit the encoder runs. The machine may be shared, so paths
run in ``--rounds`` interleaved rounds and each path's fastest round is kept.

    .venv/bin/python benchmarks/extract_speed.py [--model distilled] [--limit 80] [--batch-size 8] [--threads 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("torch", "torch-bf16", "onnx", "onnx-int8", "auto")
STAGES = ("tokenise", "encoder", "relation head", "decoding", "fact building", "writing rows")
# Shape of one matmul of the encoder's feed-forward layer ([tokens, hidden] x [hidden, intermediate]).
MATMUL_TOKENS = 2048
# One bf16 product of that shape takes under a millisecond with AMX: many repetitions per timing,
# the best of several timings, after a warm-up long enough for the clock to settle.
MATMUL_WARMUP, MATMUL_REPS, MATMUL_ROUNDS = 50, 50, 9


def corpus_documents(limit: int | None):
    from caibao.corpus import ingest

    docs, _ = ingest([ROOT / "data" / "corpus"])
    docs = [d for d in docs if "duplicate_of" not in d.meta and d.meta["lang"] == "zh"]
    return docs[:limit] if limit else docs


def encoder_flops(enc_config, batch: int, tokens: int) -> float:
    """Multiply-adds x 2 of the encoder's layers on a [batch, tokens] input (linear layers and attention)."""
    h, inter, layers = enc_config.hidden_size, enc_config.intermediate_size, enc_config.num_hidden_layers
    linear = 2 * batch * tokens * (4 * h * h + 2 * h * inter)
    attention = 2 * 2 * batch * tokens * tokens * h
    return float(layers * (linear + attention))


class Profile:
    """Wall time per stage, gathered by wrapping the pipeline's functions in this process."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops = 0.0

    def wrap(self, owner, name: str, stage: str, on_call=None):
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started
                if on_call:
                    on_call(*args)

        setattr(owner, name, timed)


def instrument(extractor, profile: Profile) -> None:
    import caibao.extract as extract_mod
    import caibao.featurize as featurize_mod
    import caibao.model as model_mod

    loaded = extractor.loaded
    model = loaded.model
    if loaded.encoder_runner is None:  # fp32 PyTorch: the same work as predict_documents does inline
        loaded.encoder_runner = lambda ids, mask: (lambda h: (h, model.token_logits(h).softmax(-1)))(
            model.encode(ids, mask))
    enc_config = model.encoder.config

    class Runner:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, ids, mask):
            started = time.perf_counter()
            out = self.inner(ids, mask)
            profile.seconds["encoder"] += time.perf_counter() - started
            profile.flops += encoder_flops(enc_config, *ids.shape)
            return out

    loaded.encoder_runner = Runner(loaded.encoder_runner)
    profile.wrap(featurize_mod, "encode_document", "tokenise")
    profile.wrap(type(model), "pair_logits", "relation head")
    profile.wrap(model_mod, "_decode_document", "decoding+relation")
    profile.wrap(extract_mod, "build_facts", "fact building")


def run_path(path: str, model: str, limit: int | None, batch_size: int, threads: int, with_scores: bool) -> dict:
    from caibao.extract import Extractor, fact_row

    docs = corpus_documents(limit)
    extractor = Extractor.load(model, runtime=path, quantize=False, num_threads=threads)
    extractor.extract_documents(docs[:2], batch_size=batch_size)  # warm-up
    profile = Profile()
    instrument(extractor, profile)
    started = time.perf_counter()
    n_facts = 0
    for i in range(0, len(docs), batch_size):
        facts = extractor.extract_documents(docs[i : i + batch_size], batch_size=batch_size)
        t = time.perf_counter()
        rows = [json.dumps(fact_row(f), ensure_ascii=False) for doc_facts in facts for f in doc_facts]
        profile.seconds["writing rows"] += time.perf_counter() - t
        n_facts += len(rows)
    seconds = time.perf_counter() - started
    chars = sum(len(d.text) for d in docs)
    stages = dict(profile.seconds)
    stages["decoding"] = stages.pop("decoding+relation", 0.0) - stages.get("relation head", 0.0)
    stages["other"] = seconds - sum(stages.values())
    result = {
        "path": path, "runtime": extractor.loaded.meta["runtime"], "documents": len(docs), "characters": chars,
        "facts": n_facts, "seconds": round(seconds, 2), "chars_per_s": round(chars / seconds, 1),
        "docs_per_s": round(len(docs) / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stages": {k: round(v, 3) for k, v in stages.items()},
        "encoder_gflops": round(profile.flops / max(profile.seconds["encoder"], 1e-9) / 1e9, 1),
    }
    if with_scores:
        result.update(test_scores(extractor, batch_size))
    return result


def test_scores(extractor, batch_size: int) -> dict:
    from caibao.annotations import read_gold
    from caibao.evaluate import score, strip_annotations

    by_id = {d.id: d for d in read_gold(ROOT / "annotations" / "gold")}
    test = [by_id[i] for i in json.loads((ROOT / "annotations" / "splits.json").read_text())["test"]]
    preds = [p.document for p in extractor.predict([strip_annotations(d) for d in test], batch_size=batch_size)]
    scores = score(test, preds)
    return {f"{k}_f1": scores[k]["micro"]["f1"] for k in ("entity", "relation", "fact")}


def matmul_gflops(threads: int, hidden: int, inter: int) -> dict[str, float]:
    """Best GFLOP/s of [MATMUL_TOKENS, hidden] x [hidden, inter] in fp32 and bf16 on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(MATMUL_TOKENS, hidden, dtype=dtype), torch.randn(hidden, inter, dtype=dtype)
        for _ in range(MATMUL_WARMUP):
            a @ b
        best = min(_timed(lambda: a @ b, MATMUL_REPS) for _ in range(MATMUL_ROUNDS))
        out[str(dtype).replace("torch.", "")] = round(2 * MATMUL_TOKENS * hidden * inter / best / 1e9, 1)
    return out


def _timed(fn, reps: int = 10) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - started) / reps


def measure(args) -> dict[str, dict]:
    # Build (or check) the cached ONNX graphs first, so that no timed round pays for an export.
    for runtime in ("onnx", "onnx-int8"):
        subprocess.run([sys.executable, "-c", f"from caibao.extract import Extractor; "
                        f"Extractor.load({args.model!r}, runtime={runtime!r})"], check=True, capture_output=True)
    results: dict[str, dict] = {}
    for r in range(args.rounds):
        for path in PATHS:
            cmd = [sys.executable, __file__, "--path", path, "--model", args.model, "--batch-size",
                   str(args.batch_size), "--threads", str(args.threads)] + (["--limit", str(args.limit)] if args.limit else [])
            out = subprocess.run(cmd + (["--scores"] if r == 0 else []), check=True, capture_output=True,
                                 text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            print(f"round {r + 1} {path}: {res['seconds']} s", file=sys.stderr, flush=True)
            if path not in results or res["seconds"] < results[path]["seconds"]:
                results[path] = {**results.get(path, {}), **{k: v for k, v in res.items() if not k.endswith("_f1")}}
            results[path].update({k: v for k, v in res.items() if k.endswith("_f1")})
    return results


def report(results: dict[str, dict], limits: dict[str, float], host) -> None:
    from caibao.runtimes import RUNTIMES

    base = results["torch"]
    print(f"host: {host.describe()}")
    print(f"matmul [{MATMUL_TOKENS} x hidden] x [hidden x intermediate], same threads: "
          + ", ".join(f"{k} {v} GFLOP/s" for k, v in limits.items()))
    cols = ["runtime", "chars_per_s", "docs_per_s", "peak_rss_mb", "entity_f1", "relation_f1", "fact_f1",
            "encoder_gflops"]
    print(f"{'path':12}" + "".join(f"{c:>15}" for c in cols) + f"{'vs torch':>10}{'of matmul':>11}")
    for path, r in results.items():
        # int8 has no matmul limit measured here: its fraction of the fp32 one would mean nothing.
        limit = {"fp32": limits["float32"], "bf16": limits["bfloat16"]}.get(RUNTIMES[r["runtime"]].numerics)
        share = f"{r['encoder_gflops'] / limit:>10.0%}" if limit else f"{'-':>10}"
        print(f"{path:12}" + "".join(f"{r[c]:>15}" for c in cols)
              + f"{r['chars_per_s'] / base['chars_per_s']:>9.2f}x{share}")
    auto = results["auto"]
    total = sum(auto["stages"].values())
    print(f"auto ({auto['runtime']}) time by stage: "
          + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(auto["stages"].items(), key=lambda kv: -kv[1])))
    lost = max(base["entity_f1"] - auto["entity_f1"], base["fact_f1"] - auto["fact_f1"])
    quality = (f"at most {lost * 100:.2f} points of entity or fact F1 lost" if lost > 0
               else "no entity or fact F1 lost")
    print(f"auto vs torch: {auto['chars_per_s'] / base['chars_per_s']:.2f}x, {quality}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="distilled", help="bundled model name or folder")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each path's fastest is reported")
    ap.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--scores", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path:
        print(json.dumps(run_path(args.path, args.model, args.limit, args.batch_size, args.threads, args.scores)))
        return
    from caibao.extract import Extractor
    from caibao.hardware import detect

    enc = Extractor.load(args.model, runtime="torch").loaded.model.encoder.config
    limits = matmul_gflops(args.threads, enc.hidden_size, enc.intermediate_size)
    report(measure(args), limits, detect())


if __name__ == "__main__":
    main()
