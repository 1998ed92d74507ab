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
