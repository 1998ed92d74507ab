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
