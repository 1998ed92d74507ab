"""The runs' curves and per-epoch diagnostics as tidy (long) frames for the figures.

Each cell's run folder holds ``metrics.json`` beside ``config.json`` (the cell), ``curves.npz``
(written by the evaluation stage: ``<direction>/precision_at_n/{n,precision}`` and
``<direction>/pr/{radius,precision,recall,n_queries}``) and ``history.csv`` (one row per epoch;
the selection diagnostics are the ``select/*`` columns named in :mod:`cmhash.diagnostics`).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cmhash import diagnostics
from cmhash.cell import COLUMNS, served_cells
from cmhash.errors import DataError
from cmhash.io import load_json

#: The columns naming a cell (``config.json``'s ``cell``), first in every frame.
CELL_COLUMNS = list(COLUMNS)


def _cells(metric_files: Iterable[str | Path], grid: list[dict[str, Any]] | None = None
           ) -> Iterable[tuple[dict[str, Any], Path]]:
    """Each run's cell and folder, from the paths of its ``metrics.json``; a label-free run once
    for every cell of ``grid`` it serves (:func:`cmhash.cell.served_cells`)."""
    for path in metric_files:
        run = Path(path).parent
        for cell in served_cells(load_json(run / "config.json")["cell"], grid):
            yield {k: cell[k] for k in CELL_COLUMNS}, run


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (re-run the evaluation of this cell)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def load_curves(metric_files: Iterable[str | Path], grid: list[dict[str, Any]] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision@N and precision-recall curves of every cell and direction.

    Returns ``(precision_at_n, pr)``: the first with columns cell + ``direction, n, precision``,
    the second cell + ``direction, radius, precision, recall``. PR points at a Hamming radius
    no query's average covers (``n_queries == 0``: nothing relevant retrieved yet) are left
    out, as they are placeholders (0, 0), not measurements.
    """
    pn_parts, pr_parts = [], []
    for cell, run in _cells(metric_files, grid):
        curves = _load_npz(run / "curves.npz")
        directions = sorted({key.split("/", 1)[0] for key in curves})
        for direction in directions:
            pn = pd.DataFrame({"n": curves[f"{direction}/precision_at_n/n"],
                               "precision": curves[f"{direction}/precision_at_n/precision"]})
            pn_parts.append(pn.assign(**cell, direction=direction))
            pr = pd.DataFrame({key: curves[f"{direction}/pr/{key}"]
                               for key in ("radius", "precision", "recall", "n_queries")})
            pr = pr[pr["n_queries"] > 0].drop(columns="n_queries")
            pr_parts.append(pr.assign(**cell, direction=direction))
    pn_columns = CELL_COLUMNS + ["direction", "n", "precision"]
    pr_columns = CELL_COLUMNS + ["direction", "radius", "precision", "recall"]
    return _concat(pn_parts, pn_columns), _concat(pr_parts, pr_columns)


def load_diagnostics(metric_files: Iterable[str | Path]) -> pd.DataFrame:
    """Every cell's sample-selection diagnostics over epochs, one row per (cell, epoch,
    diagnostic) with columns cell + ``epoch, diagnostic, value``; ``diagnostic`` is the name
    without the ``select/`` prefix. Cells whose method logs none contribute no rows."""
    parts = []
    for cell, run in _cells(metric_files):
        history = pd.read_csv(run / "history.csv")
        columns = [c for c in history.columns if c.startswith(diagnostics.PREFIX)]
        if not columns:
            continue
        long = history.melt(id_vars="epoch", value_vars=columns, var_name="diagnostic").dropna(subset=["value"])
        long["diagnostic"] = long["diagnostic"].str.removeprefix(diagnostics.PREFIX)
        parts.append(long.assign(**cell))
    return _concat(parts, CELL_COLUMNS + ["epoch", "diagnostic", "value"])


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]
