"""VGG19 fc7 features of a prepared dataset's images, on a GPU of its own when there are GPUs
(the slot is taken before torch is imported; see cmhash.gpu_slots)."""
from contextlib import nullcontext
from pathlib import Path

from cmhash.gpu_slots import GpuSlot
from cmhash.logs import setup_logging

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
with GpuSlot() if sm.params.device != "cpu" else nullcontext():
    import torch

    from cmhash.pipeline import stage_image_features

    torch.set_num_threads(sm.threads)
    stage_image_features(sm.params.cfg, Path(sm.input.prepared).parent, sm.output.npy, device=sm.params.device)
