#!/usr/bin/env bash
# Create .venv (Python 3.11) and install caibao with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip 23.x cannot build seqeval's sdist next to setuptools 84 (docs/LABEL_STUDIO.md): upgrade first.
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
