"""Seed-paired significance tests: each method against a reference method, cell by cell, with
Holm's correction over a table's comparisons.

A study's runs of two methods in the same cell (dataset, noise model, rate, ...) with the same
seed share that seed's noise draw and initialisation seed, so their difference is paired by
seed: :func:`paired_tests` applies the paired t-test (``scipy.stats.ttest_rel``: Student's t
on the per-seed differences, n - 1 degrees of freedom, two-sided) to every method against the
reference in every cell. A table tests many cells at once, so :func:`holm` adjusts the p-values
of one table's comparisons together (Holm 1979, "A simple sequentially rejective multiple test
procedure", Scand. J. Statist. 6: 65-70), which bounds the family-wise error rate at alpha
without assuming the tests are independent; :func:`mark_significant` flags the comparisons
whose adjusted p-value falls below alpha.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cmhash.errors import DataError

#: The columns :func:`paired_tests` adds to the cell keys and the method.
TEST_COLUMNS = ["reference", "n_pairs", "mean_difference", "t", "p"]


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the i-th
    is ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting where it is below alpha is Holm's
    procedure at level alpha. NaN (a comparison that could not be tested) stays NaN and does
    not count in m. Ties keep their given order (a stable sort), which leaves the result
    unchanged since tied values get the same adjusted value.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"holm: expected a 1-D sequence of p-values, got shape {p.shape}")
    tested = ~np.isnan(p)
    if ((p[tested] < 0) | (p[tested] > 1)).any():
        raise ValueError("holm: p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    m = int(tested.sum())
    if m == 0:
        return out
    order = np.argsort(p[tested], kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[tested][order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    out[tested] = adjusted
    return out


def paired_tests(values: pd.DataFrame, reference: str, keys: Sequence[str], *, method: str = "method",
                 pair: str = "seed", value: str = "map") -> pd.DataFrame:
    """Every method against ``reference`` in every cell: a paired t-test over ``pair``.

    ``values``: one row per (``keys``, ``method``, ``pair``) holding ``value``. For each cell
    (``keys``) and each method other than the reference that the cell holds, the method's
    values are paired with the reference's by ``pair`` (pairs either lacks are left out) and
    tested with ``scipy.stats.ttest_rel`` (two-sided). Returns one row per comparison: the
    keys, ``method`` and :data:`TEST_COLUMNS`, with ``mean_difference`` = mean of method minus
    reference. ``t`` and ``p`` are NaN where the test is undefined: fewer than two pairs, or
    no difference at all (:func:`_paired_t`). A cell without the reference gives no rows.
    """
    keys = list(keys)
    rows = [*keys, method, pair]
    duplicated = values.duplicated(subset=rows, keep=False)
    if duplicated.any():
        first = values.loc[duplicated, rows].iloc[0].to_dict()
        raise DataError(f"paired_tests: several rows for the same cell, method and {pair} (e.g. {first})")
    wide = values.set_index(rows)[value].unstack(method)
    out = []
    if reference in wide.columns:
        for cell, block in wide.groupby(level=keys, sort=True):
            cell = cell if isinstance(cell, tuple) else (cell,)
            for other in (c for c in block.columns if c != reference):
                pairs = block[[reference, other]].dropna()
                if pairs.empty:
                    continue
                diff = pairs[other] - pairs[reference]
                t, p = _paired_t(pairs[other].to_numpy(), pairs[reference].to_numpy())
                out.append({**dict(zip(keys, cell)), method: other, "reference": reference,
                            "n_pairs": len(pairs), "mean_difference": float(diff.mean()), "t": t, "p": p})
    return pd.DataFrame(out, columns=[*keys, method, *TEST_COLUMNS])


#: Differences equal to this relative tolerance count as equal (float rounding is no spread).
_SAME = 1e-12


def _paired_t(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(t, p) of ``scipy.stats.ttest_rel(a, b)``, two-sided; (NaN, NaN) for fewer than two pairs.
    Differences that are all the same up to float rounding are taken as exactly the same, so
    the outcome does not hang on the last bits: none at all (identical runs) gives (NaN, NaN),
    as scipy does; the same non-zero difference at every seed gives (±inf, 0), scipy's value
    for an exactly constant difference."""
    diff = a - b
    if diff.size < 2:
        return np.nan, np.nan
    if np.ptp(diff) <= _SAME * max(1.0, float(np.abs(diff).max())):
        mean = float(diff.mean())
        return (np.nan, np.nan) if abs(mean) <= _SAME else (float(np.copysign(np.inf, mean)), 0.0)
    result = stats.ttest_rel(a, b)
    return float(result.statistic), float(result.pvalue)


def mark_significant(tests: pd.DataFrame, alpha: float = 0.05, family: Sequence[str] = ()) -> pd.DataFrame:
    """``tests`` (:func:`paired_tests`) with ``p_holm`` (Holm-adjusted within each group of
    ``family``, e.g. one table per dataset; all rows together when empty), ``significant``
    (p_holm < alpha) and ``sign`` (``higher`` / ``lower`` than the reference where
    significant, else empty)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: {alpha} is outside (0, 1)")
    out = tests.copy()
    if family:
        out["p_holm"] = out.groupby(list(family), sort=False)["p"].transform(lambda p: holm(p.to_numpy()))
    else:
        out["p_holm"] = holm(out["p"].to_numpy())
    out["significant"] = out["p_holm"] < alpha  # NaN (untested) compares False
    out["sign"] = np.where(out["significant"], np.where(out["mean_difference"] > 0, "higher", "lower"), "")
    return out
