"""Named, seeded label-noise models for the training rows (DESIGN.md "noise.py").

``corrupt(labels, model, rate, seed)`` returns the noisy labels and the mask of corrupted rows,
the ground truth that sample-selection diagnostics are scored against. For every model
``corrupted[i]`` is True exactly where ``noisy[i] != labels[i]`` in at least one class, so a row
that a model picked but happened to leave unchanged (``sym`` drawing the true class, ``dcgmh`` on
a row with no label) is not counted as corrupted.

Models (METHODS.md). Official code read: LonganWANG-cs/NRCH @ b190e97, Plke/SCBCH @ cfcc18c,
LiuJinyu1229/DCGMH @ f208cdb, perquisite/RSHNL @ 34de146.

* ``nrch`` — NRCH/SCBCH: floor(r*N) rows without replacement; in each, one positive set to 0
  and one negative set to 1 (METHODS.md "Noise (call it nrch)"; ``add_noise_to_labels``, NRCH
  noise/generate.py:14-32, the same function in SCBCH noise_label/generate.py:6-20).
* ``dcgmh`` — DCGMH: the first int(r*N) rows of a random permutation in four groups that
  rewrite the row's label set (METHODS.md "Noise (call it dcgmh)"; ``generate_noisy_labels``,
  DCGMH data_loader.py:95-158).
* ``sym`` — RSHNL: floor(r*N) rows get a uniformly random single label, possibly the true one
  (METHODS.md "Other anchors"; ``get_noisylabels``, RSHNL load_data.py:40-65: as many classes
  as the row had, drawn without replacement, :57-60).

A fourth name, ``published`` (:data:`PUBLISHED`), is not drawn here: it reads the noisy
labels published with NRCH's code (``{prefix}-lall-noise_{rate}.h5``) through
:func:`cmhash.data.published.published_noise`, configured per dataset under
``datasets.<name>.published_noise``; the pipeline's noise stage chooses between the two.

Every draw comes from ``numpy.random.default_rng(seed)``: the same (labels, model, rate, seed)
gives bit-identical output. NRCH's and SCBCH's generators are unseeded (no seed is set in
noise/generate.py / noise_label/generate.py); DCGMH's and RSHNL's run under their scripts'
global seeding (DCGMH main.py:42-46 with utils.py:37-45, noise drawn at engine.py:41 ->
data_loader.py:183; RSHNL main.py:55-56, load_data.py:67, 163) but through other generators,
so no draw here reproduces a published file row for row.
"""
from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cmhash.errors import ConfigError, DataError

__all__ = ["NOISE_MODELS", "NoiseResult", "corrupt", "known_noise_models", "noisy_row_count"]

NoiseFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
"""A noise model: (clean uint8 labels N x C, rate, generator) -> new noisy uint8 array N x C."""


@dataclass(frozen=True)
class NoiseResult:
    """Output of :func:`corrupt`.

    ``noisy``: uint8 N x C noisy labels. ``corrupted``: bool N, True exactly for the rows whose
    noisy label vector differs from the clean one.
    """

    noisy: np.ndarray
    corrupted: np.ndarray

    @property
    def n_corrupted(self) -> int:
        return int(self.corrupted.sum())


def noisy_row_count(rate: float, n_rows: int) -> int:
    """floor(rate * n_rows), guarded against float error (0.29 * 100 = 28.999999999999996 -> 29).

    The published NRCH files hold exactly round(r * 10000) corrupted rows; for the rates used
    (0.2, 0.5, 0.8) floor and round agree. The published generators truncate without the guard,
    ``int(N * r)`` (NRCH noise/generate.py:16, RSHNL load_data.py:52), e.g. 28 for 0.29 * 100.
    """
    return int(np.floor(rate * n_rows + 1e-9))


# --------------------------------------------------------------------------- models

