"""Train one cell of the grid."""
from pathlib import Path

from cmhash.config import Cell
from cmhash.logs import setup_logging
from cmhash.pipeline import stage_train

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
w = sm.wildcards
cell = Cell(w.dataset, w.method, w.noise_model, float(w.rate), int(w.bits), int(w.seed), w.protocol)
stage_train(dict(sm.config, threads=sm.threads), cell, Path(sm.input.dataset).parent, Path(sm.input.noisy).parent,
            Path(sm.output.record).parent, tracking_uri=sm.params.uri)
