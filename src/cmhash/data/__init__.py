"""Dataset registry: every source cmhash can read, and the two ways of turning one into the
canonical on-disk form (:mod:`cmhash.data.canonical`).

* kind ``"raw"``: a parser of a raw layout (images + texts + labels). :func:`prepare_raw`
  writes the *prepared* folder; image and text features are extracted from it later.
* kind ``"features"``: an importer of published feature files. :func:`import_features`
  writes the *dataset* folder directly.

Registered sources:

* ``embedded`` (raw): the seeded MIRFlickr-layout generator (:attr:`SourceSpec.generate`,
  :func:`cmhash.data.embedded.generate_embedded`) read back by the MIRFlickr parser;
* ``mirflickr25k`` (raw): the MIRFlickr parser on a user-provided extracted archive;
* ``wikipedia`` (features): the published Wikipedia benchmark features.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from cmhash.data.canonical import Dataset, RawCorpus, Splits, paper_splits, write_dataset, write_prepared
from cmhash.data.embedded import generate_embedded
from cmhash.data.mirflickr import parse_mirflickr
from cmhash.data.wikipedia import import_wikipedia
from cmhash.errors import ConfigError

SourceKind = Literal["raw", "features"]


@dataclass(frozen=True)
class SourceSpec:
    """One registered data source.

    ``load`` is ``(raw_dir) -> RawCorpus`` for kind ``raw`` and ``(path, n_validation, seed)
    -> Dataset`` for kind ``features``. ``generate``, where present, writes the source's raw
    layout itself (``(out_dir, n_images, seed, ...) -> Path``).
    """

    name: str
    kind: SourceKind
    load: Callable[..., Any]
    description: str
    generate: Callable[..., Path] | None = None


SOURCES: Mapping[str, SourceSpec] = MappingProxyType({
    "embedded": SourceSpec(
        name="embedded", kind="raw", load=functools.partial(parse_mirflickr, source="embedded"),
        generate=generate_embedded,
        description="small seeded dataset in the MIRFlickr-25K raw layout (generated, then parsed)"),
    "mirflickr25k": SourceSpec(
        name="mirflickr25k", kind="raw", load=functools.partial(parse_mirflickr, source="mirflickr25k"),
        description="MIRFlickr-25K: extracted mirflickr25k.zip + mirflickr25k_annotations_v080.zip"),
    "wikipedia": SourceSpec(
        name="wikipedia", kind="features", load=import_wikipedia,
        description="Wikipedia benchmark: published SIFT/LDA features (raw_features.mat + .list files)"),
})


def known_sources() -> list[str]:
    """Names of the registered sources, sorted."""
    return sorted(SOURCES)


def get_source(name: str, kind: SourceKind | None = None) -> SourceSpec:
    """The registered source ``name``; ConfigError listing the known ones if there is none, or
    if it is not of ``kind``."""
    if name not in SOURCES:
        raise ConfigError(f"unknown data source {name!r}; known sources: {', '.join(known_sources())}")
    spec = SOURCES[name]
    if kind is not None and spec.kind != kind:
        other = "import_features" if spec.kind == "features" else "prepare_raw"
        raise ConfigError(f"data source {name!r} is of kind {spec.kind!r}, not {kind!r}; use {other}")
    return spec


def prepare_raw(source: str, raw_dir: str | os.PathLike, out_dir: str | os.PathLike, n_query: int,
                n_train: int, n_validation: int, seed: int) -> tuple[RawCorpus, Splits]:
    """Parse ``raw_dir`` with the raw source ``source`` and write the prepared folder
    ``out_dir`` with the paper splits (METHODS.md, "Splits"; :func:`canonical.paper_splits`)."""
    spec = get_source(source, "raw")
    corpus: RawCorpus = spec.load(raw_dir)
    splits = paper_splits(corpus.labels.shape[0], n_query, n_train, seed, n_validation)
    corpus.meta = dict(corpus.meta, source=source,
                       splits={"protocol": "paper_splits", "n_query": int(n_query), "n_train": int(n_train),
                               "n_validation": int(n_validation), "seed": int(seed)})
    write_prepared(out_dir, corpus, splits)
    return corpus, splits


def import_features(source: str, path: str | os.PathLike, out_dir: str | os.PathLike,
                    n_validation: int, seed: int) -> Dataset:
    """Import the published features of ``source`` from ``path`` and write the dataset folder
    ``out_dir`` (:func:`canonical.write_dataset`)."""
    spec = get_source(source, "features")
    dataset: Dataset = spec.load(path, n_validation, seed)
    write_dataset(out_dir, dataset)
    return dataset


__all__ = ["SourceSpec", "SOURCES", "known_sources", "get_source", "prepare_raw", "import_features"]
