"""Atomic writes and validated reads (cmhash.io)."""
import os
import stat

import numpy as np
import pytest

from cmhash.errors import DataError
from cmhash.io import atomic_path, load_json, load_npy, save_json, save_npy


def test_atomic_write_leaves_nothing_behind_on_failure_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out" / "codes.npy"
    save_npy(target, np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["codes.npy"]


def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    save_json(tmp_path / "a.json", {"x": 1})
    mode = stat.S_IMODE((tmp_path / "a.json").stat().st_mode)
    assert mode == 0o666 & ~old and mode & stat.S_IRGRP  # readable by the group, as open() would make it
    assert load_json(tmp_path / "a.json") == {"x": 1}


def test_load_npy_names_the_file_on_nan_and_wrong_rank(tmp_path):
    save_npy(tmp_path / "f.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match=r"f\.npy"):
        load_npy(tmp_path / "f.npy")
    with pytest.raises(DataError, match=r"f\.npy"):
        load_npy(tmp_path / "f.npy", ndim=1, finite=False)
