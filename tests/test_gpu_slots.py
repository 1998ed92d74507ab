"""GPU slots: concurrent jobs get different devices, wait when all are busy, and a killed
job's slot is freed by the kernel. Holders are real processes (flock is per process)."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from cmhash.errors import CmhashError
from cmhash.gpu_slots import (
    GpuSlot,
    GpuSlotTimeout,
    candidate_devices,
    parse_visible_devices,
    resolve_lock_dir,
)
from tests.helpers import REPO

HOLDER = textwrap.dedent("""
    import logging, os, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
    from cmhash.gpu_slots import GpuSlot
    with GpuSlot(sys.argv[1], poll_s=0.05, timeout_s=float(sys.argv[2])) as slot:
        print("DEVICE", slot.device, os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
        sys.stdin.readline()  # hold the slot until told to go
    print("RELEASED", os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), flush=True)
""")


class Holder:
    """A process that takes a slot and holds it until ``release()`` (or death)."""

    def __init__(self, lock_dir: Path, env: dict[str, str], timeout_s: float = 60.0) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
        full_env.update(env, PYTHONPATH=os.pathsep.join([str(REPO / "src"), full_env.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-u", "-c", HOLDER, str(lock_dir), str(timeout_s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=full_env)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("EOF")

    def wait_for(self, prefix: str, contains: str = "", limit_s: float = 60.0) -> str:
        """The next line starting with ``prefix`` (and containing ``contains``); every line before it is kept."""
        seen = []
        while True:
            line = self.lines.get(timeout=limit_s)
            seen.append(line)
            if line.startswith(prefix) and contains in line:
                self.seen = seen
                return line
            if line == "EOF":
                raise AssertionError(f"holder ended before '{prefix}': {seen}")

    def device(self) -> str:
        _, device, visible = self.wait_for("DEVICE").split()
        assert device == visible  # the variable names exactly the chosen device
        return device

    def release(self) -> str:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.wait_for("RELEASED")
        assert self.proc.wait(timeout=30) == 0
        return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def holders():
    started: list[Holder] = []
    yield started
    for h in started:
        h.kill()


def start(holders, lock_dir, env, **kw) -> Holder:
    h = Holder(lock_dir, env, **kw)
    holders.append(h)
    return h


def test_two_holders_get_different_devices_and_a_third_waits_for_a_release(tmp_path, holders):
    env = {"CMHASH_FAKE_GPU_COUNT": "2"}
    a, b = start(holders, tmp_path, env), start(holders, tmp_path, env)
    a_device, b_device = a.device(), b.device()
    assert {a_device, b_device} == {"0", "1"}
    c = start(holders, tmp_path, env)
    busy = c.wait_for("LOG", "are busy")  # it says it waits, and has no device yet
    assert "waiting up to" in busy and "pid" in busy
    assert not any(line.startswith("DEVICE") for line in c.seen)
    assert a.release() == "RELEASED unset"  # the variable is restored on exit
    assert c.device() == a_device  # the freed slot, not the one b still holds
    b.release()
    c.release()


def test_a_killed_holders_slot_is_freed(tmp_path, holders):
    env = {"CMHASH_FAKE_GPU_COUNT": "1"}
    a = start(holders, tmp_path, env)
    assert a.device() == "0"
    b = start(holders, tmp_path, env)
    b.wait_for("LOG", "are busy")
    os.kill(a.proc.pid, signal.SIGKILL)  # no clean-up code runs: the kernel drops the lock
    a.proc.wait(timeout=30)
    assert b.device() == "0"
    b.release()


def test_preset_visible_devices_are_the_only_choices(tmp_path, holders):
    env = {"CUDA_VISIBLE_DEVICES": "3,5", "CMHASH_FAKE_GPU_COUNT": "8"}
    a, b = start(holders, tmp_path, env), start(holders, tmp_path, env)
    assert {a.device(), b.device()} == {"3", "5"}
    c = start(holders, tmp_path, env)
    c.wait_for("LOG", "are busy")
    a.release()
    assert c.device() in {"3", "5"}
    b.release()
    c.release()


def test_all_busy_past_the_timeout_is_a_clear_error(tmp_path):
    env = {"CMHASH_FAKE_GPU_COUNT": "1"}
    with GpuSlot(tmp_path, environ=dict(env)) as first:
        assert first.device == "0"
        # flock conflicts between two open files even within one process
        with pytest.raises(GpuSlotTimeout, match=r"all 1 GPU slot\(s\) \['0'\] stayed busy .*held by: 0: pid "
                                                 rf"{os.getpid()}.*--resources gpu=N"):
            GpuSlot(tmp_path, timeout_s=0.2, poll_s=0.05, environ=dict(env)).acquire()
    # freed on exit: the next one gets it at once
    with GpuSlot(tmp_path, timeout_s=0, environ=dict(env)) as again:
        assert again.device == "0"


def test_environment_is_set_then_restored(tmp_path):
    env = {"CMHASH_FAKE_GPU_COUNT": "2", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    with GpuSlot(tmp_path, environ=env) as slot:
        assert env["CUDA_VISIBLE_DEVICES"] == slot.device == "0"
        assert slot.lock_path.parent == resolve_lock_dir(tmp_path, env)
        assert f"pid {os.getpid()}" in slot.lock_path.read_text()
        with GpuSlot(tmp_path, environ=dict(env, CUDA_VISIBLE_DEVICES="0,1")) as second:
            assert second.device == "1"  # "0" is taken by the outer slot
    assert "CUDA_VISIBLE_DEVICES" not in env and env["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"


@pytest.mark.parametrize("env", [{"CUDA_VISIBLE_DEVICES": ""}, {"CUDA_VISIBLE_DEVICES": "-1"},
                                 {"CMHASH_FAKE_GPU_COUNT": "0"}])
def test_no_gpu_is_a_no_op(tmp_path, env):
    before = dict(env)
    with GpuSlot(tmp_path, environ=env) as slot:
        assert slot.device is None and slot.lock_path is None
        assert env == before
    assert env == before
    assert not (tmp_path / "gpu-0.lock").exists()


def test_parse_visible_devices_reads_like_cuda():
    assert parse_visible_devices("3,5") == ["3", "5"]
    assert parse_visible_devices(" 2 , 0 ") == ["2", "0"]
    assert parse_visible_devices("1,-1,2") == ["1"]  # CUDA stops at the first invalid id
    assert parse_visible_devices("GPU-8c1f,MIG-aa") == ["GPU-8c1f", "MIG-aa"]
    assert parse_visible_devices("") == []


def test_nvidia_smi_listing_is_used_when_nothing_is_set(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n[ \"$1\" = -L ] || exit 9\n"
                    "echo 'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)'\n"
                    "echo '  MIG 1g.5gb     Device  0: (UUID: MIG-bbbb)'\n"
                    "echo 'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-cccc)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert candidate_devices({}) == (["0", "1"], "nvidia-smi")
    env: dict[str, str] = {}
    with GpuSlot(tmp_path / "locks", environ=env) as slot:
        assert slot.device == "0" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env == {}
    # a machine without the tool has no GPU
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert candidate_devices({}) == ([], "nvidia-smi")


def test_bad_fake_count_names_the_variable():
    with pytest.raises(CmhashError, match="CMHASH_FAKE_GPU_COUNT='two'"):
        candidate_devices({"CMHASH_FAKE_GPU_COUNT": "two"})


def test_lock_folder_is_per_host_or_per_slurm_job(tmp_path):
    assert resolve_lock_dir(tmp_path, {"SLURM_JOB_ID": "4242"}) == tmp_path / "slurm-4242"
    assert resolve_lock_dir(tmp_path, {}).name.startswith("host-")
    assert resolve_lock_dir(None, {"CMHASH_GPU_LOCK_DIR": str(tmp_path / "x")}).parent == tmp_path / "x"
    assert resolve_lock_dir(None, {}).parent == Path("results/.gpu_slots")
    # a SLURM job's slots are its own: node-local, not on the shared file system
    assert resolve_lock_dir(None, {"SLURM_JOB_ID": "7"}) == Path(tempfile.gettempdir()) / "cmhash-gpu-slots/slurm-7"


def test_refuses_once_cuda_is_initialised(tmp_path, monkeypatch):
    class FakeCuda:
        @staticmethod
        def is_initialized() -> bool:
            return True

    class FakeTorch:
        cuda = FakeCuda

    monkeypatch.setitem(sys.modules, "torch", FakeTorch)
    with pytest.raises(RuntimeError, match="already initialised"):
        GpuSlot(tmp_path, environ={"CMHASH_FAKE_GPU_COUNT": "1"}).acquire()


TRAIN_SCRIPT = textwrap.dedent("""
    import json, runpy, sys
    from types import SimpleNamespace as NS
    cfg, uri = json.loads(sys.argv[1]), sys.argv[2]
    w = NS(dataset="tiny", method="baseline", noise_model="nrch", rate="0.5", bits="16", seed="0", protocol="sound")
    run = "results/runs/tiny/baseline/nrch-0.5/bits16/seed0/sound"
    sm = NS(log=["results/logs/train.log"], config=cfg, wildcards=w, threads=1, params=NS(uri=uri), resources={"mem_mb": 4000},
            input=NS(dataset=["results/datasets/tiny/labels.npy"], noise=["results/noise/tiny/nrch-0.5/seed0/noisy_labels.npy"]),
            output=NS(record=run + "/train.json"))
    runpy.run_path(sys.argv[3], init_globals={"snakemake": sm}, run_name="__main__")
