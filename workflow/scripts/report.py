"""LaTeX tables and figures from every cell's outputs."""
from cmhash.logs import setup_logging
from cmhash.report import FIGURES, write_report

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
out = sm.output
figures = {name: (out[f"{name}_pdf"], out[f"{name}_png"]) for name in FIGURES}
write_report(list(sm.input.metrics), out.csv, out.tables, *figures.pop("map_vs_noise"),
             figure_bits=sm.params.figure_bits, published_csv=sm.params.published, dataset_sources=sm.params.sources,
             delta_csv=out.delta_csv, delta_tex=out.delta_tex, figures=figures, grid=sm.params.grid,
             paper_csv=out.paper_csv, paper_tex=out.paper_tex)
