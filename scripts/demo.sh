#!/usr/bin/env bash
# Command 1: set up, then run every stage of the workflow on the embedded demo dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
snakemake --cores "${CORES:-2}" --resources gpu="${GPUS:-1}" --configfile config/demo.yaml "$@"
echo
echo "Results: results/report/tables.tex, results/report/map_vs_noise.png, results/report/results.csv"
echo "Browse:  bash scripts/mlflow_ui.sh   (mlflow ui on results/mlflow.db; prints the runs table's link)"