def _nrch(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """NRCH noise: floor(r*N) rows without replacement; in each, one uniformly random positive
    label set to 0 and one uniformly random negative label set to 1 (label count kept).

    Rows with no positive or no negative label cannot be flipped this way; they are never
    picked (the rows are drawn among the flippable ones). If fewer than floor(r*N) rows are
    flippable, DataError. The published generator draws among ALL rows (noise/generate.py:18)
    and in such a row only makes the flip it can (:24-31). (The published MIRFlickr labels have
    1..14 of 24 labels per row, so every row is flippable and this equals a draw among all rows.)
    """
    n_rows = labels.shape[0]
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    n_pos = labels.sum(axis=1, dtype=np.int64)
    n_neg = labels.shape[1] - n_pos
    flippable = np.flatnonzero((n_pos > 0) & (n_neg > 0))
    if flippable.size < k:
        raise DataError(
            f"noise model 'nrch': rate {rate} needs {k} rows with at least one positive and one "
            f"negative label, but only {flippable.size} of {n_rows} rows have both; lower the rate "
            "or drop the rows with no (or all) labels")
    rows = rng.choice(flippable, size=k, replace=False)
    sub = labels[rows].astype(bool)
    # the j-th positive (resp. negative) of a row, j uniform in [0, count)
    j_pos = rng.integers(0, n_pos[rows])
    j_neg = rng.integers(0, n_neg[rows])
    col_pos = np.argmax(np.cumsum(sub, axis=1) > j_pos[:, None], axis=1)
    col_neg = np.argmax(np.cumsum(~sub, axis=1) > j_neg[:, None], axis=1)
    noisy[rows, col_pos] = 0
    noisy[rows, col_neg] = 1
    return noisy


def _sym(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """RSHNL symmetric noise for single-label data: floor(r*N) rows without replacement each
    get a class drawn uniformly from all C classes (possibly the true one, which leaves the row
    clean; RSHNL load_data.py:50-60). Every row must hold exactly one label (one-hot), else
    DataError."""
    n_rows, n_classes = labels.shape
    counts = labels.sum(axis=1, dtype=np.int64)
    if n_rows and not (counts == 1).all():
        bad = int((counts != 1).sum())
        raise DataError(f"noise model 'sym' needs single-label (one-hot) rows; {bad} of {n_rows} rows "
                        "hold zero or several labels: use 'nrch' or 'dcgmh' for multi-label data")
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    rows = rng.choice(n_rows, size=k, replace=False)
    new = rng.integers(0, n_classes, size=k)
    noisy[rows] = 0
    noisy[rows, new] = 1
    return noisy


def _dcgmh_groups(n_noisy: int) -> list[slice]:
    """Group bounds of DCGMH's ``torch.chunk(indices, 4)`` (data_loader.py:125-126): chunks of ceil(K/4) rows, the last
    one shorter (e.g. K = 10 -> 3, 3, 3, 1). Where torch.chunk would return fewer than four
    chunks (K = 6 -> 2, 2, 2; the published code then fails to unpack), the missing trailing
    groups are empty."""
    size = math.ceil(n_noisy / 4)
    return [slice(min(g * size, n_noisy), min((g + 1) * size, n_noisy)) for g in range(4)]


def _dcgmh(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """DCGMH noise (METHODS.md "Noise (call it dcgmh)"; published ``generate_noisy_labels``,
    data_loader.py:111-158, with ``label_turn``, :95-109).

    The first int(r*N) rows of a random permutation, in four groups (see ``_dcgmh_groups``).
    For a row with n labels ("new" classes are drawn without replacement among the classes the
    row did not have; "kept" ones among its old labels; a draw asking for more than are
    available takes all of them, as the published slicing does, data_loader.py:101, 107):

    1. same count: ceil(n/2) new + (n - ceil(n/2)) kept (data_loader.py:128-141);
    2. same count, all replaced: n new, none kept (:142);
    3. new count m != n, uniform on [min, max] of the dataset's label counts:
       ceil(m/2) new + up to m - ceil(m/2) kept (:116-118, 144-155);
    4. new count m != n: m new, none kept (:156).

    Groups 3 and 4 need at least two distinct label counts in ``labels`` (else DataError: the
    published rejection loop would never end, data_loader.py:148-149).
    """
    n_rows = labels.shape[0]
    n_noisy = int(rate * n_rows)  # published rounding quirk: int(r*N), e.g. int(0.29*100) = 28 (data_loader.py:121)
    noisy = labels.copy()
    if n_noisy == 0:
        return noisy
    picked = rng.permutation(n_rows)[:n_noisy]
    counts = labels.sum(axis=1, dtype=np.int64)
    lo, hi = int(counts.min()), int(counts.max())
    groups = [picked[s] for s in _dcgmh_groups(n_noisy)]
    if (groups[2].size or groups[3].size) and lo == hi:
        raise DataError(f"noise model 'dcgmh': every row holds {lo} labels, so groups 3 and 4 "
                        "(a different label count) cannot be drawn; use a lower rate or another model")

    def rewrite(row: int, n_new: int, n_kept: int) -> None:
        old = np.flatnonzero(labels[row])
        negatives = np.flatnonzero(labels[row] == 0)
        new = rng.permutation(negatives)[:n_new]
        kept = rng.permutation(old)[:n_kept] if n_kept > 0 else old[:0]
        noisy[row] = 0
        noisy[row, new] = 1
        noisy[row, kept] = 1

    def other_count(n: int) -> int:
        # uniform on [lo, hi] without n: same law as the published redraw loop (data_loader.py:147-149)
        m = int(rng.integers(lo, hi)) if lo <= n <= hi else int(rng.integers(lo, hi + 1))
        return m + 1 if lo <= n <= hi and m >= n else m

    for row in groups[0]:
        n = int(counts[row])
        rewrite(row, math.ceil(n / 2), n - math.ceil(n / 2))
    for row in groups[1]:
        n = int(counts[row])
        rewrite(row, n, 0)
    for row in groups[2]:
        m = other_count(int(counts[row]))
        rewrite(row, math.ceil(m / 2), m - math.ceil(m / 2))
    for row in groups[3]:
        m = other_count(int(counts[row]))
        rewrite(row, m, 0)
    return noisy


NOISE_MODELS: Mapping[str, NoiseFn] = types.MappingProxyType({
    "nrch": _nrch,
    "dcgmh": _dcgmh,
    "sym": _sym,
})
"""Registry of noise models by name (read-only)."""


PUBLISHED = "published"
"""The noise model that reads the published noisy-label files instead of drawing."""


def known_noise_models() -> list[str]:
    """Names a grid may use: those of :func:`corrupt` and :data:`PUBLISHED`, sorted."""
    return sorted([*NOISE_MODELS, PUBLISHED])


# --------------------------------------------------------------------------- entry point

def _check_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise DataError(f"labels: expected a 2-d rows x classes array, found shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"labels: expected a 0/1 numeric array, found dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        raise DataError(f"labels: {int(bad.any(axis=1).sum())} rows hold values other than 0 and 1 "
                        "(NaN included); labels must be a binary rows x classes matrix")
    return arr.astype(np.uint8)


def corrupt(labels: np.ndarray, model: str, rate: float, seed: int) -> NoiseResult:
    """Corrupt the clean binary ``labels`` (N x C) with the named noise ``model`` at ``rate``.

    ``rate`` must lie in [0, 1); ``seed`` seeds ``numpy.random.default_rng``. Returns a
    :class:`NoiseResult` with a fresh uint8 array (``labels`` is never modified) and the
    corrupted-row mask. Rate 0 returns an unchanged copy and an all-False mask.
    Unknown model or out-of-range rate -> ConfigError naming the key.
    """
    if model == PUBLISHED:
        raise ConfigError("noise_model: 'published' reads files, it is not drawn; configure "
                          "datasets.<name>.published_noise and use cmhash.pipeline.stage_noise")
    if model not in NOISE_MODELS:
        raise ConfigError(f"noise_model: unknown noise model {model!r}; known: {', '.join(known_noise_models())}")
    try:
        rate_f = float(rate)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"noise_rate: expected a number in [0, 1), got {rate!r}") from exc
    if not (0.0 <= rate_f < 1.0):
        raise ConfigError(f"noise_rate: {rate!r} is outside [0, 1)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {seed!r}")
    clean = _check_labels(labels)
    noisy = NOISE_MODELS[model](clean, rate_f, np.random.default_rng(int(seed)))
    corrupted = (noisy != clean).any(axis=1)
    return NoiseResult(noisy=noisy, corrupted=corrupted)
