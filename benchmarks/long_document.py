"""Peak memory and time of `caibao extract` on one very long document.

Builds the document from the bundled corpus (data/corpus/*.txt, concatenated in
name order and repeated until it is long enough), runs ``caibao extract`` on it
in a child process and reads the child's peak RSS from ``os.wait4``.

    .venv/bin/python benchmarks/long_document.py --chars 150000 --no-punctuation
    .venv/bin/python benchmarks/long_document.py --chars 1000000 --max-chars 2000000

``--no-punctuation`` removes every punctuation mark and whitespace character, so
that the whole document is one "sentence" (the shape that used to make relation
candidates quadratic). Prints one JSON line; exits 1 when the run failed or its
peak RSS is over ``--budget-gb``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpus_text(chars: int, punctuation: bool) -> str:
    """``chars`` characters of corpus text, with or without punctuation and whitespace."""
    text = "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "data" / "corpus").glob("*.txt")))
    if not punctuation:
        text = "".join(c for c in text if not (unicodedata.category(c)[0] in "PZ" or c.isspace()))
    return (text * (chars // len(text) + 1))[:chars]


def run_extract(doc: Path, out: Path, max_chars: int, model: str) -> dict:
    """Run the CLI on ``doc`` and return its exit code, wall time and peak RSS (bytes)."""
    cmd = [sys.executable, "-m", "caibao.cli", "extract", str(doc), "--out", str(out), "--model", model,
           "--max-chars", str(max_chars), "--no-progress"]
    log = out.with_name("stderr.log")
    started = time.time()
    with log.open("wb") as stderr:  # a file, not a pipe: nobody reads a pipe while we wait
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - started
    err = log.read_text("utf-8", "replace").strip().splitlines()
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    rss = usage.ru_maxrss * (1 if platform.system() == "Darwin" else 1024)
    facts = sum(1 for _ in out.open(encoding="utf-8")) if out.exists() else 0
    errors_file = out.with_name(out.name + ".errors.jsonl")
    errors = errors_file.read_text("utf-8").splitlines() if errors_file.exists() else []  # JSON lines
    return {"exit_code": os.waitstatus_to_exitcode(status), "seconds": round(seconds, 1),
            "peak_rss_gb": round(rss / 2**30, 2), "facts": facts, "errors": errors[:3],
            "last_stderr_line": err[-1] if err else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=150_000)
    ap.add_argument("--no-punctuation", dest="punctuation", action="store_false")
    ap.add_argument("--max-chars", type=int, default=200_000, help="passed to caibao extract")
    ap.add_argument("--model", default="distilled")
    ap.add_argument("--budget-gb", type=float, default=3.0, help="peak RSS allowed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "long.txt"
        doc.write_text(corpus_text(args.chars, args.punctuation), "utf-8")
        result = run_extract(doc, Path(tmp) / "facts.jsonl", args.max_chars, args.model)
    result = {"chars": args.chars, "punctuation": args.punctuation, "cpus": os.cpu_count(), **result}
    print(json.dumps(result, ensure_ascii=False))
    sys.exit(0 if result["exit_code"] == 0 and result["peak_rss_gb"] <= args.budget_gb else 1)


if __name__ == "__main__":
    main()
