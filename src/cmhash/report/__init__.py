"""Reporting: results table (CSV), LaTeX tables and figures from the runs' metrics."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmhash.io import atomic_path, save_text
from cmhash.pipeline import collect_results
from cmhash.report.figures import map_vs_noise
from cmhash.report.tables import latex_document, latex_table


def write_report(metric_files: list[str | Path], csv_path: str | Path, tables_path: str | Path,
                 figure_pdf: str | Path, figure_png: str | Path, figure_bits: int | None = None) -> pd.DataFrame:
    """Collect every cell's metrics and write the CSV, the LaTeX tables and the figure."""
    results = pd.DataFrame(collect_results(metric_files))
    with atomic_path(csv_path, suffix=".csv") as tmp:
        results.to_csv(tmp, index=False)
    save_text(tables_path, latex_document(latex_table(results)))
    map_vs_noise(results, figure_pdf, figure_png, bits=figure_bits)
    return results
