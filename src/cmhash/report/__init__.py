"""Reporting: results table (CSV), LaTeX tables and figures from the runs' metrics."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cmhash.io import atomic_path, save_text
from cmhash.pipeline import collect_results
from cmhash.report.figures import map_vs_noise
from cmhash.report.published import delta_latex, delta_table, load_published
from cmhash.report.tables import latex_document, latex_table


def write_report(metric_files: list[str | Path], csv_path: str | Path, tables_path: str | Path,
                 figure_pdf: str | Path, figure_png: str | Path, figure_bits: int | None = None,
                 published_csv: str | Path | None = None, dataset_sources: dict[str, str] | None = None,
                 delta_csv: str | Path | None = None, delta_tex: str | Path | None = None) -> pd.DataFrame:
    """Collect every cell's metrics and write the CSV, the LaTeX tables and the figure, and,
    given the published results, the table of ours minus published."""
    results = pd.DataFrame(collect_results(metric_files))
    with atomic_path(csv_path, suffix=".csv") as tmp:
        results.to_csv(tmp, index=False)
    save_text(tables_path, latex_document(latex_table(results)))
    map_vs_noise(results, figure_pdf, figure_png, bits=figure_bits)
    if published_csv and delta_csv and delta_tex:
        delta = delta_table(results, load_published(published_csv), dataset_sources or {})
        with atomic_path(delta_csv, suffix=".csv") as tmp:
            delta.to_csv(tmp, index=False)
        save_text(delta_tex, latex_document(delta_latex(delta)))
    return results
