"""VGG19 fc7 features of a prepared dataset's images."""
from pathlib import Path

import torch

from cmhash.logs import setup_logging
from cmhash.pipeline import stage_image_features

setup_logging(snakemake.log[0])  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821
stage_image_features(snakemake.params.cfg, Path(snakemake.input.prepared).parent,  # noqa: F821
                     snakemake.output.npy, device=snakemake.params.device)  # noqa: F821
