"""The robustness study's figure and tables of one dataset."""
from cmhash.logs import setup_logging
from cmhash.report.robustness import write_robustness

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
out, settings = sm.output, sm.params.settings
write_robustness(list(sm.input.metrics), sm.wildcards.dataset, out.figure_pdf, out.figure_png, out.table_csv,
                 out.table_tex, out.auc_csv, out.auc_tex, grid=sm.params.grid, reference=settings["baseline"],
                 alpha=settings["alpha"], protocol=settings["protocol"], bits=sm.params.bits)
