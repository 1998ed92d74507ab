"""MLflow mirroring: runs, params, metrics; failures never raise."""
import warnings

import pytest

from cmhash.tracking import RunTracker, ensure_experiment, find_runs


def test_run_round_trip(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = ensure_experiment(uri, "unit")
    assert ensure_experiment(uri, "unit") == exp  # idempotent
    tracker = RunTracker(uri, "unit", "cell-a")
    tracker.log_params({"method": "baseline", "rate": 0.5})
    tracker.set_tags({"protocol": "sound"})
    for step in range(3):
        tracker.log_metrics({"loss/total": 1.0 / (step + 1), "select/auc": float("nan")}, step)
    tracker.finish()
    (run,) = find_runs(uri, "unit")
    assert run["params"] == {"method": "baseline", "rate": "0.5"}
    assert run["tags"]["protocol"] == "sound" and run["status"] == "FINISHED"
    assert run["metrics"]["loss/total"] == pytest.approx(1 / 3)
    assert "select/auc" not in run["metrics"]  # non-finite values are not logged
    # reopening the same run (a resumed job) adds to it instead of creating another
    again = RunTracker(uri, "unit", "cell-a", run_id=run["run_id"])
    again.log_metrics({"i2t/map": 0.7})
    (run,) = find_runs(uri, "unit")
    assert run["metrics"]["i2t/map"] == 0.7


def test_unreachable_store_warns_and_disables(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the store's folder should be")
        tracker = RunTracker(f"sqlite:///{blocker / 'mlflow.db'}", "unit", "cell")
        tracker.log_metrics({"loss": 1.0})
        tracker.finish()
    assert not tracker.enabled
    assert any("tracking disabled" in str(w.message) for w in caught)


def test_experiment_opens_as_model_training_with_artifacts_beside_the_store(tmp_path):
    """MLflow 3's UI reads `mlflow.experimentKind` (else it may open the GenAI view); a SQLite
    store keeps artifacts beside itself (results/mlartifacts), not in ./mlruns; the saved
    runs-table view shows the headline mAP columns."""
    import json

    from cmhash.tracking import (
        EXPERIMENT_KIND_TAG,
        HEADLINE_METRICS,
        MODEL_TRAINING,
        RUNS_VIEW_KEY,
        SAVED_VIEW_TAG_PREFIX,
        artifact_location,
        experiment_info,
        runs_page_url,
    )

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_experiment(uri, "unit test/1")
    info = experiment_info(uri, "unit test/1")
    assert info["tags"][EXPERIMENT_KIND_TAG] == MODEL_TRAINING == "custom_model_development"
    assert info["artifact_location"] == (tmp_path / "mlartifacts" / "unit_test_1").as_uri()
    view = json.loads(info["tags"][SAVED_VIEW_TAG_PREFIX + RUNS_VIEW_KEY])
    state = json.loads(view["state"])
    assert {f"metrics.`{m}`" for m in HEADLINE_METRICS} <= set(state["selectedColumns"])
    ensure_experiment(uri, "unit test/1")  # idempotent: the same view is not rewritten
    assert experiment_info(uri, "unit test/1")["tags"] == info["tags"]

    tracker = RunTracker(uri, "unit test/1", "cell")
    (tmp_path / "note.txt").write_text("x")
    tracker.log_artifact(tmp_path / "note.txt")
    assert (tmp_path / "mlartifacts" / "unit_test_1" / tracker.run_id / "artifacts" / "note.txt").is_file()
    assert not (tmp_path / "mlruns").exists()
    assert artifact_location("http://server:5000", "x") is None  # the server's --artifacts-destination decides
    assert runs_page_url("http://127.0.0.1:5000/", "3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs?viewStateShareKey=cmhash-runs&workflowType=machine_learning")


def test_an_existing_experiment_gets_the_kind_tag(tmp_path):
    import mlflow

    from cmhash.tracking import EXPERIMENT_KIND_TAG, experiment_info

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).create_experiment("old", artifact_location=(tmp_path / "elsewhere").as_uri())
    ensure_experiment(uri, "old")
    info = experiment_info(uri, "old")
    assert info["tags"][EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert info["artifact_location"] == (tmp_path / "elsewhere").as_uri()  # MLflow cannot move it


def test_dataset_input_names_the_data_and_its_checksums(tmp_path):
    import hashlib

    import numpy as np

    noisy = np.eye(4, dtype=np.uint8)[[0, 1, 2, 3, 1]]
    np.save(tmp_path / "noisy_labels.npy", noisy)
    sha = hashlib.sha256((tmp_path / "noisy_labels.npy").read_bytes()).hexdigest()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = RunTracker(uri, "unit", "cell")
    tracker.log_dataset("tiny/nrch-0.5/seed0", tmp_path, {"image": np.zeros((5, 3), np.float32),
                                                         "text": np.zeros((5, 2), np.float32)},
                        noisy, tmp_path / "noisy_labels.npy", {"raw/labels.txt": "ab" * 32})
    assert tracker.enabled
    (run,) = find_runs(uri, "unit")
    (dataset,) = run["datasets"]
    assert dataset["name"] == "tiny/nrch-0.5/seed0" and dataset["digest"] == sha[:12]
    assert tmp_path.as_uri() in dataset["source"]
    assert dataset["profile"]["labels_sha256"] == sha and dataset["profile"]["rows"] == 5
    assert dataset["profile"]["sha256 raw/labels.txt"] == "ab" * 32
    assert dataset["profile"]["features_shape"] == {"image": [5, 3], "text": [5, 2]}
    assert dataset["tags"] == {"mlflow.data.context": "training"}
