"""Assemble the dataset folder (features + labels + splits) every later stage reads."""
from pathlib import Path

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_assemble

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
inputs = dict(sm.input.items())
prepared = Path(inputs["prepared"]).parent if "prepared" in inputs else None
stage_assemble(sm.params.cfg, Path(sm.output.labels).parent, prepared=prepared,
               image_npy=inputs.get("image"), text_npy=inputs.get("text"))
