"""Kill `caibao extract` at random instants, resume each time, and compare with a clean run.

Runs ``caibao extract DOCS --out clean.jsonl`` once, then repeatedly starts
``caibao extract DOCS --out killed.jsonl --resume`` and sends SIGKILL after a
random delay (uniform between 0 and the clean run's duration), until KILLS
kills have landed; a last ``--resume`` then finishes the run. The result is
exact when the killed run's facts and errors files are byte-identical to the
clean run's once both are sorted by document (the order documents finish in
may differ) and no document is missing or doubled.

    .venv/bin/python benchmarks/kill_resume.py [--kills 50] [--limit 40] [--model distilled]

(The documents: the first LIMIT gold documents' texts, and an empty one.)
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(docs: Path, out: Path, model: str, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "caibao.cli", "extract", str(docs), "--out", str(out), "--model", model,
           "--no-progress", "--batch-size", "4"]
    return cmd + (["--resume"] if resume else [])


def _by_document(path: Path, key: str) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = defaultdict(list)
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            lines[json.loads(line)[key]].append(line)
    return dict(lines)


def kill_and_resume(docs: Path, work: Path, model: str, kills: int, seed: int = 13) -> dict:
    """Kill a run ``kills`` times at random instants, resume it to the end, compare with a clean run."""
    started = time.time()
    clean = work / "clean.jsonl"
    subprocess.run(_command(docs, clean, model, resume=False), check=False, capture_output=True)
    clean_seconds = time.time() - started
    rng = random.Random(seed)
    killed, landed = work / "killed.jsonl", 0
    while landed < kills:
        proc = subprocess.Popen(_command(docs, killed, model, resume=True), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, clean_seconds))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        proc.wait()
    subprocess.run(_command(docs, killed, model, resume=True), check=False, capture_output=True)
    facts = _by_document(killed, "doc_id"), _by_document(clean, "doc_id")
    errors = (_by_document(killed.with_name("killed.jsonl.errors.jsonl"), "doc_id"),
              _by_document(clean.with_name("clean.jsonl.errors.jsonl"), "doc_id"))
    return {"kills": landed, "clean_run_s": round(clean_seconds, 1),
            "documents_with_facts": len(facts[1]), "facts": sum(map(len, facts[1].values())),
            "facts_identical": facts[0] == facts[1], "errors_identical": errors[0] == errors[1]}


def write_documents(path: Path, limit: int) -> None:
    """The first ``limit`` gold documents' texts as a documents JSONL, plus an empty one (an error line)."""
    rows = []
    for f in sorted((ROOT / "annotations" / "gold").glob("*.jsonl")):
        for line in f.read_text("utf-8").splitlines():
            d = json.loads(line)
            rows.append({"id": d["id"], "text": d["text"], "meta": {"date": d.get("meta", {}).get("date")}})
    rows = rows[:limit] + [{"id": "empty", "text": " "}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--limit", type=int, default=40, help="gold documents to extract from")
    ap.add_argument("--model", default="distilled")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        docs = work / "docs.jsonl"
        write_documents(docs, args.limit)
        result = kill_and_resume(docs, work, args.model, args.kills)
    print(json.dumps(result))
    sys.exit(0 if result["facts_identical"] and result["errors_identical"] else 1)


if __name__ == "__main__":
    main()
