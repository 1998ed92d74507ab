"""Split sizes that cannot fit, found before any job runs (``check_config``).

* a raw source needs ``split.n_query`` and ``split.n_train`` (:func:`cmhash.pipeline.stage_prepare`);
* the validation rows are carved from the training rows: ``split.n_validation < split.n_train``
  (:func:`cmhash.data.canonical.paper_splits`);
* ``embedded``: the query and training rows come from the ``generate.n_images`` generated rows,
  so ``n_query + n_train`` cannot exceed them (the parser may drop a few more rows without a
  label or a common tag; that is caught by the prepare job);
* published feature files, where the file is present: the positional split of UCCH's
  ``mirflickr25k`` / ``nuswide_tc21`` release (``options.n_query`` / ``options.n_train``, or the
  published sizes) against the label file's rows, read from the file's header only
  (:func:`mat_rows`); Wikipedia's ``split.n_validation`` against the lines of its training
  list.

Every error names the config key.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cmhash.errors import ConfigError

#: UCCH feature sources with a positional split: source -> the dataset key of the importer.
_UCCH_SOURCES = {"mirflickr25k_ucch": "mirflickr25k", "nuswide_tc21_ucch": "nuswide_tc21"}


def mat_rows(path: str | os.PathLike) -> int | None:
    """The rows of the (first) array of a MATLAB file, from its header: the longer side of a
    label matrix (rows outnumber the classes in every release); None if unreadable."""
    import scipy.io

    try:
        entries = scipy.io.whosmat(str(path))
        shapes = [tuple(shape) for _, shape, _ in entries]
    except NotImplementedError:  # v7.3 (HDF5)
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                shapes = [tuple(handle[k].shape) for k in handle if isinstance(handle[k], h5py.Dataset)]
        except OSError:
            return None
    except Exception:  # noqa: BLE001 (scipy raises many types on a damaged file; the import job reports it)
        return None
    shapes = [s for s in shapes if s]
    return int(max(shapes[0])) if shapes else None


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def check_split_fits(name: str, ds: Mapping[str, Any], kind: str) -> None:
    """ConfigError naming ``datasets.<name>...`` if the split of dataset ``name`` (config ``ds``,
    its source of ``kind`` ``raw`` or ``features``) cannot fit its rows."""
    where = f"datasets.{name}"
    split = ds.get("split") or {}
    source = ds["source"]
    if kind == "raw":
        for key in ("n_query", "n_train"):
            if key not in split:
                raise ConfigError(f"{where}.split.{key}: required for raw source '{source}'")
    n_train, n_validation = split.get("n_train"), split.get("n_validation", 0)
    if n_train is not None and not 0 <= n_validation < n_train:
        raise ConfigError(f"{where}.split.n_validation: {n_validation} must be below split.n_train ({n_train}); "
                          "the validation rows are carved from the training rows")
    if source == "embedded":
        n_images = (ds.get("generate") or {}).get("n_images")
        if n_images is None:
            raise ConfigError(f"{where}.generate.n_images: required for source 'embedded' (the rows to generate)")
        needed = split["n_query"] + split["n_train"]
        if needed > n_images:
            raise ConfigError(f"{where}.split: n_query ({split['n_query']}) + n_train ({split['n_train']}) = {needed} "
                              f"exceed the {n_images} rows generated (datasets.{name}.generate.n_images)")
    elif source in _UCCH_SOURCES and ds.get("path"):
        from cmhash.data.published import PAPER_SPLIT_SIZES, UCCH_FILES

        dataset = _UCCH_SOURCES[source]
        folder = Path(ds["path"])
        folder = folder.parent if folder.is_file() else folder
        labels = folder / UCCH_FILES[dataset][2]
        rows = mat_rows(labels) if labels.is_file() else None
        if rows is not None:
            options = ds.get("options") or {}
            nq = options.get("n_query", PAPER_SPLIT_SIZES[dataset][0])
            nt = options.get("n_train", PAPER_SPLIT_SIZES[dataset][1])
            if nq + nt > rows:
                raise ConfigError(f"{where}.options: n_query ({nq}) + n_train ({nt}) = {nq + nt} exceed the {rows} "
                                  f"rows of {labels}")
            if not 0 <= n_validation < nt:
                raise ConfigError(f"{where}.split.n_validation: {n_validation} must be below the {nt} training rows")
    elif source == "wikipedia" and ds.get("path"):
        from cmhash.data.wikipedia import TRAIN_LIST

        folder = Path(ds["path"])
        folder = folder.parent if folder.is_file() else folder
        train_list = folder / TRAIN_LIST
        if train_list.is_file():
            rows = _count_lines(train_list)
            if not 0 <= n_validation < rows:
                raise ConfigError(f"{where}.split.n_validation: {n_validation} must be below the {rows} training "
                                  f"pairs of {train_list}")


__all__ = ["check_split_fits", "mat_rows"]
