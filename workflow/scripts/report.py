"""LaTeX tables and figures from every cell's metrics."""
from cmhash.logs import setup_logging
from cmhash.report import write_report

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
write_report(list(sm.input), csv_path=sm.output.csv, tables_path=sm.output.tables,
             figure_pdf=sm.output.pdf, figure_png=sm.output.png, figure_bits=(sm.config.get("report") or {}).get("figure_bits"),
             published_csv=sm.params.published, dataset_sources=sm.params.sources,
             delta_csv=sm.output.delta_csv, delta_tex=sm.output.delta_tex)
