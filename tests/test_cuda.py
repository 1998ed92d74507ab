"""What only a CUDA device can check: training and feature extraction placed on the GPU, GPU
evaluation agreeing with the CPU to 1e-9, and GPU slots counting the machine's real devices.

Marked ``cuda`` and skipped without a device (the whole module, before its heavier imports);
``benchmarks/gpu_check.sh`` runs this file on a GPU machine and fails when anything in it is
skipped there.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():  # before the imports below: without a device, collecting costs little
    pytest.skip("no CUDA device", allow_module_level=True)

from PIL import Image

from cmhash.evaluate import retrieval_report
from cmhash.features import extract_vgg19_fc7
from cmhash.gpu_slots import candidate_devices, nvidia_smi_devices
from cmhash.methods import resolve_hparams
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainSettings
from tests.helpers import REPO, clustered_dataset
from tests.test_evaluate import random_case

pytestmark = pytest.mark.cuda

SMALL = {"epochs": 3, "eval_every": 1, "batch_size": 32, "image_hidden": [32, 32], "text_hidden": [32]}
TINY = {  # per method: its warm-up ends inside 3 epochs, so the selection hook runs on the GPU too
    "baseline": SMALL,
    "nrch": {**SMALL, "warmup_epochs": 1, "num_gradual": 3},
    "scbch": {**SMALL, "warmup_epochs": 1, "k": 5},
    "dcgmh": {**SMALL, "image_hidden": [16], "text_hidden": [16], "warmup": 1, "fusion_per_bit": 2,
              "oracle_noise_rate": 0.3},
}


@pytest.mark.parametrize("method", sorted(TINY))
@pytest.mark.parametrize("protocol", ["sound", "paper"])
def test_training_places_everything_on_the_gpu(method: str, protocol: str, tmp_path) -> None:
    ds = clustered_dataset()
    noise = corrupt(ds.labels[ds.splits.train], "dcgmh" if method == "dcgmh" else "nrch", 0.3, seed=1)
    hp, _ = resolve_hparams(method, "embedded", TINY[method])
    settings = TrainSettings(method=method, hp=hp, bits=16, protocol=protocol, seed=0, device="cuda",
                             progress=False, checkpoint_every=1)
    trainer = Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=tmp_path / "checkpoint.pt")
    assert all(p.device.type == "cuda" for p in trainer.method.parameters())
    assert all(t.device.type == "cuda" for t in (trainer.view.image, trainer.view.text, trainer.view.labels))
    save = trainer._save_checkpoint

    def save_then_stop(next_epoch, state):  # interrupted after epoch 2 of 3, as a killed job
        save(next_epoch, state)
        if next_epoch == 2:
            raise Interrupted

    trainer._save_checkpoint = save_then_stop
    with pytest.raises(Interrupted):
        trainer.run()
    # a checkpoint written on the GPU resumes on the GPU (map_location) in a fresh trainer
    resumed = Trainer(ds, noise.noisy, noise.corrupted, settings, checkpoint_path=tmp_path / "checkpoint.pt").run()
    assert resumed.resumed_from == 2 and resumed.device.startswith("cuda")
    for name, codes in resumed.codes.items():  # codes come back to the host as +-1
        assert isinstance(codes, np.ndarray) and set(np.unique(codes)) <= {-1, 1}, name
    assert all(np.isfinite(v) for row in resumed.history for v in row.values() if isinstance(v, float))


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("case", [(50, 2000, 32, 10, 2), (300, 20000, 64, 21, 7), (64, 5000, 16, 5, 3)])
def test_gpu_evaluation_matches_the_cpu_to_1e_9(case) -> None:
    qc, dc, ql, dl = random_case(*case)
    kw = {"ks": [1, 10, 100, 1000], "ns": [1, 10, 100, 1000]}
    gpu = retrieval_report(*(torch.from_numpy(a).cuda() for a in (qc, dc, ql, dl)), **kw)
    for backend in ("torch", "numpy"):
        cpu = retrieval_report(qc, dc, ql, dl, backend=backend, **kw)
        if backend == "torch":  # the same kernels on either device: mAP@all to rounding (was test_evaluate's check)
            assert abs(gpu["map_all_stable"] - cpu["map_all_stable"]) <= 1e-12
            assert abs(gpu["map_all_expected"] - cpu["map_all_expected"]) <= 1e-12
        for key in ("map_all_stable", "map_all_expected"):
            assert gpu[key] == pytest.approx(cpu[key], abs=1e-9), (backend, key)
        for group in ("map_at_k", "precision_at_n"):
            assert gpu[group].keys() == cpu[group].keys()
            for k in cpu[group]:
                assert gpu[group][k] == pytest.approx(cpu[group][k], abs=1e-9), (backend, group, k)
        for key, curve in cpu["pr_curve"].items():
            np.testing.assert_allclose(gpu["pr_curve"][key], curve, atol=1e-9, err_msg=f"{backend} pr_curve {key}")


def test_vgg19_features_on_the_gpu_match_the_cpu(tmp_path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: warned, and fine for a device comparison
        gpu, meta = extract_vgg19_fc7(paths, weights="none", image_size=32, batch_size=4, device="cuda", progress=False)
        cpu, _ = extract_vgg19_fc7(paths, weights="none", image_size=32, batch_size=4, device="cpu", progress=False)
    assert meta["device"].startswith("cuda") and gpu.shape == cpu.shape == (6, 4096)
    # cuDNN convolutions run in TF32 by default (10-bit mantissa) through 16 layers: close, not equal
    assert np.linalg.norm(gpu - cpu) <= 2e-2 * np.linalg.norm(cpu)


SLOT = textwrap.dedent("""
    import os, sys
    from cmhash.gpu_slots import GpuSlot
    with GpuSlot(sys.argv[1], timeout_s=30) as slot:
        import torch
        print(slot.device, os.environ["CUDA_VISIBLE_DEVICES"], torch.cuda.device_count(),
              torch.cuda.get_device_name(0).replace(" ", "_"), flush=True)
""")


def test_gpu_slots_count_the_real_devices(tmp_path) -> None:
    """The slots offered are the devices torch can use: those of a preset CUDA_VISIBLE_DEVICES
    (a machine lent in part, SLURM), else every GPU nvidia-smi lists; a job then sees one."""
    env = {k: v for k, v in os.environ.items() if k not in ("CMHASH_FAKE_GPU_COUNT", "SLURM_JOB_ID")}
    devices, source = candidate_devices(env)
    assert source == ("CUDA_VISIBLE_DEVICES" if "CUDA_VISIBLE_DEVICES" in env else "nvidia-smi")
    if source == "nvidia-smi":
        assert devices == nvidia_smi_devices()
    assert len(devices) == torch.cuda.device_count() >= 1
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", SLOT, str(tmp_path / "slots")], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout.split()
    device, visible, seen, name = out
    assert device == visible and device in devices
    assert int(seen) == 1  # the job sees exactly the GPU of its slot
    if source == "nvidia-smi":  # and it is the one nvidia-smi numbers so (CUDA_DEVICE_ORDER=PCI_BUS_ID)
        smi = subprocess.run(["nvidia-smi", "-i", device, "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert name == smi.replace(" ", "_")
