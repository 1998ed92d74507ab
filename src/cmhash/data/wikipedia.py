"""Importer of the published Wikipedia cross-modal benchmark features (Rasiwasia et al.,
ACM MM 2010) into the canonical :class:`Dataset`.

The published folder holds::

    raw_features.mat                 I_tr (2,173 x 128 SIFT bag of visual words),
                                     T_tr (2,173 x 10 LDA topic proportions), I_te, T_te (693 rows)
    trainset_txt_img_cat.list        ``text_id<TAB>image_id<TAB>category`` per training pair,
    testset_txt_img_cat.list         in the same order as the matrix rows; category in 1..10
    categories.list                  the 10 category names, in category-number order

Every pair has exactly one category. The split is the published one: the 2,173 training pairs
are both the training set and the retrieval database, the 693 test pairs are the queries.
Rows of the dataset are the training pairs followed by the test pairs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io

from cmhash.data.canonical import Dataset, Splits
from cmhash.errors import ConfigError, DataError
from cmhash.io import file_sha256

FEATURES_FILE = "raw_features.mat"
TRAIN_LIST = "trainset_txt_img_cat.list"
TEST_LIST = "testset_txt_img_cat.list"
CATEGORIES_FILE = "categories.list"
_KEYS = ("I_tr", "T_tr", "I_te", "T_te")


def import_wikipedia(path: str | os.PathLike, n_validation: int, seed: int) -> Dataset:
    """Read the published Wikipedia files in ``path`` (a folder, or its ``raw_features.mat``).

    Returns float32 image (128-d) and text (10-d) features, one-hot uint8 labels over the 10
    categories, and splits: train = database = the training pairs (rows 0..2172), query = the
    test pairs (the rows after them), validation = ``n_validation`` training rows drawn with
    ``seed`` (sorted). Raises DataError naming the file and key for a missing file or key, a
    malformed list line, a category out of range or row counts that disagree.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"{folder}: Wikipedia folder not found; it must hold {FEATURES_FILE}, "
                        f"{TRAIN_LIST}, {TEST_LIST} and {CATEGORIES_FILE}")
    classes = _read_categories(folder / CATEGORIES_FILE)
    mat_path = folder / FEATURES_FILE
    arrays = _read_features(mat_path)
    train_pairs = _read_pairs(folder / TRAIN_LIST, len(classes))
    test_pairs = _read_pairs(folder / TEST_LIST, len(classes))

    for part, pairs, list_name in (("tr", train_pairs, TRAIN_LIST), ("te", test_pairs, TEST_LIST)):
        image, text = arrays[f"I_{part}"], arrays[f"T_{part}"]
        if image.shape[0] != text.shape[0]:
            raise DataError(f"{mat_path}: keys 'I_{part}' ({image.shape[0]} rows) and 'T_{part}' "
                            f"({text.shape[0]} rows) disagree")
        if image.shape[0] != len(pairs):
            raise DataError(f"{mat_path}: key 'I_{part}' has {image.shape[0]} rows but "
                            f"{folder / list_name} lists {len(pairs)} pairs")
    for modality in ("I", "T"):
        if arrays[f"{modality}_tr"].shape[1] != arrays[f"{modality}_te"].shape[1]:
            raise DataError(f"{mat_path}: keys '{modality}_tr' and '{modality}_te' have different "
                            f"widths ({arrays[f'{modality}_tr'].shape[1]} vs {arrays[f'{modality}_te'].shape[1]})")

    n_train, n_test = len(train_pairs), len(test_pairs)
    if not 0 <= n_validation < n_train:
        raise ConfigError(f"wikipedia: n_validation must lie in [0, {n_train}), got {n_validation}")
    pairs = train_pairs + test_pairs
    categories = np.array([cat for _, _, cat in pairs])
    labels = np.zeros((n_train + n_test, len(classes)), dtype=np.uint8)
    labels[np.arange(labels.shape[0]), categories - 1] = 1

    rng = np.random.default_rng(seed)
    train = np.arange(n_train)
    validation = np.sort(rng.choice(train, size=n_validation, replace=False)) if n_validation else []
    splits = Splits(query=np.arange(n_train, n_train + n_test), train=train, database=train,
                    validation=validation)
    dataset = Dataset(
        image=np.vstack([arrays["I_tr"], arrays["I_te"]]).astype(np.float32),
        text=np.vstack([arrays["T_tr"], arrays["T_te"]]).astype(np.float32),
        labels=labels,
        splits=splits,
        meta={
            "source": "wikipedia",
            "classes": classes,
            "ids": [text_id for text_id, _, _ in pairs],
            "image_ids": [image_id for _, image_id, _ in pairs],
            "features": {"image": "published 128-d SIFT bag of visual words (I_tr/I_te)",
                         "text": "published 10-d LDA topic proportions (T_tr/T_te)"},
            "splits": {"protocol": "published: query = test pairs, train = database = training pairs",
                       "n_validation": int(n_validation), "seed": int(seed)},
            "source_files": {name: file_sha256(folder / name)
                             for name in (FEATURES_FILE, TRAIN_LIST, TEST_LIST, CATEGORIES_FILE)},
        },
    )
    dataset.check(str(folder))
    return dataset


def _read_categories(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (the category names, one per line)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: lists no category")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: a category name is listed twice")
    return names


def _read_features(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (the published feature matrices)")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several unrelated types for unreadable files
        raise DataError(f"{path}: not a readable MATLAB file ({exc})") from exc
    arrays = {}
    for key in _KEYS:
        if key not in mat:
            raise DataError(f"{path}: key '{key}' not found (expected {', '.join(_KEYS)})")
        value = np.asarray(mat[key])
        if value.ndim != 2 or not np.issubdtype(value.dtype, np.number):
            raise DataError(f"{path}: key '{key}' must be a numeric matrix, found shape {value.shape} "
                            f"of {value.dtype}")
        if not np.isfinite(value).all():
            raise DataError(f"{path}: key '{key}' holds NaN or infinite values")
        arrays[key] = value
    return arrays


def _read_pairs(path: Path, n_classes: int) -> list[tuple[str, str, int]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (text_id, image_id, category per line)")
    pairs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not fields[2].strip().isdigit():
            raise DataError(f"{path}: line {lineno}: expected 'text_id<TAB>image_id<TAB>category', "
                            f"found {line!r}")
        category = int(fields[2])
        if not 1 <= category <= n_classes:
            raise DataError(f"{path}: line {lineno}: category {category} outside 1..{n_classes}")
        pairs.append((fields[0].strip(), fields[1].strip(), category))
    return pairs




__all__ = ["CATEGORIES_FILE", "FEATURES_FILE", "TEST_LIST", "TRAIN_LIST", "import_wikipedia"]
