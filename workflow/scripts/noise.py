"""Seeded label noise on a dataset's training rows."""
from pathlib import Path

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_noise

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
stage_noise(Path(sm.input.labels).parent, sm.wildcards.noise_model, float(sm.wildcards.rate),
            int(sm.wildcards.seed), Path(sm.output.noisy).parent, published_file=sm.input.published or None)
