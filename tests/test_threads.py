"""The native thread pools of a workflow job are sized to its threads before they load."""
import os
import subprocess
import sys

import pytest

from cmhash.threads import THREAD_VARIABLES, limit_native_threads


def test_the_pools_get_the_jobs_threads_before_numpy_and_torch_load():
    code = ("import sys; from cmhash.threads import limit_native_threads; limit_native_threads(1); "
            "import torch, numpy; from threadpoolctl import threadpool_info; "
            "print(torch.get_num_threads(), sorted({p['num_threads'] for p in threadpool_info()}))")
    env = {**os.environ, "OMP_NUM_THREADS": "7"}  # the job's allotment wins over the environment
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "[1]"], out.stdout + out.stderr


def test_too_late_is_a_warning_and_bad_counts_an_error(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    import numpy  # noqa: F401  (already loaded in the test process)

    with pytest.warns(RuntimeWarning, match="already imported"):
        limit_native_threads(2)
    assert os.environ["OMP_NUM_THREADS"] == "2"
    with pytest.raises(ValueError, match="threads must be >= 1"):
        limit_native_threads(0)
