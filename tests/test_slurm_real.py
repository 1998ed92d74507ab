"""The SLURM profile against a real single-node SLURM cluster (tests/slurm_cluster.py): munged,
MariaDB, slurmdbd, slurmctld and slurmd on this machine, and a real ``mlflow server`` on
127.0.0.1, as the README's cluster section sets them up.

``config/test.yaml`` runs through ``snakemake --profile profiles/slurm``, the shipped profile with
its ``EDIT`` values pointed at the local cluster (the account; its partitions are called ``cpu``
and ``gpu`` as in the profile) and two overrides that this machine needs:

- no GPU request (``gpu: 0`` for ``train`` and ``image_features``): SLURM 22.05 takes a GPU GRES
  only with a device file (slurmd ignores a file-less ``gpu`` and drains the node), and there is
  no GPU here. The jobs still go to the ``gpu`` partition with the profile's CPUs, memory and time;
  the shipped profile's ``gpu: 1`` is checked as text;
- ``train`` asks for 3000 MB (times the attempt) instead of 16000, so that a training job can
  really go past its request on this machine.

It asserts, from ``sacct``: every job ran as a SLURM job and COMPLETED with the partition,
memory, time limit and CPUs of the profile, except one training job made to exceed its memory
(``CMHASH_TEST_EXCEED_MEMORY``, see cmhash.fault_injection). SLURM kills that one
(``jobacct_gather/linux`` with ``OverMemoryKill``, no cgroups); Snakemake's retry resubmits it
with twice the memory and time, and the workflow completes. The MLflow runs of all cells,
with every per-epoch metric and the artifacts, arrive through the server.

Runs only with ``CMHASH_TEST_SLURM=1`` (``.ci/run`` sets it) and as root; it writes
``/etc/slurm/slurm.conf`` (and maybe an ``/etc/hosts`` line) and restores them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO
from tests.slurm_cluster import (
    ACCOUNT,
    SLURM_CONF,
    LocalCluster,
    foreign_config,
    free_port,
    missing_software,
)

pytestmark = pytest.mark.integration


def _skip_reason() -> str | None:
    if os.environ.get("CMHASH_TEST_SLURM") != "1":
        return "starts a real SLURM cluster as root: set CMHASH_TEST_SLURM=1 (.ci/run does)"
    if os.geteuid() != 0:
        return "starts SLURM's daemons and writes /etc/slurm/slurm.conf: must run as root"
    return None


if _skip_reason():
    pytestmark = [pytestmark, pytest.mark.skip(reason=_skip_reason())]

CONFIG = "config/test.yaml"
EXCEEDED = "results/runs/embedded/baseline/nrch-0.5/bits16/seed0/sound"  # the cell whose training goes past its memory
TRAIN_MEM = "3000 * attempt"
WORKFLOW_TIMEOUT = 540  # seconds: a broken cluster fails the test instead of hanging CI
SACCT_FIELDS = ("JobID", "JobName", "Partition", "Account", "ReqMem", "Timelimit", "ReqCPUS", "AllocTRES", "State",
                "Comment")


def local_profile(shipped: dict) -> dict:
    """The shipped profile with its EDIT values pointed at the local cluster, and this machine's overrides."""
    profile = json.loads(json.dumps(shipped))
    profile["default-resources"]["slurm_account"] = ACCOUNT
    for rule in ("train", "image_features"):
        profile["set-resources"][rule]["gpu"] = 0  # no GPU GRES without a device (see the docstring)
    profile["set-resources"]["train"]["mem_mb"] = TRAIN_MEM
    return profile


def expected_request(profile: dict, rule: str, attempt: int) -> dict[str, str]:
    """What sacct should show for ``rule``'s job at ``attempt`` under ``profile``."""
    own = profile["set-resources"].get(rule, {})
    default = profile["default-resources"]

    def value(key):
        return int(eval(str(own.get(key, default[key])), {}, {"attempt": attempt}))  # e.g. "16000 * attempt"

    minutes = value("runtime")
    days, rest = divmod(minutes, 24 * 60)
    limit = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return {"Partition": own.get("slurm_partition", default["slurm_partition"]), "Account": ACCOUNT,
            "ReqMem": f"{value('mem_mb')}M", "Timelimit": f"{days}-{limit}" if days else limit,
            "ReqCPUS": str(profile.get("set-threads", {}).get(rule, 1))}


