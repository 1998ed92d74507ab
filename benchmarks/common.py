"""Pieces the method benchmarks share: the embedded dataset the demo builds, and one training
cell run through ``cmhash.train.Trainer`` exactly as a workflow cell is (noise on the training
rows seeded with the cell's seed, no checkpoints, no progress bars)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from cmhash.data.canonical import Dataset, read_dataset
from cmhash.methods import resolve_hparams
from cmhash.noise import corrupt
from cmhash.train import Trainer, TrainResult, TrainSettings


def load_embedded(dataset_dir: Path) -> Dataset | None:
    """The demo's assembled dataset, or None after telling how to build it."""
    if not (dataset_dir / "splits.json").is_file():
        print(f"{dataset_dir}: no dataset there. Run `bash scripts/demo.sh` first (it builds "
              f"results/datasets/embedded).", file=sys.stderr)
        return None
    return read_dataset(dataset_dir)


def train_cell(ds: Dataset, method: str, noise_model: str, rate: float, seed: int, bits: int, protocol: str,
               overrides: dict[str, Any], **settings: Any) -> tuple[Trainer, TrainResult, float]:
    """Train one cell; returns the trainer (for its diagnostics), its result and the seconds."""
    noise = corrupt(ds.labels[ds.splits.train], noise_model, rate, seed)
    hp, _ = resolve_hparams(method, None, overrides)
    config = TrainSettings(method=method, hp=hp, bits=bits, protocol=protocol, seed=seed, device="auto",
                           progress=False, checkpoint_every=0, **settings)
    t0 = time.perf_counter()
    trainer = Trainer(ds, noise.noisy, noise.corrupted, config)
    result = trainer.run()
    return trainer, result, time.perf_counter() - t0
