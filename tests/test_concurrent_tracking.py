"""Many training jobs logging to MLflow at once, as on a cluster: every run started must be
recorded with all its parameters and metrics, against (a) one SQLite file shared by all the
writers and (b) an ``mlflow server`` (the recommended set-up on a cluster)."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

import cmhash.tracking  # noqa: F401

pytestmark = pytest.mark.integration  # 8 writer processes per store and an mlflow server

N_WORKERS = 8
N_STEPS = 50  # metric steps per run (two metrics per step, one write each)
N_PARAMS = 10
EXPERIMENT = "concurrency"


def _worker(uri: str, index: int, barrier, results) -> None:
    from cmhash.tracking import RunTracker

    barrier.wait(timeout=120)  # every process imported mlflow; now all write at once
    tracker = RunTracker(uri, EXPERIMENT, f"worker-{index}")
    tracker.log_params({f"p{k}": f"{index}-{k}" for k in range(N_PARAMS)})
    tracker.set_tags({"worker": index})
    for step in range(N_STEPS):
        tracker.log_metrics({"loss/total": 1.0 / (step + 1) + index, "select_map/i2t": step / N_STEPS}, step)
    tracker.finish()
    results.put((index, tracker.run_id, tracker.enabled, tracker.retries))


def _create_experiment(uri: str) -> None:
    from cmhash.tracking import ensure_experiment

    ensure_experiment(uri, EXPERIMENT)


def run_concurrently(uri: str) -> tuple[list[tuple[int, str | None, bool, int]], dict[str, dict]]:
    """Start N_WORKERS processes logging one run each; return what they report and what the store holds.

    Processes are forked from this one, which has imported mlflow but opened no store (mlflow
    caches stores per URI, and a forked SQLite connection must not be shared), so they start
    fast and really write at the same time."""
    ctx = mp.get_context("fork")
    # the workflow creates the experiment once before the jobs (rule mlflow_experiment)
    setup = ctx.Process(target=_create_experiment, args=(uri,))
    setup.start()
    setup.join(timeout=120)
    assert setup.exitcode == 0
    barrier, results = ctx.Barrier(N_WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(uri, i, barrier, results)) for i in range(N_WORKERS)]
    for p in procs:
        p.start()
    reported = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return reported, stored_runs(uri)


def stored_runs(uri: str) -> dict[str, dict]:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    out = {}
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        rid = run.info.run_id
        out[rid] = {"status": run.info.status, "params": dict(run.data.params), "tags": dict(run.data.tags),
                    "history": {key: sorted((m.step, m.value) for m in client.get_metric_history(rid, key))
                                for key in ("loss/total", "select_map/i2t")}}
    return out


def check_all_recorded(reported, stored, store: str) -> None:
    started = [r for r in reported if r[1] is not None]
    print(f"\n{store}: {N_WORKERS} runs started, {len(started)} created, "
          f"{sum(1 for r in reported if r[2])} with tracking still enabled at the end, {len(stored)} recorded, "
          f"{sum(r[3] for r in reported)} calls retried, "
          f"{sum(len(h) for s in stored.values() for h in s['history'].values())} metric values recorded "
          f"of {N_WORKERS * N_STEPS * 2}")
    assert all(r[2] for r in reported), f"{store}: a worker disabled tracking after failures"
    assert len(started) == N_WORKERS and len(stored) == N_WORKERS
    for index, run_id, _, _ in reported:
        run = stored[run_id]
        assert run["status"] == "FINISHED"
        assert run["params"] == {f"p{k}": f"{index}-{k}" for k in range(N_PARAMS)}
        assert run["tags"]["worker"] == str(index)
        assert [s for s, _ in run["history"]["loss/total"]] == list(range(N_STEPS))
        assert [s for s, _ in run["history"]["select_map/i2t"]] == list(range(N_STEPS))
        assert run["history"]["loss/total"][-1][1] == pytest.approx(1.0 / N_STEPS + index)


def test_concurrent_writers_on_one_sqlite_file_lose_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    reported, stored = run_concurrently(uri)
    check_all_recorded(reported, stored, "sqlite")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A local ``mlflow server`` on a free port, stopped (its whole process group) afterwards."""
    port, log_path = _free_port(), tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                                 "--artifacts-destination", str(tmp_path / "artifacts")],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # bounded wait for the server to answer
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mlflow server exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"mlflow server not up after 180 s: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def test_concurrent_writers_through_an_mlflow_server_lose_nothing(mlflow_server, tmp_path):
    reported, stored = run_concurrently(mlflow_server)
    check_all_recorded(reported, stored, "mlflow server")
    # artifacts go through the server too (the jobs upload config.json / history.csv)
    from cmhash.tracking import RunTracker

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n")
    tracker = RunTracker(mlflow_server, EXPERIMENT, "artifact", run_id=reported[0][1])
    tracker.log_artifact(path)
    assert tracker.enabled
    assert list(Path(tmp_path / "artifacts").rglob("history.csv"))
