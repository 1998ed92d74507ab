"""Faults that only tests turn on, through environment variables; unset, nothing happens.

``CMHASH_TEST_EXCEED_MEMORY=<run dir>`` (a cell's run folder as the workflow names it, e.g.
``results/runs/embedded/baseline/nrch-0.5/bits16/seed0/sound``): the first training job of that
cell allocates more memory than it asked its scheduler for, so that the scheduler kills it;
tests/test_slurm_real.py checks that SLURM does and that the retry, with more memory, completes.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

EXCEED_MEMORY = "CMHASH_TEST_EXCEED_MEMORY"
MARKER = ".exceeded_memory"  # in the run folder: the retry finds it and runs normally
EXTRA_MB = 64

log = logging.getLogger(__name__)


def exceed_memory_if_asked(run_dir: str | Path, mem_mb: int | None, hold_seconds: float = 60.0) -> None:
    """When ``$CMHASH_TEST_EXCEED_MEMORY`` names ``run_dir`` and this cell has not done so before:
    touch ``mem_mb + 64`` MB (the job's memory request and then some, page by page, so that it
    counts as resident) and wait up to ``hold_seconds`` to be killed. If nothing kills the job,
    free the memory, log a warning and return (the test then finds no killed attempt)."""
    target = os.environ.get(EXCEED_MEMORY)
    if not target or Path(target) != Path(run_dir) or not mem_mb:
        return
    marker = Path(run_dir) / MARKER
    if marker.exists():
        log.info("%s: this cell already exceeded its memory once; running normally", EXCEED_MEMORY)
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{time.time()}\n")
    size = (int(mem_mb) + EXTRA_MB) * 2**20
    log.warning("%s: allocating %d MB, past this job's request of %d MB", EXCEED_MEMORY, size >> 20, mem_mb)
    block = bytearray(size)
    block[::4096] = b"\x01" * len(range(0, size, 4096))  # write every page, so that all of it is resident
    deadline = time.monotonic() + hold_seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
    del block
    log.warning("%s: still alive after %.0f s past the memory request; continuing", EXCEED_MEMORY, hold_seconds)
