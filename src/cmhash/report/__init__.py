"""Reporting: results table (CSV), LaTeX tables and figures from the runs' outputs."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cmhash.io import atomic_path, save_text
from cmhash.pipeline import collect_results
from cmhash.report import figures as fig
from cmhash.report.collect import load_curves, load_diagnostics
from cmhash.report.paper_table import (
    paper_tables,
    paper_tables_frame,
    paper_tables_latex,
    without_table,
)
from cmhash.report.published import delta_latex, delta_table, load_published
from cmhash.report.tables import latex_document, latex_table

#: The report's figures by name; by default each is written as ``<name>.pdf`` and ``<name>.png``
#: beside the mAP figure (``delta_published`` only when the published results are given).
FIGURES = ("map_vs_noise", "precision_at_n", "pr_curves", "selection_diagnostics", "delta_published")

FigurePaths = tuple[str | Path, str | Path]


def figure_paths(folder: str | Path) -> dict[str, tuple[Path, Path]]:
    """The default (PDF, PNG) paths of every figure in ``folder``."""
    folder = Path(folder)
    return {name: (folder / f"{name}.pdf", folder / f"{name}.png") for name in FIGURES}


def write_report(metric_files: list[str | Path], csv_path: str | Path, tables_path: str | Path,
                 figure_pdf: str | Path, figure_png: str | Path, figure_bits: int | None = None,
                 published_csv: str | Path | None = None, dataset_sources: dict[str, str] | None = None,
                 delta_csv: str | Path | None = None, delta_tex: str | Path | None = None,
                 figures: Mapping[str, FigurePaths] | None = None,
                 grid: list[dict[str, Any]] | None = None,
                 paper_csv: str | Path | None = None, paper_tex: str | Path | None = None) -> pd.DataFrame:
    """Collect every cell's metrics, curves and diagnostics (read beside each ``metrics.json``)
    and write the CSV, the LaTeX tables and the figures, and, given the published results, the
    table and figure of ours minus published (``delta_csv``, ``delta_tex``) and the published
    tables whole with ours beside them (``paper_csv``, ``paper_tex``: :mod:`cmhash.report.paper_table`).

    ``figure_pdf``/``figure_png`` are the mAP-against-noise figure's paths; ``figures`` maps
    other names of ``FIGURES`` to their (PDF, PNG) paths, which default to ``figure_paths``
    of the mAP figure's folder. Figures are drawn at ``figure_bits`` (default: the largest run).
    ``grid``: the grid's cells (dicts), over which a label-free run is expanded (one flat line
    over the noise); without it each run stands for its own cell.
    """
    paths: dict[str, FigurePaths] = {**figure_paths(Path(figure_pdf).parent),
                                     "map_vs_noise": (figure_pdf, figure_png), **(figures or {})}
    results = pd.DataFrame(collect_results(metric_files, grid))
    if "label_free" in results:
        results["label_free"] = results["label_free"].eq(True)  # NaN (a label-reading cell) -> False
    with atomic_path(csv_path, suffix=".csv") as tmp:
        results.to_csv(tmp, index=False)
    save_text(tables_path, latex_document(latex_table(results)))
    fig.map_vs_noise(results, *paths["map_vs_noise"], bits=figure_bits)
    precision_at_n, pr = load_curves(metric_files, grid)
    fig.precision_at_n(precision_at_n, *paths["precision_at_n"], bits=figure_bits)
    fig.pr_curves(pr, *paths["pr_curves"], bits=figure_bits)
    fig.selection_diagnostics(load_diagnostics(metric_files), *paths["selection_diagnostics"], bits=figure_bits)
    published = load_published(published_csv) if published_csv else None
    if published is not None and delta_csv and delta_tex:
        delta = delta_table(results, published, dataset_sources or {})
        with atomic_path(delta_csv, suffix=".csv") as tmp:
            delta.to_csv(tmp, index=False)
        save_text(delta_tex, latex_document(delta_latex(delta)))
        fig.delta_to_published(delta, *paths["delta_published"])
    if published is not None and paper_csv and paper_tex:
        tables = paper_tables(results, published, dataset_sources or {})
        with atomic_path(paper_csv, suffix=".csv") as tmp:
            paper_tables_frame(tables).to_csv(tmp, index=False)
        without = without_table(results, tables, dataset_sources or {})
        save_text(paper_tex, latex_document(paper_tables_latex(tables, without)))
    return results
