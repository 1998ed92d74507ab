"""MLflow tracking: the only module that imports mlflow.

The files a stage writes are the source of truth; MLflow mirrors them for browsing. Every call
here is guarded: a tracking failure (a locked SQLite file, an unreachable server) emits a
warning and disables tracking for the rest of the job, never losing the cell's results.

The store is ``MLFLOW_TRACKING_URI`` when set (e.g. an ``mlflow server`` on a cluster), else a
SQLite file (``results/mlflow.db`` by default).

What the MLflow UI shows (``mlflow ui --backend-store-uri sqlite:///results/mlflow.db``):

- Experiments carry ``mlflow.experimentKind = custom_model_development``, MLflow 3's tag for a
  model-training (not GenAI) experiment. MLflow 3.17's UI chooses the page from its sidebar
  switch instead (remembered by the browser, GenAI at first): :func:`runs_page_url` is a link
  that sets it and opens the runs table in the experiment's saved view (:func:`runs_view_state`:
  the headline mAP columns).
- A SQLite store's experiments keep their artifacts beside the database (``results/mlartifacts/``),
  not in ``./mlruns`` under the working directory; behind ``mlflow server`` the server decides
  (its ``--artifacts-destination``).
- Each run logs the cell's training data as an MLflow dataset input (:meth:`RunTracker.log_dataset`),
  which fills the runs table's dataset column.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cmhash.io import file_sha256

RETRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"}
#: MLflow 3's experiment-kind tag: without it the UI infers a kind and may open the GenAI view
#: (traces, sessions); ``custom_model_development`` is the value MLflow's UI writes for an
#: experiment marked "machine learning" (model training).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
#: Where a SQLite store's artifacts go: this folder beside the database file.
ARTIFACTS_DIR = "mlartifacts"
#: The experiment's saved runs-table view (MLflow UI "Views" list, ``viewStateShareKey`` in a link):
#: the headline mAP columns (``<direction>/map``, as stage_evaluate logs them: i2t and t2i, or
#: fused) beside run name and dataset, the run name column wide enough for the whole name.
RUNS_VIEW_KEY = "cmhash-runs"
RUNS_VIEW_NAME = "cmhash: mAP"
SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
HEADLINE_METRICS = ("i2t/map", "t2i/map", "fused/map")


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


def artifact_location(uri: str, name: str) -> str | None:
    """The artifact location of experiment ``name`` in the store ``uri``.

    A SQLite store keeps it beside the database, ``<db folder>/mlartifacts/<name>`` (so the
    default ``results/mlflow.db`` puts artifacts under ``results/``). Any other store (``mlflow
    server``, whose ``--artifacts-destination`` decides; a file store) gets ``None``: the
    server's or the store's default."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).resolve()
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "experiment"
    return (db.parent / ARTIFACTS_DIR / folder).as_uri()


def runs_view_state() -> dict[str, Any]:
    """The state of the saved runs-table view, in the MLflow UI's own form (what its "Save view"
    button stores): the columns shown, their order and widths. A UI that does not know the
    form ignores it."""
    metrics = [f"metrics.`{m}`" for m in HEADLINE_METRICS]
    run_name, dataset = "attributes.`Run Name`", "attributes.`Dataset`"
    return {"selectedColumns": [*metrics, dataset],
            "columnOrder": [run_name, *metrics, dataset, "runDateAndNestInfo", "duration"],
            "columnWidths": {run_name: 300, dataset: 260}}


