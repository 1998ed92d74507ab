#!/usr/bin/env bash
# Browse the workflow's MLflow store: print each experiment's runs-table link, then run
# `mlflow ui` on results/mlflow.db (HOST and PORT override 127.0.0.1:5000). The link opens
# the runs table in cmhash's saved view; MLflow 3.17 opens an experiment in its GenAI view
# unless the sidebar's GenAI / Model training switch says otherwise, and the link sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
shopt -s nullglob
records=(results/mlflow/experiments/*.json)
if [ ${#records[@]} -eq 0 ]; then
  echo "no experiment in results/mlflow/experiments/: run the workflow first (bash scripts/demo.sh)" >&2
  exit 1
fi
.venv/bin/python - "http://$HOST:$PORT" "${records[@]}" <<'PY'
import json
import sys

from cmhash.tracking import runs_page_url

base, *records = sys.argv[1:]
for path in records:
    record = json.load(open(path))
    if not record.get("experiment_id"):
        continue
    uri = record.get("tracking_uri", "")
    server = uri if uri.startswith(("http://", "https://")) else base  # a server's experiments: its own UI
    print(f"{record['experiment']}: {runs_page_url(server, record['experiment_id'])}")
PY
exec .venv/bin/mlflow ui --backend-store-uri "sqlite:///$PWD/results/mlflow.db" --host "$HOST" --port "$PORT"
