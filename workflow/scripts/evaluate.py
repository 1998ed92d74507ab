"""Final retrieval metrics of one trained cell."""
from pathlib import Path

from cmhash.threads import limit_native_threads

sm = snakemake  # noqa: F821
limit_native_threads(sm.threads)  # before numpy and torch load their pools (cmhash.threads)

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_evaluate

setup_logging(sm.log[0])
stage_evaluate(sm.config, Path(sm.input.labels).parent, Path(sm.output.metrics).parent)