def _start_mlflow(root: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` as the README starts it, on 127.0.0.1 and a free port (its own session)."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
    # MLflow's job runner (GenAI jobs, a pool of worker processes) is not needed to track runs
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(root / "mlflow-server.log", "w") as log:
        server = subprocess.Popen([*cmd, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                                   "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
                                   "--port", str(port), "--allowed-hosts", f"127.0.0.1:{port},localhost:*",
                                   "--workers", "1"],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  start_new_session=True)
    return server, f"http://127.0.0.1:{port}"


def _wait_for_mlflow(server: subprocess.Popen, uri: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlflow server not answering after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, with whatever it spawned (the server's workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    try:  # the group may outlive its leader (uvicorn under the mlflow CLI)
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def sacct(cluster: LocalCluster, *args: str) -> list[dict[str, str]]:
    out = subprocess.run(["sacct", "-P", "-n", "-S", "2000-01-01", *args], capture_output=True, text=True,
                         timeout=30, env=cluster.env, check=True).stdout
    return [dict(zip(SACCT_FIELDS, line.split("|", len(SACCT_FIELDS) - 1))) for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def slurm_run():
    if foreign_config() is not None:
        pytest.fail(f"refusing to run: {SLURM_CONF} exists and was not written by this test")
    missing = missing_software()
    if missing:
        pytest.fail(f"CMHASH_TEST_SLURM=1 but not installed: {', '.join(missing)} "
                    "(apt-get install slurm-wlm munge slurmdbd mariadb-server; .ci/run does)")
    started = time.monotonic()
    # not pytest's temporary folder: the daemons' users must reach it, and other pytest runs
    # of this user prune old ones
    root = Path(tempfile.mkdtemp(prefix="cmhash-slurm-real-"))
    root.chmod(0o755)
    work = root / "work"
    work.mkdir()
    for item in ("Snakefile", "workflow", "config", "profiles", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    shipped = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile = local_profile(shipped)
    (work / "profiles/slurm/config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    server, uri = _start_mlflow(root)  # starts while the cluster does
    cluster = LocalCluster(root / "cluster")
    keep = os.environ.get("CMHASH_TEST_SLURM_KEEP") == "1"
    try:
        cluster.start()
        _wait_for_mlflow(server, uri, root / "mlflow-server.log")
        env = {k: v for k, v in cluster.env.items() if k not in ("CUDA_VISIBLE_DEVICES", "MLFLOW_TRACKING_URI")}
        env.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]]),
                   # the jobs import this checkout's library (sbatch --export=ALL passes the variable on)
                   PYTHONPATH=os.pathsep.join(p for p in [str(REPO / "src"), env.get("PYTHONPATH", "")] if p),
                   MLFLOW_TRACKING_URI=uri, CMHASH_TEST_EXCEED_MEMORY=EXCEEDED)
        ready = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
                                   "--configfile", CONFIG,
                                   # status checks 3, 16, 39, ... s after a job ends (each gap 10 s longer) instead of 40, 90, ...
                                   "--slurm-init-seconds-before-status-checks", "3"],
                                  cwd=work, env=env, capture_output=True, text=True, timeout=WORKFLOW_TIMEOUT,
                                  start_new_session=True, check=False)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise AssertionError(f"snakemake still running after {WORKFLOW_TIMEOUT} s:\n{err[-6000:]}\n"
                                 f"{cluster.log('slurmctld')[-3000:]}") from None
        workflow_seconds = time.monotonic() - ready
        print(f"\nslurm_real: cluster and server ready in {ready - started:.0f} s, workflow {workflow_seconds:.0f} s")
        if proc.returncode != 0:
            raise AssertionError(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}")
        jobs = _settled_jobs(cluster)
        steps = sacct(cluster, "-o", ",".join(SACCT_FIELDS))
        print(subprocess.run(["sacct", "-S", "2000-01-01", "-o", "JobID,Comment%62,Elapsed,State,MaxRSS,ReqMem"],
                             capture_output=True, text=True, timeout=30, env=cluster.env, check=False).stdout)
        cluster.stop()  # everything asked of SLURM is in hand; the MLflow server stays up for the tests
        yield {"work": work, "profile": profile, "shipped": shipped, "jobs": jobs, "steps": steps, "uri": uri,
               "root": root}
    except BaseException:
        keep = True
        raise
    finally:
        cluster.stop()
        _stop(server)
        if keep:
            print(f"\nslurm_real: files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"\nslurm_real: cluster and workflow {time.monotonic() - started:.0f} s")


def _settled_jobs(cluster: LocalCluster, timeout: float = 30) -> list[dict[str, str]]:
    """The allocations (``sacct -X``) once slurmdbd has every final state (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = sacct(cluster, "-X", "-o", ",".join(SACCT_FIELDS))
        if all(j["State"] not in ("PENDING", "RUNNING", "COMPLETING") for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def rule_of(job: dict[str, str]) -> str:
    """The rule from the plugin's job comment, ``rule_<rule>[_wildcards_<...>]``."""
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def test_every_job_ran_on_slurm_with_the_profiles_request(slurm_run):
    jobs, profile = slurm_run["jobs"], slurm_run["profile"]
    rules = sorted(rule_of(j) for j in jobs)
    # mlflow_experiment is a local rule and `all` no job; one training job ran twice (below)
    assert rules == sorted(["generate_embedded", "prepare", "image_features", "text_features", "assemble_dataset",
                            "noise", "noise", *["train"] * 5, *["evaluate"] * 4, "report"])
    assert len({j["JobName"] for j in jobs}) == 1  # the run's id, which the plugin polls sacct with
    attempts: dict[str, int] = {}
    for job in sorted(jobs, key=lambda j: int(j["JobID"])):
        attempt = attempts[job["Comment"]] = attempts.get(job["Comment"], 0) + 1
        assert {k: job[k] for k in ("Partition", "Account", "ReqMem", "Timelimit", "ReqCPUS")} == \
            expected_request(profile, rule_of(job), attempt), job
        assert job["State"] == "COMPLETED" or (rule_of(job) == "train" and attempt == 1), job
        assert "gres/gpu" not in job["AllocTRES"]
    assert (slurm_run["work"] / "results/report/tables.tex").is_file()


def test_gpu_rules_run_on_the_gpu_partition(slurm_run):
    jobs, shipped = slurm_run["jobs"], slurm_run["shipped"]
    for rule in ("train", "image_features"):
        assert shipped["set-resources"][rule]["gpu"] == 1  # what a real cluster gets; overridden here (no GPU)
        assert {j["Partition"] for j in jobs if rule_of(j) == rule} == {"gpu"}
        assert all(j["ReqCPUS"] == "4" for j in jobs if rule_of(j) == rule)
    assert {j["Partition"] for j in jobs if rule_of(j) not in ("train", "image_features")} == {"cpu"}


def test_a_job_past_its_memory_is_killed_and_retried_with_more(slurm_run):
    jobs, steps, work = slurm_run["jobs"], slurm_run["steps"], slurm_run["work"]
    train = [j for j in jobs if rule_of(j) == "train"]
    (twice,) = {j["Comment"] for j in train if sum(k["Comment"] == j["Comment"] for k in train) == 2}
    assert "0.5" in twice and twice.endswith("sound")  # the cell named by CMHASH_TEST_EXCEED_MEMORY
    killed, retried = sorted((j for j in train if j["Comment"] == twice), key=lambda j: int(j["JobID"]))
    # without cgroups SLURM reports FAILED (the batch step's srun failed), not OUT_OF_MEMORY
    assert killed["State"] == "FAILED" and retried["State"] == "COMPLETED"
    assert (killed["ReqMem"], retried["ReqMem"]) == ("3000M", "6000M")  # TRAIN_MEM, attempts 1 and 2
    assert (killed["Timelimit"], retried["Timelimit"]) == ("04:00:00", "08:00:00")  # 240 * attempt minutes
    # SLURM (not Python, not the kernel's OOM killer) ended the step that ran the rule, at its request
    (step,) = [s for s in steps if s["JobID"] == f"{killed['JobID']}.0"]
    assert step["State"].startswith("CANCELLED")
    (log,) = (work / ".snakemake/slurm_logs").rglob(f"{killed['JobID']}.log")
    found = re.search(r"StepId=\d+\.0 exceeded memory limit \((\d+) > (\d+)\), being killed", log.read_text())
    assert found, log.read_text()[-3000:]
    used, limit = map(int, found.groups())
    assert limit == 3000 * 2**20 < used
    assert len(train) == 5  # the other training jobs ran once
    run = work / EXCEEDED
    assert json.loads((run / "metrics.json").read_text())["directions"]


def test_every_cells_mlflow_run_arrived_through_the_server(slurm_run):
    import mlflow

    from cmhash.config import cells
    from cmhash.tracking import find_runs

    work, uri = slurm_run["work"], slurm_run["uri"]
    cfg = yaml.safe_load((work / CONFIG).read_text())
    assert not (work / "results/mlflow.db").exists()  # nothing fell back to the default store
    runs = {r["run_id"]: r for r in find_runs(uri, cfg["experiment"])}
    assert len(runs) == len(cells(cfg)) == 4
    client = mlflow.MlflowClient(uri)
    for cell in cells(cfg):
        run_dir = work / cell.run_dir
        record = json.loads((run_dir / "mlflow_run.json").read_text())
        assert record["tracking_uri"] == uri
        run = runs[record["run_id"]]
        assert run["status"] == "FINISHED"
        assert (run["params"]["rate"], run["params"]["protocol"]) == (str(cell.rate), cell.protocol)
        history = pd.read_csv(run_dir / "history.csv")
        logged = client.get_metric_history(record["run_id"], "loss/total")
        assert sorted(m.step for m in logged) == sorted(history.dropna(subset=["loss/total"])["epoch"].tolist())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert run["metrics"]["i2t/map"] == pytest.approx(metrics["directions"]["i2t"]["map"])
        artifacts = {a.path for a in client.list_artifacts(record["run_id"])}
        assert {"config.json", "history.csv", "metrics.json"} <= artifacts
    # the artifacts went through the server into its --artifacts-destination
    assert len(list((slurm_run["root"] / "mlartifacts").rglob("history.csv"))) == 4
