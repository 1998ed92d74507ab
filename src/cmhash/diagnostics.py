"""The fixed names and computation of sample-selection diagnostics.

Every method's per-epoch ``Selection`` is scored against the true corruption mask (the noise
stage's ``corrupted.npy``), which the method itself never sees. The names are fixed so that
reports and figures read every method's diagnostics the same way.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

PREFIX = "select/"
#: Fraction of training rows kept this epoch.
KEPT_FRACTION = "select/kept_fraction"
#: Of the kept rows, the fraction that is truly clean.
PRECISION = "select/precision"
#: Of the truly clean rows, the fraction kept.
RECALL = "select/recall"
#: ROC-AUC of the method's clean score (or weight) against the true clean mask.
AUC = "select/auc"
#: Mean weight of clean rows and of corrupted rows (weighting methods).
WEIGHT_CLEAN = "select/weight_clean"
WEIGHT_NOISY = "select/weight_noisy"
#: Estimated noise rate (methods that estimate one) and the true rate of the training rows.
NOISE_RATE_ESTIMATE = "select/noise_rate_estimate"
NOISE_RATE_TRUE = "select/noise_rate_true"

#: Methods that flag rows as noisy but keep training on them (``Selection.flagged``, DCGMH):
#: the fraction flagged, of the flagged rows the fraction truly corrupted, and of the corrupted
#: rows the fraction flagged.
FLAGGED_FRACTION = "select/flagged_fraction"
FLAGGED_PRECISION = "select/flagged_precision"
FLAGGED_RECALL = "select/flagged_recall"
#: Label correction (``Selection.corrected_labels``): the fraction of rows corrected, and of those
#: the fraction whose corrected label vector equals the clean one exactly.
CORRECTED_FRACTION = "select/corrected_fraction"
CORRECTION_ACCURACY = "select/correction_accuracy"

NAMES = (KEPT_FRACTION, PRECISION, RECALL, AUC, WEIGHT_CLEAN, WEIGHT_NOISY, NOISE_RATE_ESTIMATE,
         NOISE_RATE_TRUE, FLAGGED_FRACTION, FLAGGED_PRECISION, FLAGGED_RECALL, CORRECTED_FRACTION,
         CORRECTION_ACCURACY)


def selection_diagnostics(corrupted: np.ndarray, kept: np.ndarray | None = None,
                          weights: np.ndarray | None = None, clean_score: np.ndarray | None = None,
                          extra: dict[str, float] | None = None, *, flagged: np.ndarray | None = None,
                          corrected_labels: np.ndarray | None = None,
                          clean_labels: np.ndarray | None = None) -> dict[str, float]:
    """Score a selection against the true corruption mask (True = corrupted row).

    ``flagged`` (rows predicted noisy, still trained on) gives the ``FLAGGED_*`` scores and,
    when ``kept`` is None, the unflagged rows are scored as the kept (predicted-clean) set.
    ``corrected_labels`` (rows x classes, NaN rows = not corrected) is compared with
    ``clean_labels`` (the trainer's clean labels of the same rows, never given to a method).
    Quantities that are undefined (e.g. AUC when every row is clean) are left out rather than
    reported as a misleading number.
    """
    corrupted = np.asarray(corrupted, dtype=bool)
    clean = ~corrupted
    out: dict[str, float] = {NOISE_RATE_TRUE: float(corrupted.mean()) if corrupted.size else 0.0}
    if flagged is not None:
        flagged = np.asarray(flagged, dtype=bool)
        out[FLAGGED_FRACTION] = float(flagged.mean())
        if flagged.any():
            out[FLAGGED_PRECISION] = float((flagged & corrupted).sum() / flagged.sum())
        if corrupted.any():
            out[FLAGGED_RECALL] = float((flagged & corrupted).sum() / corrupted.sum())
        if kept is None:
            kept = ~flagged
    if corrected_labels is not None and clean_labels is not None:
        corrected_labels = np.asarray(corrected_labels, dtype=np.float64)
        done = ~np.isnan(corrected_labels).any(axis=1)
        out[CORRECTED_FRACTION] = float(done.mean())
        if done.any():
            same = (corrected_labels[done] == np.asarray(clean_labels)[done]).all(axis=1)
            out[CORRECTION_ACCURACY] = float(same.mean())
    if kept is not None:
        kept = np.asarray(kept, dtype=bool)
        out[KEPT_FRACTION] = float(kept.mean())
        if kept.any():
            out[PRECISION] = float((kept & clean).sum() / kept.sum())
        if clean.any():
            out[RECALL] = float((kept & clean).sum() / clean.sum())
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if clean.any():
            out[WEIGHT_CLEAN] = float(weights[clean].mean())
        if corrupted.any():
            out[WEIGHT_NOISY] = float(weights[corrupted].mean())
    score = clean_score if clean_score is not None else weights
    if score is not None and clean.any() and corrupted.any():
        out[AUC] = float(roc_auc_score(clean, np.asarray(score, dtype=np.float64)))
    for key, value in (extra or {}).items():
        out[key if key.startswith(PREFIX) else PREFIX + key] = float(value)
    return out
