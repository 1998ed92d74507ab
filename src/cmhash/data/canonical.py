"""The canonical on-disk forms every dataset is turned into.

Two folders per dataset:

* **prepared** (``write_prepared``): what a raw-layout parser produces — ``labels.npy``
  (uint8, rows x classes), ``texts.json`` (a token list per row), ``images.txt`` (one image
  path per row), ``splits.json`` and ``meta.json`` (class names, vocabulary, source files).
* **dataset** (``write_dataset``): features assembled for training — ``image.npy`` and
  ``text.npy`` (float32, rows aligned with ``labels.npy``), ``labels.npy``, ``splits.json`` and
  ``meta.json``. Every stage after feature extraction reads only this folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmhash.errors import DataError
from cmhash.io import load_json, load_npy, save_json, save_npy, save_text

SPLIT_NAMES = ("query", "train", "database", "validation")


@dataclass
class Splits:
    """Row indices of each split.

    ``validation`` is a subset of ``train``: under the ``sound`` protocol those rows are held
    out of training and serve as validation queries against the remaining training rows.
    """

    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    validation: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        for name in SPLIT_NAMES:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    @property
    def train_fit(self) -> np.ndarray:
        """Training rows minus the validation rows (what the ``sound`` protocol trains on)."""
        return self.train[~np.isin(self.train, self.validation)]

    def check(self, n_rows: int, source: str = "splits") -> None:
        """Raise DataError if an index is out of range, repeated, or validation leaves train."""
        for name in SPLIT_NAMES:
            idx = getattr(self, name)
            if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
                raise DataError(f"{source}: split '{name}' indexes outside 0..{n_rows - 1}")
            if np.unique(idx).size != idx.size:
                raise DataError(f"{source}: split '{name}' repeats a row")
        if self.query.size == 0 or self.train.size == 0 or self.database.size == 0:
            raise DataError(f"{source}: query, train and database must all be non-empty")
        if not np.isin(self.validation, self.train).all():
            raise DataError(f"{source}: validation rows must be training rows")

    def to_json(self) -> dict[str, list[int]]:
        return {name: getattr(self, name).tolist() for name in SPLIT_NAMES}

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str = "splits") -> Splits:
        missing = [k for k in ("query", "train", "database") if k not in obj]
        if missing:
            raise DataError(f"{source}: missing split(s) {missing}")
        return cls(**{k: obj.get(k, []) for k in SPLIT_NAMES})


def paper_splits(n_rows: int, n_query: int, n_train: int, seed: int,
                 n_validation: int = 0) -> Splits:
    """The NRCH/SCBCH split (METHODS.md, "Splits"): rows of a seeded shuffle, query = first
    ``n_query``, train = next ``n_train``, database = every row after the query (so train lies
    inside the database). ``n_validation`` training rows, drawn with the same seed, form the
    ``sound`` protocol's validation split."""
    if n_query + n_train > n_rows:
        raise DataError(f"splits: query ({n_query}) + train ({n_train}) exceed the {n_rows} rows")
    if not 0 <= n_validation < n_train:
        raise DataError(f"splits: validation size {n_validation} must be in [0, train size {n_train})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_rows)
    query, rest = order[:n_query], order[n_query:]
    train = rest[:n_train]
    validation = np.sort(rng.choice(train, size=n_validation, replace=False)) if n_validation else []
    return Splits(query=query, train=train, database=rest, validation=validation)


@dataclass
class RawCorpus:
    """A parsed raw dataset: labels, texts and image paths, rows aligned."""

    labels: np.ndarray  # uint8, rows x classes
    classes: list[str]
    texts: list[list[str]]  # tokens (tags or words) per row
    image_paths: list[str]  # one image file per row
    ids: list[str]  # the source's identifier of each row
    vocabulary: list[str] | None = None  # bag-of-words vocabulary where the source defines one
    meta: dict[str, Any] = field(default_factory=dict)

    def check(self, source: str = "corpus") -> None:
        n = self.labels.shape[0]
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.classes):
            raise DataError(f"{source}: labels shape {self.labels.shape} does not match {len(self.classes)} classes")
        for name in ("texts", "image_paths", "ids"):
            if len(getattr(self, name)) != n:
                raise DataError(f"{source}: {name} has {len(getattr(self, name))} rows, labels have {n}")
        empty = np.flatnonzero(self.labels.sum(axis=1) == 0)
        if empty.size:
            raise DataError(f"{source}: {empty.size} rows have no label (first: row {empty[0]})")


