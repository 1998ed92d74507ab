"""Generate the embedded dataset in MIRFlickr-25K's raw layout."""
from cmhash.logs import setup_logging
from cmhash.pipeline import stage_generate

setup_logging(snakemake.log[0])  # noqa: F821
stage_generate(snakemake.params.cfg, snakemake.output[0])  # noqa: F821
