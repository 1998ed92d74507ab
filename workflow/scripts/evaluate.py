"""Final retrieval metrics of one trained cell."""
from pathlib import Path

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_evaluate

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
stage_evaluate(sm.config, Path(sm.input.labels).parent, Path(sm.output.metrics).parent)