""")


def test_the_training_script_trains_on_a_free_slot_and_records_it(tmp_path, monkeypatch):
    """workflow/scripts/train.py takes a slot before torch starts; train.json and the MLflow
    run name the device. Slot 0 is held here, so the job must take 1."""
    import json

    from cmhash.data.canonical import write_dataset
    from cmhash.pipeline import stage_noise
    from cmhash.tracking import find_runs
    from tests.helpers import clustered_dataset

    monkeypatch.chdir(tmp_path)
    write_dataset("results/datasets/tiny", clustered_dataset())
    stage_noise("results/datasets/tiny", "nrch", 0.5, 0, "results/noise/tiny/nrch-0.5/seed0")
    cfg = {"experiment": "slots", "device": "auto", "threads": 1, "training": {"checkpoint_every": 0, "progress": False},
           "datasets": {"tiny": {"source": "embedded"}}, "methods": {"baseline": {"epochs": 2, "eval_every": 1, "batch_size": 32, "image_hidden": [16],
                                    "text_hidden": [16]}}}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "MLFLOW_TRACKING_URI")}
    env.update(CMHASH_FAKE_GPU_COUNT="2", PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]))
    with GpuSlot(environ={"CMHASH_FAKE_GPU_COUNT": "2"}) as held:  # default folder: results/.gpu_slots
        assert held.device == "0"
        proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, json.dumps(cfg), uri,
                               str(REPO / "workflow/scripts/train.py")], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads((tmp_path / "results/runs/tiny/baseline/nrch-0.5/bits16/seed0/sound/train.json").read_text())
    assert record["visible_devices"] == "1" and record["host"]
    (run,) = find_runs(uri, "slots")
    assert run["tags"]["visible_devices"] == "1"
    assert "GPU slot" in (tmp_path / "results/logs/train.log").read_text()
