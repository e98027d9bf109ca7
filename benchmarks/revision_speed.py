"""The default extraction path's speed now against an earlier revision, measured in one run.

Checks out REV in a temporary git worktree, then times ``extract_speed.py --path
distilled-onnx`` (the default path: bundled distilled model, ONNX Runtime, batched)
for both trees in interleaved rounds, each tree importing its own code and its own
bundled model, on the same corpus documents and threads; each tree's fastest round
is kept. Prints the host's instruction sets, both speeds and the ratio, so a change
that slows the default path (more decoding rules, a bigger fact builder) shows.

    .venv/bin/python benchmarks/revision_speed.py --base 4a75877 [--limit 80] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def host_isa() -> list[str]:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [f for f in ISA_FLAGS if f" {f} " in f" {flags.split(':', 1)[1]} "]


def time_tree(tree: Path, limit: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    cmd = [sys.executable, str(tree / "benchmarks" / "extract_speed.py"), "--path", "distilled-onnx",
           "--limit", str(limit), "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=tree).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the earlier revision (a commit, tag or branch)")
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print("host ISA:", " ".join(host_isa()) or "unknown")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        try:
            # the corpus is not in git history's worktree if ignored: share the current one
            if not (base / "data" / "corpus").exists():
                (base / "data").mkdir(exist_ok=True)
                (base / "data" / "corpus").symlink_to(ROOT / "data" / "corpus")
            best: dict[str, dict] = {}
            for r in range(args.rounds):
                for name, tree in (("base", base), ("now", ROOT)):
                    res = time_tree(tree, args.limit, args.threads)
                    print(f"round {r + 1} {name}: {res['seconds']} s, {res['chars_per_s']} chars/s", flush=True)
                    if name not in best or res["seconds"] < best[name]["seconds"]:
                        best[name] = res
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    a, b = best["now"], best["base"]
    print(f"{args.base}: {b['chars_per_s']} chars/s, {b['facts']} facts; now: {a['chars_per_s']} chars/s, "
          f"{a['facts']} facts; now / base = {a['chars_per_s'] / b['chars_per_s']:.3f}x "
          f"({a['documents']} documents, {a['characters']} characters)")


if __name__ == "__main__":
    main()
