"""MLflow tracking: the only module that imports mlflow.

The files a stage writes are the source of truth; MLflow mirrors them for browsing. Every call
here is guarded: a tracking failure (a locked SQLite file, an unreachable server) emits a
warning and disables tracking for the rest of the job, never losing the cell's results.

The store is ``MLFLOW_TRACKING_URI`` when set (e.g. an ``mlflow server`` on a cluster), else a
SQLite file (``results/mlflow.db`` by default).
"""
from __future__ import annotations

import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

RETRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"}


def tracking_uri(default_db: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<absolute default_db>``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(default_db).resolve()}"


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit of the project (``unknown`` outside a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _mlflow(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow


def ensure_experiment(uri: str, name: str) -> str:
    """Create the experiment once (before the parallel training jobs) and return its id."""
    mlflow = _mlflow(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # created concurrently by another process
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


class RunTracker:
    """Mirror one cell into one MLflow run. Never raises after construction."""

    def __init__(self, uri: str, experiment: str, run_name: str, run_id: str | None = None) -> None:
        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        self.run_id: str | None = run_id
        self.enabled = True
        self.retries = 0  # failed calls that were retried (e.g. a SQLite store locked by another writer)
        self._client = None
        self._guard("start", self._start)

    def _guard(self, what: str, fn, *args: Any, attempts: int = 4) -> Any:
        """Call ``fn``, retrying with back-off (concurrent writers can briefly lock a SQLite
        store); after the last failure warn and disable tracking for this job."""
        if not self.enabled:
            return None
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                return fn(*args)
            except Exception as exc:  # tracking must never lose a cell's results
                error = exc
                if attempt + 1 < attempts:
                    self.retries += 1
                    time.sleep(0.25 * 2**attempt)
        warnings.warn(f"MLflow {what} failed ({type(error).__name__}: {error}); tracking disabled for this job, "
                      f"the output files remain the source of truth", RuntimeWarning, stacklevel=3)
        self.enabled = False
        return None

    def _start(self) -> None:
        mlflow = _mlflow(self.uri)
        self._client = mlflow.MlflowClient(self.uri)
        if self.run_id is None:
            experiment_id = ensure_experiment(self.uri, self.experiment)
            run = self._client.create_run(experiment_id, run_name=self.run_name)
            self.run_id = run.info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self._guard("log_params", lambda: self._client.log_batch(
            self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]))

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._guard("set_tags", lambda: self._client.log_batch(
            self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()]))

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        import math
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_metric_key(k), float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and math.isfinite(float(v))]
        for i in range(0, len(items), 900):
            self._guard("log_metrics", lambda chunk=items[i:i + 900]: self._client.log_batch(self.run_id, metrics=chunk))

    def log_artifact(self, path: str | Path) -> None:
        self._guard("log_artifact", lambda: self._client.log_artifact(self.run_id, str(path)))

    def finish(self, status: str = "FINISHED") -> None:
        self._guard("finish", lambda: self._client.set_terminated(self.run_id, status))


def _metric_key(key: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``; map anything else to ``_``."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)


def find_runs(uri: str, experiment: str) -> list[dict[str, Any]]:
    """All runs of ``experiment`` as dicts (params, tags, metrics), for tests and reports."""
    mlflow = _mlflow(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], max_results=50000)
    return [{"run_id": r.info.run_id, "status": r.info.status, "params": dict(r.data.params),
             "tags": dict(r.data.tags), "metrics": dict(r.data.metrics)} for r in runs]
