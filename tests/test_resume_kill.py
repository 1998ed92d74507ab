"""A training process SIGKILLed after a checkpoint, then restarted, ends exactly where an
uninterrupted run ends (CPU): same codes, history, selected epoch, metrics, one MLflow run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cmhash.data.canonical import write_dataset
from cmhash.pipeline import stage_noise
from tests.helpers import REPO, clustered_dataset

EPOCHS = 8
BLOCK_AT = 5  # the process trains epochs 0-4, saves checkpoints up to next_epoch=4, then is killed before saving 5

CFG = {
    "experiment": "resume-kill", "device": "cpu", "threads": 1, "datasets": {"tiny": {"source": "embedded"}},
    "training": {"checkpoint_every": 1, "progress": False},
    "evaluation": {"ties": "stable", "precision_at": [1, 10]},
    "methods": {"nrch": {"epochs": EPOCHS, "eval_every": 3, "batch_size": 32, "warmup_epochs": 3,
                         "image_hidden": [64], "text_hidden": [32], "lr": 1e-3}},
}

# Trains one cell with cmhash.pipeline.stage_train, as the workflow's train job does. With
# BLOCK_AT set it stops, the moment it would save that checkpoint, to be killed: by then it
# has trained one epoch past the checkpoint on disk (weights, RNG, best-so-far all moved on).
DRIVER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    import cmhash.train
    from cmhash.config import Cell
    from cmhash.pipeline import stage_train

    cfg, dataset_dir, noise_dir, out, uri = json.loads(sys.argv[1]), *sys.argv[2:6]
    block = int(os.environ.get("BLOCK_AT", "0"))
    if block:
        save = cmhash.train.Trainer._save_checkpoint

        def save_or_hold(self, next_epoch, state):
            if next_epoch == block:
                Path(out, "holding").write_text(str(next_epoch))
                time.sleep(3600)  # until SIGKILL
            save(self, next_epoch, state)

        cmhash.train.Trainer._save_checkpoint = save_or_hold
    cell = Cell("tiny", "nrch", "nrch", 0.4, 16, 0, "sound")
    stage_train(cfg, cell, dataset_dir, noise_dir, out, tracking_uri=uri)
""")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_dataset(root / "dataset", clustered_dataset(n=300, n_train=220, n_validation=40))
    stage_noise(root / "dataset", "nrch", 0.4, 0, root / "noise")
    return root


def train(root: Path, out: Path, uri: str, block: int = 0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    env.pop("BLOCK_AT", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri in an earlier test may have set it
    if block:
        env["BLOCK_AT"] = str(block)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(CFG), str(root / "dataset"), str(root / "noise"),
                             str(out), uri], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-4000:]


def test_killed_and_restarted_training_equals_an_uninterrupted_run(prepared, monkeypatch):
    from cmhash.pipeline import stage_evaluate
    from cmhash.tracking import find_runs

    # stage_evaluate prefers MLFLOW_TRACKING_URI; mlflow.set_tracking_uri (earlier tests) sets it
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    root = prepared
    uri = f"sqlite:///{root / 'mlflow.db'}"
    whole, interrupted = root / "whole", root / "interrupted"
    finish(train(root, whole, uri))

    proc = train(root, interrupted, uri, block=BLOCK_AT)
    deadline = time.monotonic() + 300
    while not (interrupted / "holding").exists():
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the training process never reached the checkpoint to be killed at"
        time.sleep(0.1)
    checkpoint = torch.load(interrupted / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert checkpoint["next_epoch"] == BLOCK_AT - 1  # the last one written before the kill
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (interrupted / "train.json").exists() and not (interrupted / "codes").exists()

    finish(train(root, interrupted, uri))  # the same command again, as `snakemake --rerun-incomplete` would
    record, reference = (json.loads((d / "train.json").read_text()) for d in (interrupted, whole))
    assert record["resumed_from"] == BLOCK_AT - 1 and reference["resumed_from"] is None
    assert record["selected_epoch"] == reference["selected_epoch"]
    assert record["selection_score"] == reference["selection_score"]
    codes = sorted(p.name for p in (whole / "codes").iterdir())
    assert codes == ["database_image.npy", "database_text.npy", "query_image.npy", "query_text.npy"]
    for name in codes:
        assert np.array_equal(np.load(interrupted / "codes" / name), np.load(whole / "codes" / name)), name
    # every per-epoch loss, diagnostic and selection mAP, bit for bit
    assert (interrupted / "history.csv").read_text() == (whole / "history.csv").read_text()

    cfg = dict(CFG)
    metrics = [stage_evaluate(cfg, root / "dataset", d) for d in (interrupted, whole)]
    assert metrics[0]["directions"] == metrics[1]["directions"]
    # the restarted job reopened its MLflow run instead of starting a second one
    runs = {r["run_id"]: r for r in find_runs(uri, CFG["experiment"])}
    assert set(runs) == {record["mlflow_run_id"], reference["mlflow_run_id"]}
    for r in runs.values():  # each got its final metrics from the evaluation
        assert r["status"] == "FINISHED" and "i2t/map" in r["metrics"]
    assert runs[record["mlflow_run_id"]]["metrics"]["i2t/map"] == runs[reference["mlflow_run_id"]]["metrics"]["i2t/map"]
