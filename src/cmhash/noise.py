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
* ``sym`` — RSHNL: floor(r*N) rows each get as many classes as they had, drawn uniformly
  without replacement from all C classes, so possibly the true ones (METHODS.md "Other
  anchors"; ``get_noisylabels``, RSHNL load_data.py:40-65, the draw at :57-60). On one-hot
  rows: one uniformly random class.

Models the papers never tried (issue 20; not published noise, so no published file to match):

* ``missing`` — a corrupted row loses a random non-empty proper subset of its positive labels
  (the dominant real-world multi-label error). Multi-label data only.
* ``classcond`` — class-conditional confusion: one of the row's labels is replaced by a class it
  lacks, drawn from P(k | j): co-occurrence in the clean labels (multi-label) or the similarity
  of the classes' mean training features (single-label; the only case that reads features).
* ``instance`` — instance-dependent: the rows a logistic regression on the training features
  finds most ambiguous get their weakest true label replaced by the classifier's best wrong
  class (Chen et al., AAAI 2021, "Beyond class-conditional assumption: a primary attempt to
  combat instance-dependent label noise", for single-label data; the multi-label version is
  cmhash's own). Reads the features; deterministic given them, the seed only breaks ties.

A model declares whether it reads the training features (:attr:`NoiseModel.features`): the
workflow makes the feature files inputs of its noise jobs, and :func:`corrupt` needs them
(``features=(image, text)``) only for such a model.

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

import logging
import math
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from cmhash.errors import ConfigError, DataError

__all__ = ["NOISE_MODELS", "Features", "NoiseModel", "NoiseResult", "corrupt", "known_noise_models", "noise_statistics",
           "noisy_row_count"]

log = logging.getLogger(__name__)

NoiseFn = Callable[[np.ndarray, float, np.random.Generator, "Features | None"], np.ndarray]
"""A noise model's draw: (clean uint8 labels N x C, rate, generator, training features or None)
-> new noisy uint8 array N x C."""

FeatureUse = Literal["never", "single-label", "always"]


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


#: Above this share of non-zero entries the scaled features are kept dense (else CSR).
_SPARSE_BELOW = 0.3


@dataclass(frozen=True)
class Features:
    """The training rows' features as the models that read them use them: each modality's
    columns divided by their standard deviation over these rows (constant columns dropped),
    the modalities concatenated. ``scaled`` is that matrix (CSR when mostly zeros, e.g. tag
    bag-of-words); ``mean`` its column means, so ``scaled - mean`` is the standardised
    (z-scored) concatenation the models are defined on. Centring is left implicit so that
    sparse features stay sparse: a logistic regression with an unpenalised intercept has the
    same solution on both (the intercept absorbs the shift)."""

    scaled: np.ndarray | sp.csr_matrix
    mean: np.ndarray

    @classmethod
    def from_modalities(cls, modalities: Sequence[Any] | np.ndarray, n_rows: int) -> Features:
        """From one N x D array or a sequence of them (image, text), rows aligned with the labels."""
        if isinstance(modalities, Features):
            return modalities
        blocks = [modalities] if isinstance(modalities, np.ndarray) or sp.issparse(modalities) else list(modalities)
        if not blocks:
            raise DataError("features: expected the training rows' features (image, text), got none")
        scaled, means = [], []
        for i, block in enumerate(blocks):
            x = block.tocsr().astype(np.float64) if sp.issparse(block) else np.asarray(block, dtype=np.float64)
            if x.ndim != 2 or x.shape[0] != n_rows:
                raise DataError(f"features[{i}]: expected {n_rows} rows (one per label row), found shape {x.shape}")
            data = x.data if sp.issparse(x) else x
            if not np.isfinite(data).all():
                raise DataError(f"features[{i}]: holds NaN or infinite values")
            mean = np.asarray(x.mean(axis=0)).ravel()
            var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - mean ** 2 if sp.issparse(x) else x.var(axis=0)
            sd = np.sqrt(np.maximum(var, 0.0))
            keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
            inv = 1.0 / sd[keep]
            scaled.append(x[:, keep].multiply(inv).tocsr() if sp.issparse(x) else x[:, keep] * inv)
            means.append(mean[keep] * inv)
        nnz = sum(b.nnz if sp.issparse(b) else np.count_nonzero(b) for b in scaled)
        width = sum(b.shape[1] for b in scaled)
        if width == 0:
            raise DataError("features: every feature column is constant over the training rows")
        if nnz < _SPARSE_BELOW * n_rows * width:
            matrix: np.ndarray | sp.csr_matrix = sp.hstack([sp.csr_matrix(b) for b in scaled], format="csr")
        else:
            matrix = np.hstack([b.toarray() if sp.issparse(b) else b for b in scaled])
        return cls(scaled=matrix, mean=np.concatenate(means))

    def class_means(self, labels: np.ndarray) -> np.ndarray:
        """C x D means of the standardised features over each class's rows (NaN for a class
        with no row)."""
        y = sp.csr_matrix(labels.astype(np.float64))
        sums = np.asarray((y.T @ self.scaled).todense() if sp.issparse(self.scaled) else y.T @ self.scaled)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / labels.sum(axis=0, dtype=np.float64)[:, None] - self.mean


# --------------------------------------------------------------------------- models

def _nrch(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
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


def _sym(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
    """RSHNL symmetric noise (``get_noisylabels``, RSHNL load_data.py:50-60): floor(r*N) rows
    without replacement; each gets as many classes as it had, drawn uniformly without
    replacement from all C classes (:58-60), so possibly some or all of its true ones (such a
    row may stay clean). A row with no label stays empty, as in the published loop.

    On one-hot data the draw is one ``integers(0, C)`` per row (the same draws as before
    multi-label rows were accepted, so single-label outputs are unchanged)."""
    n_rows, n_classes = labels.shape
    counts = labels.sum(axis=1, dtype=np.int64)
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    rows = rng.choice(n_rows, size=k, replace=False)
    if (counts == 1).all():
        new = rng.integers(0, n_classes, size=k)
        noisy[rows] = 0
        noisy[rows, new] = 1
        return noisy
    # a uniformly random ordering of the classes per row; keep the first count[row] of them
    rank = np.argsort(np.argsort(rng.random((k, n_classes)), axis=1), axis=1)
    noisy[rows] = (rank < counts[rows, None]).astype(np.uint8)
    return noisy


def _eligible_for_swap(labels: np.ndarray, k: int, model: str, rate: float) -> np.ndarray:
    """Rows with at least one positive and one negative label (a label can be replaced by a
    class the row lacks); DataError naming rate and count when fewer than ``k``."""
    counts = labels.sum(axis=1, dtype=np.int64)
    eligible = np.flatnonzero((counts > 0) & (counts < labels.shape[1]))
    if eligible.size < k:
        raise DataError(f"noise model {model!r}: rate {rate} needs {k} rows with at least one positive and one "
                        f"negative label, but only {eligible.size} of {labels.shape[0]} rows have both; lower the "
                        "rate or drop the rows with no (or all) labels")
    return eligible


def _nth_true(mask: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Column of the j-th True of each row of ``mask`` (0-based)."""
    return np.argmax(np.cumsum(mask, axis=1) > j[:, None], axis=1)


def _missing(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
    """Missing labels: floor(r*N) rows drawn uniformly without replacement among those with at
    least two labels; each loses a uniformly random non-empty proper subset of its positive
    labels (each of the 2^n - 2 subsets equally likely: every label dropped with probability
    1/2, redrawn while none or all are dropped). Labels are only removed, never added.

    DataError on single-label data (no row has two labels) and when floor(r*N) exceeds the
    rows with two or more labels (the message names the rate and both counts)."""
    n_rows = labels.shape[0]
    counts = labels.sum(axis=1, dtype=np.int64)
    if n_rows and counts.max() < 2:
        raise DataError("noise model 'missing' removes some of a row's labels, so it needs multi-label rows; "
                        f"every one of the {n_rows} rows holds at most one label (single-label data): use "
                        "'sym', 'classcond' or 'instance'")
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    eligible = np.flatnonzero(counts >= 2)
    if k > eligible.size:
        raise DataError(f"noise model 'missing': rate {rate} needs {k} rows with at least two labels, but only "
                        f"{eligible.size} of {n_rows} rows have two or more; lower the rate below "
                        f"{eligible.size / n_rows:.4f}")
    rows = rng.choice(eligible, size=k, replace=False)
    positive = labels[rows].astype(bool)
    drop = np.zeros_like(positive)
    todo = np.arange(k)
    while todo.size:
        draw = (rng.random((todo.size, labels.shape[1])) < 0.5) & positive[todo]
        n_drop = draw.sum(axis=1)
        ok = (n_drop > 0) & (n_drop < counts[rows[todo]])
        drop[todo[ok]] = draw[ok]
        todo = todo[~ok]
    noisy[rows] = (positive & ~drop).astype(np.uint8)
    return noisy


def _single_label(labels: np.ndarray) -> bool:
    """True when no row holds more than one label (one-hot data, empty rows allowed)."""
    return bool(labels.shape[0]) and int(labels.sum(axis=1).max()) <= 1


def confusion_weights(labels: np.ndarray, features: Features | None = None) -> np.ndarray:
    """C x C non-negative weights W[j, k] (zero diagonal) that ``classcond`` draws the
    replacement k of a label j from, P(k | j) proportional to W[j, k] over the classes the row lacks.

    Multi-label data: the co-occurrence counts of k with j in ``labels``. Single-label data:
    the cosine similarity of the classes' mean standardised training features, clipped at 0
    (classes less alike than the average row, cosine < 0, are not confused; a class without
    training rows gets weight 0)."""
    if not _single_label(labels):
        weights = labels.T.astype(np.float64) @ labels.astype(np.float64)
    else:
        if features is None:
            raise DataError("noise model 'classcond' on single-label data reads the training features "
                            "(corrupt(..., features=(image, text)))")
        means = np.nan_to_num(features.class_means(labels), nan=0.0)
        norm = np.linalg.norm(means, axis=1)
        unit = means / np.where(norm > 0, norm, 1.0)[:, None]
        weights = np.clip(unit @ unit.T, 0.0, None)
    np.fill_diagonal(weights, 0.0)
    return weights


def _classcond(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
    """Class-conditional confusion: floor(r*N) rows drawn uniformly without replacement among
    those with a positive and a negative label; in each, a uniformly random positive j is set
    to 0 and a class k the row lacks is set to 1, drawn with P(k | j) proportional to
    :func:`confusion_weights` ``[j, k]`` over the row's negatives (uniform over them when that
    mass is zero: j never co-occurs with, or resembles, any class the row lacks)."""
    n_rows = labels.shape[0]
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    eligible = _eligible_for_swap(labels, k, "classcond", rate)
    weights = confusion_weights(labels, features)
    rows = rng.choice(eligible, size=k, replace=False)
    positive = labels[rows].astype(bool)
    col_pos = _nth_true(positive, rng.integers(0, positive.sum(axis=1)))
    mass = weights[col_pos] * ~positive
    total = mass.sum(axis=1)
    mass[total == 0] = ~positive[total == 0]
    total = mass.sum(axis=1)
    col_new = np.argmax(np.cumsum(mass, axis=1) > (rng.random(k) * total)[:, None], axis=1)
    noisy[rows, col_pos] = 0
    noisy[rows, col_new] = 1
    return noisy


#: scikit-learn LogisticRegression settings of ``instance`` (L2, C = 1, lbfgs, bounded iterations).
INSTANCE_CLASSIFIER: Mapping[str, Any] = types.MappingProxyType({"C": 1.0, "solver": "lbfgs", "max_iter": 200})
_CONSTANT_SCORE = 30.0  # the logit of a class every (no) training row has: never (always) the least sure


def classifier_scores(labels: np.ndarray, features: Features) -> np.ndarray:
    """N x C class scores of ``instance``'s logistic regression fitted on ``labels`` and
    ``features`` (:data:`INSTANCE_CLASSIFIER`), evaluated on the same rows.

    Single-label data: one multinomial model on the rows' classes; the scores are its
    log-probabilities (their differences are the logit differences; a class with no training
    row scores -inf). Multi-label data: one-vs-rest, one binary model per class; the scores are
    the logits (a class present in no or every row scores -30 or +30, no model being
    fittable). Iterations are bounded; non-convergence is logged, not raised."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = features.scaled
    n_rows, n_classes = labels.shape
    not_converged = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if _single_label(labels):
            has = labels.sum(axis=1) > 0
            target = labels.argmax(axis=1)
            if np.unique(target[has]).size < 2:
                raise DataError("noise model 'instance': the training rows hold fewer than two classes; "
                                "there is no wrong class to confuse them with")
            clf = LogisticRegression(**INSTANCE_CLASSIFIER).fit(x[has], target[has])
            scores = np.full((n_rows, n_classes), -np.inf)
            scores[:, clf.classes_] = clf.predict_log_proba(x)
            not_converged += int(np.max(clf.n_iter_) >= INSTANCE_CLASSIFIER["max_iter"])
        else:
            scores = np.empty((n_rows, n_classes))
            for c in range(n_classes):
                column = labels[:, c]
                if column.min() == column.max():
                    scores[:, c] = _CONSTANT_SCORE if column[0] else -_CONSTANT_SCORE
                    continue
                clf = LogisticRegression(**INSTANCE_CLASSIFIER).fit(x, column)
                scores[:, c] = clf.decision_function(x)
                not_converged += int(np.max(clf.n_iter_) >= INSTANCE_CLASSIFIER["max_iter"])
    if not_converged:
        log.info("noise model 'instance': %d logistic regression(s) stopped at max_iter=%d before converging",
                 not_converged, INSTANCE_CLASSIFIER["max_iter"])
    return scores


def instance_margins(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(margin, weakest true class, best wrong class) of every row: margin = the lowest score
    among the row's labels minus the highest among the classes it lacks (+inf for a row with
    no label or every label, which ``instance`` cannot corrupt)."""
    positive = labels.astype(bool)
    true_scores = np.where(positive, scores, np.inf)
    wrong_scores = np.where(positive, -np.inf, scores)
    weakest, best_wrong = true_scores.argmin(axis=1), wrong_scores.argmax(axis=1)
    rows = np.arange(labels.shape[0])
    margin = true_scores[rows, weakest] - wrong_scores[rows, best_wrong]
    counts = positive.sum(axis=1)
    margin[(counts == 0) | (counts == labels.shape[1])] = np.inf
    return margin, weakest, best_wrong


def _instance(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
    """Instance-dependent noise: fit :func:`classifier_scores` on the clean labels and the
    training features; the floor(r*N) rows with the smallest :func:`instance_margins` (the most
    ambiguous to the classifier) each have their weakest true label replaced by their best
    wrong class.

    Single-label data: Chen et al. (AAAI 2021), the rows a classifier trained on clean labels
    is least sure of are relabelled as its most likely wrong class. Multi-label data (cmhash's
    own extension, no paper defines it): one-vs-rest scores; the margin of a row is its least
    confident true label against its most confident wrong class. The classifier is
    deterministic given the features; the seed only orders rows with equal margins
    (duplicated feature rows)."""
    n_rows = labels.shape[0]
    k = noisy_row_count(rate, n_rows)
    noisy = labels.copy()
    if k == 0:
        return noisy
    _eligible_for_swap(labels, k, "instance", rate)
    if features is None:
        raise DataError("noise model 'instance' reads the training features (corrupt(..., features=(image, text)))")
    margin, weakest, best_wrong = instance_margins(labels, classifier_scores(labels, features))
    rows = np.lexsort((rng.random(n_rows), margin))[:k]
    noisy[rows, weakest[rows]] = 0
    noisy[rows, best_wrong[rows]] = 1
    return noisy


def _dcgmh_groups(n_noisy: int) -> list[slice]:
    """Group bounds of DCGMH's ``torch.chunk(indices, 4)`` (data_loader.py:125-126): chunks of ceil(K/4) rows, the last
    one shorter (e.g. K = 10 -> 3, 3, 3, 1). Where torch.chunk would return fewer than four
    chunks (K = 6 -> 2, 2, 2; the published code then fails to unpack), the missing trailing
    groups are empty."""
    size = math.ceil(n_noisy / 4)
    return [slice(min(g * size, n_noisy), min((g + 1) * size, n_noisy)) for g in range(4)]


def _dcgmh(labels: np.ndarray, rate: float, rng: np.random.Generator, features: Features | None = None) -> np.ndarray:
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


@dataclass(frozen=True)
class NoiseModel:
    """A registered noise model: its draw and whether it reads the training features.

    ``features``: ``"never"``; ``"always"``; or ``"single-label"`` (only on labels where no row
    holds two classes). The workflow makes the dataset's feature files inputs of the noise jobs
    of every model that may read them (:attr:`may_read_features`: whether the labels are
    single-label is not known before the dataset is built); :func:`corrupt` needs ``features``
    exactly where :meth:`reads_features` is true."""

    name: str
    draw: NoiseFn
    features: FeatureUse = "never"

    @property
    def may_read_features(self) -> bool:
        return self.features != "never"

    def reads_features(self, labels: np.ndarray) -> bool:
        return self.features == "always" or (self.features == "single-label" and _single_label(np.asarray(labels)))


NOISE_MODELS: Mapping[str, NoiseModel] = types.MappingProxyType({m.name: m for m in (
    NoiseModel("nrch", _nrch),
    NoiseModel("dcgmh", _dcgmh),
    NoiseModel("sym", _sym),
    NoiseModel("missing", _missing),
    NoiseModel("classcond", _classcond, features="single-label"),
    NoiseModel("instance", _instance, features="always"),
)})
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


def corrupt(labels: np.ndarray, model: str, rate: float, seed: int,
            features: Sequence[Any] | np.ndarray | Features | None = None) -> NoiseResult:
    """Corrupt the clean binary ``labels`` (N x C) with the named noise ``model`` at ``rate``.

    ``rate`` must lie in [0, 1); ``seed`` seeds ``numpy.random.default_rng``. ``features``: the
    same rows' features, one array or a sequence (image, text); read only by a model whose
    :meth:`NoiseModel.reads_features` is true for these labels (DataError if it is then
    missing), ignored otherwise. Returns a :class:`NoiseResult` with a fresh uint8 array
    (``labels`` is never modified) and the corrupted-row mask. Rate 0 returns an unchanged copy
    and an all-False mask. Unknown model or out-of-range rate -> ConfigError naming the key.
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
    spec = NOISE_MODELS[model]
    prepared = None
    if spec.reads_features(clean) and noisy_row_count(rate_f, clean.shape[0]) > 0:
        if features is None:
            raise DataError(f"noise model {model!r} reads the training features on these labels: pass "
                            "features=(image, text), the same rows' feature arrays")
        prepared = Features.from_modalities(features, clean.shape[0])
    noisy = spec.draw(clean, rate_f, np.random.default_rng(int(seed)), prepared)
    corrupted = (noisy != clean).any(axis=1)
    return NoiseResult(noisy=noisy, corrupted=corrupted)


def noise_statistics(clean: np.ndarray, noisy: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """The realised noise, as noise.json records it: rows changed, and per class the labels
    removed (1 -> 0) and added (0 -> 1), in class order (``classes`` names them when given)."""
    clean_b, noisy_b = np.asarray(clean).astype(bool), np.asarray(noisy).astype(bool)
    removed = (clean_b & ~noisy_b).sum(axis=0)
    added = (~clean_b & noisy_b).sum(axis=0)
    stats: dict[str, Any] = {
        "rows": int(clean_b.shape[0]), "rows_changed": int((clean_b != noisy_b).any(axis=1).sum()),
        "labels_removed": int(removed.sum()), "labels_added": int(added.sum()),
        "removed_per_class": [int(v) for v in removed], "added_per_class": [int(v) for v in added]}
    if classes is not None:
        stats["classes"] = [str(c) for c in classes]
    return stats
