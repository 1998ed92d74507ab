"""One job, the threads Snakemake gave it: the native thread pools sized before they start.

``torch.set_num_threads`` sizes only torch's intra-op pool. OpenMP (which torch's CPU kernels
also enter), OpenBLAS / MKL (numpy, scikit-learn's GaussianMixture) and numba size their own
pools from the environment when they load, by default one thread per core. Two 1-thread jobs
on a 2-core machine then run four or more busy threads whose spin-waits starve each other: a
DCGMH cell of the robustness preset trained in 2 s alone and in 151 s beside a second one; with
the pools at one thread each, 10 s (benchmarks/bench_denormal.py's docstring, 2026-12-02).
Snakemake's shell (and so its ``script:`` jobs) already sets the OpenMP, OpenBLAS, MKL, vecLib
and numexpr variables to the job's threads (snakemake/shell.py:281-286) but not numba's; this
sets all of them, the same in the workflow and in a process started by hand (a benchmark).

:func:`limit_native_threads` must run before numpy, torch or numba is imported (the workflow's
training and evaluation scripts call it first)."""
from __future__ import annotations

import os
import sys
import warnings

#: The variables the native pools read at load time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_POOLED_MODULES = ("numpy", "torch", "numba", "sklearn")


def limit_native_threads(threads: int) -> None:
    """Size every native thread pool to ``threads`` (the job's allotment; it overrides the
    environment, as Snakemake's own allotment does for the scheduler). Warns if a pooled library
    is already loaded: its pool is then sized already and the job runs on, only slower."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    loaded = [m for m in _POOLED_MODULES if m in sys.modules]
    if loaded:
        warnings.warn(f"limit_native_threads({threads}): {loaded} already imported, their thread pools keep "
                      f"their size; call it before importing them", RuntimeWarning, stacklevel=2)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
