#!/usr/bin/env bash
# Set up, then run the main job on the bundled corpus with the bundled model:
# ingest data/corpus -> data/documents.jsonl -> facts.jsonl (+ facts.jsonl.errors.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/caibao ingest data/corpus --out data/documents.jsonl
.venv/bin/caibao extract data/documents.jsonl --out facts.jsonl
head -n 3 facts.jsonl
