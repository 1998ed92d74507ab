"""Parse a raw dataset layout into the prepared form with its splits."""
from pathlib import Path

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_prepare

setup_logging(snakemake.log[0])  # noqa: F821
stage_prepare(snakemake.params.cfg, snakemake.input.raw, Path(snakemake.output.labels).parent)  # noqa: F821