def _runs_view_tag(previous: str | None = None) -> str | None:
    """The saved view's tag value; ``None`` when ``previous`` already holds the same state."""
    state = json.dumps(runs_view_state(), sort_keys=True)
    now = int(time.time() * 1000)
    created = now
    if previous:
        try:
            old = json.loads(previous)
            if old.get("state") == state:
                return None
            created = int(old.get("createdAt", now))
        except (ValueError, TypeError, AttributeError):
            pass
    return json.dumps({"name": RUNS_VIEW_NAME, "createdAt": created, "updatedAt": now, "state": state})


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table in the MLflow UI at ``base_url``, in the saved view.

    ``workflowType=machine_learning`` sets the UI's GenAI / Model training switch: MLflow 3.17
    decides the page from that switch (the browser remembers the user's choice, default GenAI)
    and not from the experiment's kind tag."""
    return (f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?viewStateShareKey={RUNS_VIEW_KEY}&workflowType=machine_learning")


def ensure_experiment(uri: str, name: str) -> str:
    """Create the experiment once (before the parallel training jobs) and return its id.

    A new experiment gets its :func:`artifact_location`, the model-training kind tag and the
    saved runs-table view; an existing one gets the tags it lacks (or an outdated view), but
    keeps its artifact location (MLflow cannot move it)."""
    mlflow = _mlflow(uri)
    client = mlflow.MlflowClient(uri)
    view_tag = SAVED_VIEW_TAG_PREFIX + RUNS_VIEW_KEY
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        view = _runs_view_tag(experiment.tags.get(view_tag))
        if view is not None:
            client.set_experiment_tag(experiment.experiment_id, view_tag, view)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri, name),
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING, view_tag: _runs_view_tag()})
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

    def log_dataset(self, name: str, source: str | Path, features: dict[str, np.ndarray], targets: np.ndarray,
                    targets_file: str | Path | None, source_files: dict[str, str] | None = None,
                    context: str = "training") -> None:
        """Log the data a run trained on as an MLflow dataset input (the runs table's dataset
        column, the run page's dataset drawer).

        Built with ``mlflow.data.from_numpy`` (its schema and shapes), with ``source`` the data's
        folder, the digest the first 12 hex digits of ``targets_file``'s SHA-256 (the noisy
        labels: two runs trained on the same labels show the same digest; without a file, of the
        ``targets`` bytes), and a profile that
        adds that full SHA-256 and the SHA-256 of each file the data was built from
        (``source_files``, as in the dataset's ``meta.json``)."""
        self._guard("log_dataset", self._log_dataset, name, source, features, targets, targets_file,
                    source_files or {}, context)

    def _log_dataset(self, name: str, source: str | Path, features: dict[str, np.ndarray], targets: np.ndarray,
                     targets_file: str | Path | None, source_files: dict[str, str], context: str) -> None:
        import mlflow.data
        from mlflow.entities import Dataset, DatasetInput, InputTag

        # no file: a label-free cell, whose labels are the clean ones of the dataset (never read)
        sha = file_sha256(targets_file) if targets_file is not None else hashlib.sha256(targets.tobytes()).hexdigest()
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": both are local files
            warnings.simplefilter("ignore", UserWarning)
            data = mlflow.data.from_numpy(features, source=Path(source).resolve().as_uri(), targets=targets,
                                          name=name, digest=sha[:12]).to_dict()
        shapes = {k: v for k, v in json.loads(data["profile"]).items() if k.endswith("_shape")}
        profile = {"rows": len(targets), "labels_sha256": sha, **shapes, "source_files": len(source_files),
                   **{f"sha256 {k}": v for k, v in sorted(source_files.items())}}
        entity = Dataset(name=data["name"], digest=data["digest"], source_type=data["source_type"],
                         source=data["source"], schema=data["schema"], profile=json.dumps(profile))
        self._client.log_inputs(self.run_id, datasets=[DatasetInput(entity, tags=[
            InputTag("mlflow.data.context", context)])])

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
    return [{"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status,
             "artifact_uri": r.info.artifact_uri, "params": dict(r.data.params), "tags": dict(r.data.tags),
             "metrics": dict(r.data.metrics),
             "datasets": [{"name": d.dataset.name, "digest": d.dataset.digest, "source": d.dataset.source,
                           "profile": json.loads(d.dataset.profile or "{}"),
                           "tags": {t.key: t.value for t in d.tags}} for d in (r.inputs.dataset_inputs if r.inputs else [])]}
            for r in runs]


def experiment_info(uri: str, experiment: str) -> dict[str, Any] | None:
    """The experiment's id, artifact location and tags (``None`` when it does not exist)."""
    client = _mlflow(uri).MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    return {"experiment_id": exp.experiment_id, "artifact_location": exp.artifact_location, "tags": dict(exp.tags)}