def write_prepared(folder: str | Path, corpus: RawCorpus, splits: Splits) -> None:
    """Write a parsed corpus and its splits in the prepared form."""
    folder = Path(folder)
    corpus.check(str(folder))
    splits.check(corpus.labels.shape[0], str(folder / "splits.json"))
    save_npy(folder / "labels.npy", corpus.labels.astype(np.uint8))
    save_json(folder / "texts.json", corpus.texts)
    save_text(folder / "images.txt", "".join(p + "\n" for p in corpus.image_paths))
    save_json(folder / "splits.json", splits.to_json())
    meta = dict(corpus.meta, classes=corpus.classes, ids=corpus.ids, vocabulary=corpus.vocabulary,
                n_rows=int(corpus.labels.shape[0]))
    save_json(folder / "meta.json", meta)


def read_prepared(folder: str | Path) -> tuple[RawCorpus, Splits]:
    """Read a prepared folder back, validating it."""
    folder = Path(folder)
    meta = load_json(folder / "meta.json")
    labels = load_npy(folder / "labels.npy", ndim=2)
    texts = load_json(folder / "texts.json")
    images_file = folder / "images.txt"
    if not images_file.is_file():
        raise DataError(f"{images_file}: file not found")
    image_paths = images_file.read_text().splitlines()
    corpus = RawCorpus(labels=labels, classes=meta["classes"], texts=texts, image_paths=image_paths,
                       ids=meta["ids"], vocabulary=meta.get("vocabulary"),
                       meta={k: v for k, v in meta.items() if k not in {"classes", "ids", "vocabulary", "n_rows"}})
    corpus.check(str(folder))
    splits = Splits.from_json(load_json(folder / "splits.json"), str(folder / "splits.json"))
    splits.check(labels.shape[0], str(folder / "splits.json"))
    return corpus, splits


@dataclass
class Dataset:
    """Features, labels and splits of one dataset, rows aligned (the training input)."""

    image: np.ndarray  # float32, rows x image dims
    text: np.ndarray  # float32, rows x text dims
    labels: np.ndarray  # uint8, rows x classes
    splits: Splits
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.labels.shape[1])

    def check(self, source: str = "dataset") -> None:
        n = self.labels.shape[0]
        for name in ("image", "text"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != n:
                raise DataError(f"{source}/{name}.npy: shape {arr.shape} does not align with {n} label rows")
            if not np.isfinite(arr).all():
                raise DataError(f"{source}/{name}.npy: holds NaN or infinite values")
        empty = np.flatnonzero(self.labels.sum(axis=1) == 0)
        if empty.size:
            raise DataError(f"{source}/labels.npy: {empty.size} rows have no label (first: row {empty[0]})")
        self.splits.check(n, f"{source}/splits.json")


def write_dataset(folder: str | Path, dataset: Dataset) -> None:
    """Write the assembled dataset folder (each file atomically)."""
    folder = Path(folder)
    dataset.check(str(folder))
    save_npy(folder / "image.npy", dataset.image.astype(np.float32))
    save_npy(folder / "text.npy", dataset.text.astype(np.float32))
    save_npy(folder / "labels.npy", dataset.labels.astype(np.uint8))
    save_json(folder / "splits.json", dataset.splits.to_json())
    save_json(folder / "meta.json", dataset.meta)


def read_dataset(folder: str | Path) -> Dataset:
    """Read and validate an assembled dataset folder; errors name the offending file."""
    folder = Path(folder)
    dataset = Dataset(
        image=load_npy(folder / "image.npy", ndim=2),
        text=load_npy(folder / "text.npy", ndim=2),
        labels=load_npy(folder / "labels.npy", ndim=2),
        splits=Splits.from_json(load_json(folder / "splits.json"), str(folder / "splits.json")),
        meta=load_json(folder / "meta.json"),
    )
    dataset.check(str(folder))
    return dataset


__all__ = [
    "SPLIT_NAMES",
    "Dataset",
    "RawCorpus",
    "Splits",
    "paper_splits",
    "read_dataset",
    "read_prepared",
    "write_dataset",
    "write_prepared",
]
