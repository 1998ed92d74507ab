"""Train one cell of the grid, on a GPU of its own when the machine has GPUs.

The GPU slot is taken (CUDA_VISIBLE_DEVICES set) before anything imports torch, and freed
when the job ends or dies; see cmhash.gpu_slots. ``exceed_memory_if_asked`` does nothing unless
a test sets its variable (see cmhash.fault_injection)."""
from contextlib import nullcontext
from pathlib import Path

from cmhash.threads import limit_native_threads

sm = snakemake  # noqa: F821
limit_native_threads(sm.threads)  # before numpy and torch load their pools (cmhash.threads)

from cmhash.fault_injection import exceed_memory_if_asked
from cmhash.gpu_slots import GpuSlot
from cmhash.logs import setup_logging

setup_logging(sm.log[0])
exceed_memory_if_asked(Path(sm.output.record).parent, sm.resources.get("mem_mb"))
with GpuSlot() if sm.config.get("device", "auto") != "cpu" else nullcontext():
    from cmhash.cell import Cell
    from cmhash.pipeline import stage_train

    noise = getattr(sm.input, "noise", None)  # none for a label-free cell (rule train_label_free)
    stage_train(dict(sm.config, threads=sm.threads), Cell.from_wildcards(sm.wildcards), Path(sm.input.dataset[0]).parent,
                Path(noise[0]).parent if noise else None, Path(sm.output.record).parent, tracking_uri=sm.params.uri)
