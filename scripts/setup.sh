#!/usr/bin/env bash
# Create .venv and install cmhash with its dependencies (skipped when already up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.cmhash-deps
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing dependencies (torch is large: a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v WARNING || true
  .venv/bin/python -m pip install --quiet -e . 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import cmhash, torch, snakemake, mlflow, gensim" 
  echo "$want" > "$stamp"
fi
