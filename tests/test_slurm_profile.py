"""The SLURM profile without a cluster: the real executor plugin submits to fake SLURM tools
(tests/fake_slurm.py) that run each job locally; we check what was asked of SLURM per rule,
that a job failing on its first attempt is resubmitted with more memory and time, and that
the jobs inherit MLFLOW_TRACKING_URI. tests/test_slurm_real.py runs the profile on a real
single-node SLURM cluster (root and CMHASH_TEST_SLURM=1 only); this test also covers what that one
cannot, the GPU request."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fake_slurm import install
from tests.helpers import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm")
    work = root / "work"
    work.mkdir()
    for item in ("Snakefile", "workflow", "config", "profiles", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    # config/test.yaml cut to one cell, to keep the run short (every job starts Snakemake twice)
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg["grid"].update(noise_rates=[0.5], protocols=["sound"])
    (work / "config/slurm_test.yaml").write_text(yaml.safe_dump(cfg))
    install(root / "bin", root / "state")
    tracking = f"sqlite:///{root / 'tracking' / 'mlflow.db'}"
    (root / "tracking").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(PATH=os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]),
               FAKE_SLURM_DIR=str(root / "state"), FAKE_SLURM_FAIL_FIRST="train", MLFLOW_TRACKING_URI=tracking)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
                           "--configfile", "config/slurm_test.yaml",
                           # poll the fake queue every second instead of the cluster-friendly 40 s
                           "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    jobs = [json.loads(p.read_text()) for p in (root / "state" / "jobs").glob("*.json")]
    calls = [json.loads(line) for line in (root / "state" / "calls.jsonl").read_text().splitlines()]
    return work, sorted(jobs, key=lambda j: j["id"]), calls, tracking


def by_rule(jobs, rule):
    return [j for j in jobs if j["rule"] == rule]


def test_every_submitted_rule_and_only_those(slurm_run):
    work, jobs, _, _ = slurm_run
    rules = sorted(j["rule"] for j in jobs)
    # mlflow_experiment is a local rule (the login node creates the experiment once) and `all` has no job
    assert rules == sorted(["generate_embedded", "prepare", "image_features", "text_features", "assemble_dataset",
                            "noise", "train", "train", "evaluate", "report"])
    names = {j["name"] for j in jobs}
    assert len(names) == 1  # one run id as the job name, which sacct/squeue filter on
    for j in jobs:
        o = j["options"]
        assert "--parsable" in o and o["--export"] == "ALL"
        assert o["-A"] == "my_account" and o["-D"] == str(work)
        assert "%j" in o["--output"]
    assert (work / "results/report/tables.tex").is_file()


def test_gpu_rules_ask_for_one_gpu_on_the_gpu_partition(slurm_run):
    _, jobs, calls, _ = slurm_run
    (image,) = by_rule(jobs, "image_features")
    assert image["options"]["-p"] == "gpu" and image["options"]["--gpus"] == "1"
    assert image["options"]["--mem"] == "32000" and image["options"]["-t"] == "120"
    assert image["options"]["--cpus-per-task"] == "4"
    for j in by_rule(jobs, "train"):
        o = j["options"]
        assert o["-p"] == "gpu" and o["--gpus"] == "1" and o["--cpus-per-task"] == "4"
        assert "--ntasks" not in o
    # the job step inside the allocation asks srun for the GPU as well
    train_steps = [c for c in calls if c["tool"] == "srun" and any("--allowed-rules" == a for a in c["argv"])
                   and "train" in c["argv"][c["argv"].index("--allowed-rules") + 1]]
    assert train_steps and all("--gpus=1" in c["argv"] for c in train_steps)


def test_cpu_rules_get_the_default_partition_and_their_own_sizes(slurm_run):
    _, jobs, _, _ = slurm_run
    expected = {  # rule: (memory MB, minutes), from profiles/slurm/config.yaml
        "generate_embedded": ("2000", "30"), "prepare": ("8000", "60"), "text_features": ("8000", "60"),
        "assemble_dataset": ("8000", "30"), "noise": ("2000", "30"), "evaluate": ("4000", "30"),
        "report": ("4000", "30")}
    for rule, (mem, minutes) in expected.items():
        (job,) = by_rule(jobs, rule)
        o = job["options"]
        assert (o["-p"], o["--mem"], o["-t"]) == ("cpu", mem, minutes), rule
        assert "--gpus" not in o and o["--ntasks"] == "1", rule


def test_a_failed_training_job_is_retried_with_more_memory_and_time(slurm_run):
    work, jobs, _, _ = slurm_run
    first, second = by_rule(jobs, "train")
    assert first["state"] == "OUT_OF_MEMORY" and second["state"] == "COMPLETED"
    assert (first["options"]["--mem"], first["options"]["-t"]) == ("16000", "240")
    assert (second["options"]["--mem"], second["options"]["-t"]) == ("32000", "480")  # attempt 2
    run = work / "results/runs/embedded/baseline/nrch-0.5/bits16/seed0/sound"
    record = json.loads((run / "train.json").read_text())
    assert record["visible_devices"] == "0"  # the GPU SLURM gave the job
    assert json.loads((run / "metrics.json").read_text())["directions"]


def test_jobs_inherit_the_tracking_server_address(slurm_run):
    from cmhash.tracking import find_runs

    work, _, _, tracking = slurm_run
    run = work / "results/runs/embedded/baseline/nrch-0.5/bits16/seed0/sound"
    assert json.loads((run / "mlflow_run.json").read_text())["tracking_uri"] == tracking
    assert not (work / "results/mlflow.db").exists()  # nothing fell back to the default store
    (mlrun,) = find_runs(tracking, "cmhash-test")
    assert mlrun["status"] == "FINISHED"
    assert mlrun["tags"]["visible_devices"] == "0"
    assert "loss/total" in mlrun["metrics"] and "i2t/map" in mlrun["metrics"]
