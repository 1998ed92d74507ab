"""Importers of the published feature files of the benchmark datasets into the canonical
:class:`Dataset`, and the published NRCH/SCBCH noisy labels as a noise source.

Formats (key names, shapes and orientation as released; METHODS.md "Shared by NRCH and SCBCH"
and "DCGMH"). Official loaders read: LonganWANG-cs/NRCH @ b190e97 (utils/tools.py; SCBCH @
cfcc18c has the same loaders in utils/tools.py) and LiuJinyu1229/DCGMH @ f208cdb (data_loader.py).

* UCCH's release, used by NRCH and SCBCH: three MATLAB files per dataset, rows aligned and
  pre-shuffled — ``XAll`` (n x 4096 VGG fc7; some releases name it ``IAll``), ``YAll`` (n x
  text dims), ``LAll`` (n x classes):
  ``mirflickr25k-{iall-vgg,yall,lall}.mat`` (20,015 rows, 1,386-d tags, 24 classes; NRCH
  utils/tools.py:124-126) and ``nus-wide-tc21-{xall-vgg,yall,lall}-clean.mat`` (190,421 rows,
  1,000-d tags, 21 classes; utils/tools.py:273-275);
  ``iapr-tc12-rand.mat`` (``VDatabase``/``YDatabase``/``databaseL`` then ``VTest``/``YTest``/
  ``testL``: 18,000 + 2,000 rows, 2,912-d, 255 classes; database rows first, as the published
  loaders concatenate them, utils/tools.py:345-353); ``MSCOCO_deep_doc2vec_data.h5py`` (plain HDF5:
  ``train_imgs_deep``/``train_text``/``train_imgs_labels`` then the ``test_*`` ones, 300-d
  Doc2Vec, 80 classes; train rows first, utils/tools.py:197-201). The split is positional (the
  published loaders, e.g. utils/tools.py:127, 149, 170): query = the first ``n_query`` rows,
  train = the next ``n_train``, database = every row after the query.
* DCGMH's release: ``{mir,nus,coco}_cnn_twt.mat`` (MATLAB v7.3, read with h5py, arrays stored
  transposed) with its own split: ``I_tr``/``T_tr``/``L_tr`` (train), ``I_te``/``T_te``/``L_te``
  (query), ``I_db``/``T_db``/``L_db`` (database) (data_loader.py:14-18, 176-198). Rows of the
  dataset: train, query, database.

MATLAB v5/v7 files are read with :func:`scipy.io.loadmat`; v7.3 (HDF5) ones with h5py, each
array transposed back to MATLAB's orientation. An array that still has the row count as its
second dimension (a file written transposed) is turned round, since the three arrays of a split
must share their row count. A missing key or disagreeing shapes raise DataError naming the
file and key.

Noise: NRCH publishes its noisy training labels as ``{dataset}-lall-noise_{rate}.h5`` (HDF5,
``result`` = noisy, ``True`` = clean, training rows only: noise/generate.py:36-47, read at
utils/tools.py:64-77). :func:`published_noise` returns them
after checking that ``True`` equals the clean training labels the dataset holds.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from cmhash.data.canonical import Dataset, Splits
from cmhash.data.mirflickr import MIRFLICKR_CONCEPTS
from cmhash.errors import ConfigError, DataError
from cmhash.io import file_sha256

log = logging.getLogger("cmhash")

#: Positional split sizes of the published loaders (METHODS.md "Splits"; NRCH utils/tools.py:121-122, 194-195, 270-271, 354-355).
PAPER_SPLIT_SIZES: Mapping[str, tuple[int, int]] = {
    "mirflickr25k": (2000, 10000), "nuswide_tc21": (2100, 10500), "mscoco": (5000, 10000), "iapr_tc12": (2000, 10000),
}
UCCH_FILES: Mapping[str, tuple[str, str, str]] = {
    "mirflickr25k": ("mirflickr25k-iall-vgg.mat", "mirflickr25k-yall.mat", "mirflickr25k-lall.mat"),
    "nuswide_tc21": ("nus-wide-tc21-xall-vgg-clean.mat", "nus-wide-tc21-yall-clean.mat",
                     "nus-wide-tc21-lall-clean.mat"),
}
IAPR_FILE = "iapr-tc12-rand.mat"
COCO_FILE = "MSCOCO_deep_doc2vec_data.h5py"
DCGMH_FILES: Mapping[str, tuple[str, ...]] = {
    "mirflickr25k": ("mir_cnn_twt.mat",), "nuswide": ("nus_cnn_twt.mat",),
    "mscoco": ("coco_cnn_twt.mat", "coco_cnn_twt_2014.mat"),
}
IMAGE_KEYS = ("XAll", "IAll")

#: The published bytes of the authors' files, where known: name -> (sha256, size in bytes or
#: None, where the hash comes from). An import records each file as ``verified``, ``mismatch``
#: (a warning: a re-export may be legitimate) or ``unlisted`` (:func:`checksum_record`).
_NRCH_SHARED = "the file as NRCH published it (the copy in ../shared/data/mirflickr25k)"
PUBLISHED_SHA256: Mapping[str, tuple[str, int | None, str]] = {
    "mirflickr25k-iall-vgg.mat": ("95ed1d9ffdaf7fc8c8d24acc01d07367278d9936377bdc7a768a47bcd3cab540", 327925944,
                                  ("the Git LFS pointer in LonganWANG-cs/NRCH's history (NRCH's copy of UCCH's file; "
                                   "that UCCH's own download holds the same bytes is not verified)")),
    "mirflickr25k-lall.mat": ("173eec1fb2603bb54c893467c127325556fbe5bc91dd7e647d136a8e4e9fd07d", 51716, _NRCH_SHARED),
    "mirflickr25k-yall.mat": ("a53d2ba6a5f3672b5e747aaa8b76d4af6be568d300715c6910d8c67bdef55f7e", 327403, _NRCH_SHARED),
    "mirflickr25k-lall-noise_0.2.h5": ("9b45b5beb112be3e68054c6b428d4aec32a33881f5a33917a60ff9fc7eaf9e4a", 3842048,
                                       _NRCH_SHARED),
    "mirflickr25k-lall-noise_0.5.h5": ("9d00abebf089f8a59d7dad71ebfe85aaa9aaffeb2ab2a61fb31979af91ba6598", 3842048,
                                       _NRCH_SHARED),
    "mirflickr25k-lall-noise_0.8.h5": ("b2b9626c71b17400ac9c40e74a886c35ea6421f61927dbbd4d94b7b4ac6fb4b0", 3842048,
                                       _NRCH_SHARED),
}


def checksum_record(path: str | os.PathLike) -> dict[str, Any]:
    """The file's sha256 against the published one (:data:`PUBLISHED_SHA256`): ``status`` is
    ``verified``, ``mismatch`` (logged as a warning naming the file and both hashes) or
    ``unlisted`` (no published hash is known)."""
    path = Path(path)
    digest = file_sha256(path)
    known = PUBLISHED_SHA256.get(path.name)
    if known is None:
        return {"sha256": digest, "status": "unlisted"}
    expected, size, where = known
    status = "verified" if digest == expected else "mismatch"
    if status == "mismatch":
        log.warning("%s: sha256 %s (%d bytes) is not the published %s (%s bytes; %s); a re-export may be "
                    "legitimate, but results may not compare with the papers'", path, digest, path.stat().st_size,
                    expected, size if size is not None else "?", where)
    return {"sha256": digest, "status": status, "published_sha256": expected, "published_by": where}


def _source_files(paths: Sequence[Path]) -> dict[str, Any]:
    """The meta.json entries of the source files: ``source_files`` (name -> sha256) and
    ``checksums`` (name -> :func:`checksum_record`), hashing each file once."""
    records = {p.name: checksum_record(p) for p in paths}
    return {"source_files": {name: r["sha256"] for name, r in records.items()}, "checksums": records}


# -- reading MATLAB and HDF5 files -----------------------------------------------------------
def load_mat(path: str | os.PathLike, keys: Sequence[str | Sequence[str]]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a MATLAB file (v5/v7 via scipy, v7.3 via h5py, transposed back).

    A key may be a tuple of alternative names; the result is keyed by the first name of each.
    DataError naming the file and key if the file is missing or unreadable or a key is absent.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    wanted = [(k,) if isinstance(k, str) else tuple(k) for k in keys]
    names = sorted({n for alts in wanted for n in alts})
    try:
        mat = scipy.io.loadmat(str(path), variable_names=names)
        version = "v5"
    except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
        return _load_hdf5(path, wanted, transpose=True)
    except Exception as exc:  # scipy raises many unrelated types for unreadable files
        if h5py.is_hdf5(str(path)):
            return _load_hdf5(path, wanted, transpose=True)
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    out = {}
    for alts in wanted:
        name = next((n for n in alts if n in mat), None)
        if name is None:
            available = sorted(entry[0] for entry in scipy.io.whosmat(str(path)))
            raise DataError(f"{path}: key {_show(alts)} not found (MATLAB {version} file holding {available})")
        out[alts[0]] = np.asarray(mat[name])
    return out


def load_hdf5(path: str | os.PathLike, keys: Sequence[str | Sequence[str]]) -> dict[str, np.ndarray]:
    """The datasets ``keys`` of a plain HDF5 file (written from Python: not transposed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _load_hdf5(path, [(k,) if isinstance(k, str) else tuple(k) for k in keys], transpose=False)


def _load_hdf5(path: Path, wanted: list[tuple[str, ...]], transpose: bool) -> dict[str, np.ndarray]:
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 / MATLAB v7.3 file ({exc})") from exc
    out = {}
    with handle:
        for alts in wanted:
            name = next((n for n in alts if n in handle), None)
            if name is None:
                raise DataError(f"{path}: key {_show(alts)} not found (HDF5 file holding {sorted(handle.keys())})")
            node = handle[name]
            if not isinstance(node, h5py.Dataset):
                raise DataError(f"{path}: key '{name}' is a group, not an array")
            value = np.asarray(node[()])
            out[alts[0]] = value.T if transpose else value
    return out


def _show(alts: tuple[str, ...]) -> str:
    return "'" + "' / '".join(alts) + "'"


# -- assembling a dataset ----------------------------------------------------------------------
def _aligned(path: Path, image: np.ndarray, text: np.ndarray, labels: np.ndarray,
             keys: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn the three arrays of one split so that rows are samples; DataError if they disagree."""
    arrays = [np.atleast_2d(a) for a in (image, text, labels)]
    for a, key in zip(arrays, keys):
        if a.ndim != 2:
            raise DataError(f"{path}: key '{key}' must be a matrix, found shape {a.shape}")
    common = set(arrays[0].shape) & set(arrays[1].shape) & set(arrays[2].shape)
    if not common:
        raise DataError(f"{path}: keys {keys} have shapes {[a.shape for a in arrays]} with no common row count")
    n = arrays[2].shape[0] if arrays[2].shape[0] in common else max(common)
    out = []
    for a, key in zip(arrays, keys):
        if a.shape[0] != n:
            log.info("%s: key '%s' stored transposed (%s); using its transpose", path, key, a.shape)
            a = a.T
        out.append(a)
    return out[0], out[1], out[2]


def _labels(path: Path, key: str, labels: np.ndarray) -> np.ndarray:
    values = np.asarray(labels)
    if not np.issubdtype(values.dtype, np.number) or not np.isin(values, (0, 1)).all():
        raise DataError(f"{path}: key '{key}' must hold only 0 and 1 (multi-hot labels)")
    return values.astype(np.uint8)


def _features(path: Path, key: str, values: np.ndarray) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{path}: key '{key}' must be numeric, found {values.dtype}")
    out = values.astype(np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{path}: key '{key}' holds NaN or infinite values")
    return out


def positional_splits(n_rows: int, n_query: int, n_train: int, n_validation: int, seed: int,
                      source: str = "splits") -> Splits:
    """The published loaders' split (NRCH utils/tools.py:127, 149, 170): query = rows [0, n_query),
    train = [n_query, n_query + n_train), database = [n_query, n_rows); validation =
    ``n_validation`` training rows drawn with ``seed`` (sorted)."""
    if n_query + n_train > n_rows:
        raise ConfigError(f"{source}: query ({n_query}) + train ({n_train}) exceed the {n_rows} rows")
    if not 0 <= n_validation < n_train:
        raise ConfigError(f"{source}: n_validation must lie in [0, {n_train}), got {n_validation}")
    train = np.arange(n_query, n_query + n_train)
    rng = np.random.default_rng(seed)
    validation = np.sort(rng.choice(train, size=n_validation, replace=False)) if n_validation else []
    return Splits(query=np.arange(n_query), train=train, database=np.arange(n_query, n_rows), validation=validation)


def _folder_and_file(path: str | os.PathLike, names: Sequence[str], what: str) -> tuple[Path, Path]:
    p = Path(path)
    folder = p.parent if p.is_file() else p
    for name in names:
        if (folder / name).is_file():
            return folder, folder / name
    if p.is_file():
        return folder, p
    raise DataError(f"{folder}: {' or '.join(names)} not found (the published {what} file)")




def _dataset(image: np.ndarray, text: np.ndarray, labels: np.ndarray, splits: Splits, meta: dict[str, Any],
             where: Path) -> Dataset:
    dataset = Dataset(image=image, text=text, labels=labels, splits=splits, meta=meta)
    dataset.check(str(where))
    return dataset


# -- UCCH / NRCH releases ----------------------------------------------------------------------
def import_ucch(path: str | os.PathLike, n_validation: int, seed: int, *, dataset: str = "mirflickr25k",
                n_query: int | None = None, n_train: int | None = None) -> Dataset:
    """Import UCCH's three-file release of ``dataset`` (``mirflickr25k`` or ``nuswide_tc21``)
    from the folder ``path`` (or one of its files), with the positional published split."""
    if dataset not in UCCH_FILES:
        raise ConfigError(f"import_ucch: dataset must be one of {sorted(UCCH_FILES)}, got {dataset!r}")
    image_name, text_name, label_name = UCCH_FILES[dataset]
    folder = Path(path).parent if Path(path).is_file() else Path(path)
    paths = {role: folder / name for role, name in (("image", image_name), ("text", text_name), ("labels", label_name))}
    image = load_mat(paths["image"], [IMAGE_KEYS])["XAll"]
    text = load_mat(paths["text"], ["YAll"])["YAll"]
    labels = load_mat(paths["labels"], ["LAll"])["LAll"]
    image, text, labels = _aligned(folder, image, text, labels, ("XAll", "YAll", "LAll"))
    n = labels.shape[0]
    for role, arr, key in (("image", image, "XAll"), ("text", text, "YAll")):
        if arr.shape[0] != n:
            raise DataError(f"{paths[role]}: key '{key}' has {arr.shape[0]} rows, {paths['labels'].name} has {n}")
    nq, nt = PAPER_SPLIT_SIZES[dataset]
    nq, nt = n_query if n_query is not None else nq, n_train if n_train is not None else nt
    classes = list(MIRFLICKR_CONCEPTS) if dataset == "mirflickr25k" and labels.shape[1] == 24 else \
        [f"class{j}" for j in range(labels.shape[1])]
    meta = {"source": f"{dataset}_ucch", "classes": classes,
            "features": {"image": "published 4096-d VGG fc7 (XAll)", "text": f"published {text.shape[1]}-d tag "
                         "bag of words (YAll)"},
            "splits": {"protocol": "published positional: query = first rows, train = next, database = after query",
                       "n_query": nq, "n_train": nt, "n_validation": int(n_validation), "seed": int(seed)},
            **_source_files(list(paths.values()))}
    return _dataset(_features(paths["image"], "XAll", image), _features(paths["text"], "YAll", text),
                    _labels(paths["labels"], "LAll", labels),
                    positional_splits(n, nq, nt, n_validation, seed, str(folder)), meta, folder)


def import_iapr_rand(path: str | os.PathLike, n_validation: int, seed: int, *, n_query: int | None = None,
                     n_train: int | None = None) -> Dataset:
    """Import ``iapr-tc12-rand.mat``: database rows then test rows (the published loaders'
    concatenation), positional split (2,000 query, 10,000 train by default)."""
    _, file = _folder_and_file(path, (IAPR_FILE,), "IAPR TC-12")
    keys = ("VDatabase", "YDatabase", "databaseL", "VTest", "YTest", "testL")
    arrays = load_mat(file, keys)
    db = _aligned(file, arrays["VDatabase"], arrays["YDatabase"], arrays["databaseL"], keys[:3])
    te = _aligned(file, arrays["VTest"], arrays["YTest"], arrays["testL"], keys[3:])
    for (a, b), k in zip(zip(db, te), (("VDatabase", "VTest"), ("YDatabase", "YTest"), ("databaseL", "testL"))):
        if a.shape[1] != b.shape[1]:
            raise DataError(f"{file}: keys '{k[0]}' and '{k[1]}' have different widths ({a.shape[1]} vs {b.shape[1]})")
    image, text, labels = (np.concatenate([a, b]) for a, b in zip(db, te))
    nq, nt = PAPER_SPLIT_SIZES["iapr_tc12"]
    nq, nt = n_query if n_query is not None else nq, n_train if n_train is not None else nt
    meta = {"source": "iapr_tc12_ucch", "classes": [f"class{j}" for j in range(labels.shape[1])],
            "rows": f"{db[0].shape[0]} database rows (VDatabase) then {te[0].shape[0]} test rows (VTest)",
            "features": {"image": "published 4096-d VGG fc7", "text": f"published {text.shape[1]}-d bag of words"},
            "splits": {"protocol": "published positional over database + test rows", "n_query": nq, "n_train": nt,
                       "n_validation": int(n_validation), "seed": int(seed)},
            **_source_files([file])}
    return _dataset(_features(file, "VDatabase/VTest", image), _features(file, "YDatabase/YTest", text),
                    _labels(file, "databaseL/testL", labels),
                    positional_splits(labels.shape[0], nq, nt, n_validation, seed, str(file)), meta, file)


def import_coco_doc2vec(path: str | os.PathLike, n_validation: int, seed: int, *, n_query: int | None = None,
                        n_train: int | None = None) -> Dataset:
    """Import ``MSCOCO_deep_doc2vec_data.h5py``: train rows then test rows, positional split
    (5,000 query, 10,000 train by default)."""
    _, file = _folder_and_file(path, (COCO_FILE,), "MS-COCO Doc2Vec")
    keys = ("train_imgs_deep", "train_text", "train_imgs_labels", "test_imgs_deep", "test_text", "test_imgs_labels")
    arrays = load_hdf5(file, keys)
    tr = _aligned(file, *(arrays[k] for k in keys[:3]), keys[:3])
    te = _aligned(file, *(arrays[k] for k in keys[3:]), keys[3:])
    for (a, b), k in zip(zip(tr, te), zip(keys[:3], keys[3:])):
        if a.shape[1] != b.shape[1]:
            raise DataError(f"{file}: keys '{k[0]}' and '{k[1]}' have different widths ({a.shape[1]} vs {b.shape[1]})")
    image, text, labels = (np.concatenate([a, b]) for a, b in zip(tr, te))
    nq, nt = PAPER_SPLIT_SIZES["mscoco"]
    nq, nt = n_query if n_query is not None else nq, n_train if n_train is not None else nt
    meta = {"source": "mscoco_ucch", "classes": [f"class{j}" for j in range(labels.shape[1])],
            "rows": f"{tr[0].shape[0]} train rows then {te[0].shape[0]} test rows",
            "features": {"image": "published 4096-d VGG fc7", "text": f"published {text.shape[1]}-d Doc2Vec"},
            "splits": {"protocol": "published positional over train + test rows", "n_query": nq, "n_train": nt,
                       "n_validation": int(n_validation), "seed": int(seed)},
            **_source_files([file])}
    return _dataset(_features(file, "train/test_imgs_deep", image), _features(file, "train/test_text", text),
                    _labels(file, "train/test_imgs_labels", labels),
                    positional_splits(labels.shape[0], nq, nt, n_validation, seed, str(file)), meta, file)


# -- DCGMH release -----------------------------------------------------------------------------
def import_dcgmh(path: str | os.PathLike, n_validation: int, seed: int, *, dataset: str = "mirflickr25k") -> Dataset:
    """Import DCGMH's ``*_cnn_twt.mat`` (``dataset``: mirflickr25k, nuswide or mscoco) with its
    own split: rows = train (``*_tr``), query (``*_te``), database (``*_db``)."""
    if dataset not in DCGMH_FILES:
        raise ConfigError(f"import_dcgmh: dataset must be one of {sorted(DCGMH_FILES)}, got {dataset!r}")
    _, file = _folder_and_file(path, DCGMH_FILES[dataset], f"DCGMH {dataset}")
    parts = {}
    arrays = load_mat(file, [f"{m}_{s}" for s in ("tr", "te", "db") for m in ("I", "T", "L")])
    for s in ("tr", "te", "db"):
        keys = (f"I_{s}", f"T_{s}", f"L_{s}")
        parts[s] = _aligned(file, *(arrays[k] for k in keys), keys)
    for m, k in enumerate("ITL"):
        widths = {s: parts[s][m].shape[1] for s in parts}
        if len(set(widths.values())) != 1:
            raise DataError(f"{file}: keys {k}_tr/{k}_te/{k}_db have different widths {widths}")
    image, text, labels = (np.concatenate([parts[s][m] for s in ("tr", "te", "db")]) for m in range(3))
    n_tr, n_te, n_db = (parts[s][2].shape[0] for s in ("tr", "te", "db"))
    if not 0 <= n_validation < n_tr:
        raise ConfigError(f"{file}: n_validation must lie in [0, {n_tr}), got {n_validation}")
    train = np.arange(n_tr)
    rng = np.random.default_rng(seed)
    splits = Splits(query=np.arange(n_tr, n_tr + n_te), train=train,
                    database=np.arange(n_tr + n_te, n_tr + n_te + n_db),
                    validation=np.sort(rng.choice(train, size=n_validation, replace=False)) if n_validation else [])
    meta = {"source": f"{dataset}_dcgmh", "classes": [f"class{j}" for j in range(labels.shape[1])],
            "rows": f"{n_tr} train (I_tr), {n_te} query (I_te), {n_db} database (I_db)",
            "features": {"image": f"published {image.shape[1]}-d CNN features (I_*)",
                         "text": f"published {text.shape[1]}-d text features (T_*)"},
            "splits": {"protocol": "published: train = *_tr, query = *_te, database = *_db",
                       "n_validation": int(n_validation), "seed": int(seed)},
            **_source_files([file])}
    return _dataset(_features(file, "I_*", image), _features(file, "T_*", text), _labels(file, "L_*", labels),
                    splits, meta, file)


# -- published noise ---------------------------------------------------------------------------
def published_noise_file(folder: str | os.PathLike, prefix: str, rate: float) -> Path:
    """``folder/{prefix}-lall-noise_{rate}.h5`` (rate written as published, e.g. ``0.2``)."""
    return Path(folder) / f"{prefix}-lall-noise_{float(rate):g}.h5"


def configured_noise_file(name: str, ds_cfg: Mapping[str, Any], rate: float) -> Path:
    """The published noise file of dataset ``name`` at ``rate`` from its config entry
    (``published_noise: {dir, prefix}``); ConfigError naming the key when it is missing."""
    spec = ds_cfg.get("published_noise")
    if not spec:
        raise ConfigError(f"datasets.{name}.published_noise: required by the noise model 'published' "
                          "(dir: the folder of {prefix}-lall-noise_{rate}.h5 files)")
    return published_noise_file(spec["dir"], spec.get("prefix", "mirflickr25k"), rate)


def published_noise(path: str | os.PathLike, clean_train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published noisy training labels (NRCH's ``result``) and the mask of corrupted rows.

    ``True`` in the file must equal ``clean_train_labels`` (the dataset's training rows, in
    order) exactly; otherwise DataError naming the file and the first differing row, since the
    noise would then belong to other rows. Returns ``(noisy uint8, corrupted bool)``.
    """
    path = Path(path)
    arrays = load_hdf5(path, ["result", "True"])
    noisy, true = arrays["result"], arrays["True"]
    clean = np.asarray(clean_train_labels)
    for key, arr in (("result", noisy), ("True", true)):
        if arr.shape != clean.shape:
            raise DataError(f"{path}: key '{key}' has shape {arr.shape}, the training labels {clean.shape}")
        if not np.isin(arr, (0, 1)).all():
            raise DataError(f"{path}: key '{key}' must hold only 0 and 1")
    differ = np.flatnonzero((true.astype(np.uint8) != clean.astype(np.uint8)).any(axis=1))
    if differ.size:
        raise DataError(f"{path}: key 'True' differs from the dataset's clean training labels in {differ.size} rows "
                        f"(first: training row {differ[0]}); the file belongs to another split or row order")
    noisy = noisy.astype(np.uint8)
    corrupted = (noisy != clean.astype(np.uint8)).any(axis=1)
    return noisy, corrupted


# -- registry adapters: (path, n_validation, seed, **options) -> Dataset ------------------------
import_mirflickr25k_ucch = functools.partial(import_ucch, dataset="mirflickr25k")
import_nuswide_tc21_ucch = functools.partial(import_ucch, dataset="nuswide_tc21")
import_mirflickr25k_dcgmh = functools.partial(import_dcgmh, dataset="mirflickr25k")
import_nuswide_dcgmh = functools.partial(import_dcgmh, dataset="nuswide")
import_mscoco_dcgmh = functools.partial(import_dcgmh, dataset="mscoco")

__all__ = [
    "COCO_FILE",
    "DCGMH_FILES",
    "IAPR_FILE",
    "PAPER_SPLIT_SIZES",
    "UCCH_FILES",
    "configured_noise_file",
    "import_coco_doc2vec",
    "import_dcgmh",
    "import_iapr_rand",
    "import_ucch",
    "load_hdf5",
    "load_mat",
    "positional_splits",
    "published_noise",
    "published_noise_file",
]
