"""Comparison with the published numbers (config/published_results.csv, a copy of the NRCH
README's results table; every row names its source).

Our cells are matched to published ones by dataset (through its source's benchmark family, :mod:`cmhash.families`), method,
direction, noise rate (the published tables use the ``nrch`` noise model) and bit length;
cells with no published counterpart are kept and marked, never dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from cmhash.cell import SUMMARY_KEYS
from cmhash.data import SOURCES

#: Our registered methods -> their names in the published tables: the one place a method is
#: mapped (the delta table and the paper tables both read it, through :func:`published_name`).
#: ``baseline`` is our DCMH-style baseline, not DCMH (``dcmh`` is), so it maps to nothing; nor
#: does a named variant (``methods.<name>.variant_of``), which is a row of its own. SCBCH and
#: DCGMH publish their own tables, not NRCH's.
PUBLISHED_METHOD: Mapping[str, str] = MappingProxyType({
    "dcmh": "DCMH", "dchuc": "DCHUC", "djsrh": "DJSRH", "dgcpn": "DGCPN", "ucch": "UCCH", "nrch": "NRCH",
    "scbch": "SCBCH", "dcgmh": "DCGMH",
})
#: Published names of SCBCH's and DCGMH's own tables (not in config/published_results.csv yet).
PUBLISHED_ELSEWHERE = frozenset({"SCBCH", "DCGMH"})

NO_PUBLIC_CODE = "no public code"
NOT_IMPLEMENTED = "not yet implemented in cmhash"
NOT_IN_GRID = "not in this grid"
#: Methods of the published tables that cmhash cannot run, and why (the README lists them).
NOT_RUNNABLE: Mapping[str, str] = MappingProxyType({
    "ADAH": NO_PUBLIC_CODE, "CPAH": NO_PUBLIC_CODE, "PIP": NO_PUBLIC_CODE, "CMMQ": NO_PUBLIC_CODE,
    "MIAN": NO_PUBLIC_CODE, "LtCMH": NO_PUBLIC_CODE,
})
MISSING = "no published figure"


def published_name(method: str) -> str | None:
    """The published name of our method ``method``; None for the baseline, a variant or any
    method no published table holds."""
    return PUBLISHED_METHOD.get(method)


def not_run_reason(published: str) -> str:
    """Why a published method has no run here: no public code / not yet implemented
    (:data:`NOT_RUNNABLE`), or, for one cmhash implements, that the grid does not run it."""
    if published in NOT_RUNNABLE:
        return NOT_RUNNABLE[published]
    return NOT_IN_GRID if published in PUBLISHED_METHOD.values() else NOT_IMPLEMENTED


def load_published(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    expected = {"source", "method", "dataset", "direction", "noise", "bits", "map"}
    if not expected <= set(table.columns):
        raise ValueError(f"{path}: expected columns {sorted(expected)}")
    return table


def delta_table(results: pd.DataFrame, published: pd.DataFrame, dataset_sources: dict[str, str]) -> pd.DataFrame:
    """Ours (mean mAP over seeds) minus published, one row per our cell and direction."""
    keys = [k for k in SUMMARY_KEYS if k != "direction"] + ["direction"]  # the delta table's column order
    ours = results.groupby(keys, dropna=False)["map"].agg(ours="mean", seeds="count").reset_index()
    pub = published.assign(noise=published["noise"].astype(float), bits=published["bits"].astype(int))
    index = {(r.dataset, r.method, r.direction, round(r.noise, 6), r.bits): (r.map, r.source) for r in pub.itertuples()}
    values, sources = [], []
    for row in ours.itertuples():
        source = SOURCES.get(dataset_sources.get(row.dataset, ""))  # its benchmark family names the published rows
        key = (source.family if source else None, published_name(row.method),
               row.direction, round(float(row.rate), 6), int(row.bits))
        hit = index.get(key) if row.noise_model == "nrch" else None
        values.append(hit[0] if hit else np.nan)
        sources.append(hit[1] if hit else MISSING)
    ours["published"] = values
    ours["delta"] = ours["ours"] - ours["published"]
    ours["source"] = sources
    return ours


def delta_latex(delta: pd.DataFrame) -> str:
    """A booktabs table of ours, published and their difference; empty cells marked."""
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\caption{mAP@all: ours minus published (NRCH README table). "
             r"``--'': no published figure for that cell.}",
             r"\begin{tabular}{lllrrlrrr}", r"\toprule",
             r"Dataset & Method & Protocol & Noise & Bits & Dir. & Ours & Published & $\Delta$ \\", r"\midrule"]
    for r in delta.itertuples():
        pub = "--" if np.isnan(r.published) else f"{r.published:.3f}"
        dlt = "--" if np.isnan(r.delta) else f"{r.delta:+.3f}"
        name = r.dataset.replace("_", "\\_")
        lines.append(f"{name} & {r.method} & {r.protocol} & {r.rate:g} & {r.bits} & "
                     f"{r.direction} & {r.ours:.3f} & {pub} & {dlt} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)
