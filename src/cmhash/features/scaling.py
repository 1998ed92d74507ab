"""Optional feature scaling applied when a dataset is assembled (recorded in its meta.json).

The published methods feed VGG19 fc7 / bag-of-words features as they are (``none``, the
default). VGG19 with random weights (``weights: none``, the demo) gives fc7 features that are
tiny and dominated by a component shared by every image, on which encoders collapse to a
handful of codes; ``center_scale`` subtracts the training rows' mean and divides by their
overall standard deviation (one scalar, so relative dimensions keep their weights). Statistics
come from the training rows only, so nothing is learnt from the query set.
"""
from __future__ import annotations

import numpy as np

from cmhash.errors import ConfigError

SCALINGS = ("none", "center_scale")


def scale_features(features: np.ndarray, fit_rows: np.ndarray, method: str) -> tuple[np.ndarray, dict]:
    """Return the scaled features (float32) and a record of what was done."""
    if method == "none":
        return features, {"normalize": "none"}
    if method != "center_scale":
        raise ConfigError(f"normalize: unknown scaling '{method}'; use one of {SCALINGS}")
    fit = features[fit_rows].astype(np.float64)
    mean = fit.mean(axis=0)
    scale = float((fit - mean).std())
    if not scale > 0:
        raise ConfigError("normalize: center_scale needs features that vary over the training rows")
    return ((features - mean) / scale).astype(np.float32), {"normalize": "center_scale", "scale": scale}
