"""Small builders shared by the tests (imported explicitly, not a fixture file)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cmhash.data.canonical import Dataset, Splits

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def clustered_dataset(n: int = 240, n_classes: int = 6, image_dim: int = 20, text_dim: int = 12,
                      n_query: int = 40, n_train: int = 160, n_validation: int = 30, seed: int = 0) -> Dataset:
    """A dataset whose features are noisy linear images of the labels (learnable, not trivial)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, n_classes), dtype=np.uint8)
    labels[np.arange(n), rng.integers(0, n_classes, n)] = 1
    extra = rng.random((n, n_classes)) < 0.15
    labels |= extra.astype(np.uint8)
    image = labels @ rng.normal(size=(n_classes, image_dim)) + 0.5 * rng.normal(size=(n, image_dim))
    text = labels @ rng.normal(size=(n_classes, text_dim)) + 0.5 * rng.normal(size=(n, text_dim))
    order = rng.permutation(n)
    train = order[n_query:n_query + n_train]
    splits = Splits(query=order[:n_query], train=train, database=order[n_query:],
                    validation=np.sort(rng.choice(train, n_validation, replace=False)))
    return Dataset(image=image.astype(np.float32), text=text.astype(np.float32), labels=labels, splits=splits,
                   meta={"source": "test"})


def copy_workflow(work: Path) -> None:
    """The workflow's files (Snakefile, rules, configs, envs) copied into ``work``, to run there."""
    import shutil

    for item in ("Snakefile", "workflow", "config", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)


def run_snakemake(workdir: Path, *args: str, configfile: str, cores: int = 2, resources: tuple[str, ...] = (),
                  check: bool = True, timeout: int = 1200):
    """Snakemake in ``workdir`` with this interpreter's environment and no inherited MLflow store
    (targets first: ``--resources`` and ``--configfile`` take several values each)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("MLFLOW_TRACKING_URI", None)
    extra = ["--resources", *resources] if resources else []
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", str(cores), *extra,
                           "--configfile", configfile], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(proc) -> dict[str, int]:
    """Job counts per rule from a dry run's summary table ('rule  count' lines)."""
    counts = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def small_view(n: int = 40, seed: int = 0, image_dim: int = 20, text_dim: int = 12, n_classes: int = 6):
    """A seeded ``TrainView`` of ``n`` rows: Gaussian images, uniform texts, multi-hot labels with
    at least one class a row."""
    import torch

    from cmhash.methods import TrainView

    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, n_classes, generator=g) < 0.3).float()
    labels[torch.arange(n), torch.randint(0, n_classes, (n,), generator=g)] = 1.0
    return TrainView(image=torch.randn(n, image_dim, generator=g), text=torch.rand(n, text_dim, generator=g),
                     labels=labels)


def train_step(method, view, optimizer, epoch: int, rows) -> dict[str, float]:
    """One optimiser step of ``method`` on ``rows`` of ``view``, as the trainer takes it; the logged parts."""
    from cmhash.methods import Batch

    batch = Batch(index=rows, image=view.image[rows], text=view.text[rows], labels=view.labels[rows])
    loss, parts = method.loss(batch, epoch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return parts
