#!/usr/bin/env bash
# Command 2: set up, then run the test suite (unit tests and the Snakemake integration test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
