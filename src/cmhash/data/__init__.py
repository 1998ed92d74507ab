"""Dataset registry: every source cmhash can read, and the two ways of turning one into the
canonical on-disk form (:mod:`cmhash.data.canonical`).

* kind ``"raw"``: a parser of a raw layout (images + texts + labels). :func:`prepare_raw`
  writes the *prepared* folder; image and text features are extracted from it later.
* kind ``"features"``: an importer of published feature files. :func:`import_features`
  writes the *dataset* folder directly.

Registered sources:

* ``embedded`` (raw): the seeded MIRFlickr-layout generator (:attr:`SourceSpec.generate`,
  :func:`cmhash.data.embedded.generate_embedded`) read back by the MIRFlickr parser;
* ``mirflickr25k`` (raw): the MIRFlickr parser on the extracted archives;
* ``mscoco2014`` (raw): MS-COCO 2014 train+val, 80 categories, captions (:mod:`cmhash.data.coco`);
* ``nuswide_tc21`` / ``nuswide_tc21_clean`` (raw): NUS-WIDE-TC21, the two published cleanings
  (non-empty labels: 195,834 rows; non-empty labels and tags: 190,421) (:mod:`cmhash.data.nuswide`);
* ``iapr_tc12`` (raw): IAPR TC-12 with the SAIAPR region labels, 255 classes (:mod:`cmhash.data.iapr`);
* ``wikipedia`` (features): the published Wikipedia benchmark features;
* ``mirflickr25k_ucch``, ``nuswide_tc21_ucch``, ``iapr_tc12_ucch``, ``mscoco_ucch`` (features):
  the UCCH feature files NRCH/SCBCH train on; ``mirflickr25k_dcgmh``, ``nuswide_dcgmh``,
  ``mscoco_dcgmh`` (features): DCGMH's ``*_cnn_twt.mat`` (:mod:`cmhash.data.published`).

Where the raw sources are published, and how to fetch them: :mod:`cmhash.data.sources_catalog`.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from cmhash.data import published
from cmhash.data.canonical import (
    Dataset,
    RawCorpus,
    Splits,
    paper_splits,
    write_dataset,
    write_prepared,
)
from cmhash.data.coco import parse_coco
from cmhash.data.embedded import generate_embedded
from cmhash.data.iapr import parse_iapr
from cmhash.data.mirflickr import parse_mirflickr
from cmhash.data.nuswide import parse_nuswide
from cmhash.data.wikipedia import import_wikipedia
from cmhash.errors import ConfigError
from cmhash.families import check_family

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
    family: str | None = None  # the published benchmark it is (cmhash.families); None: none
    generate: Callable[..., Path] | None = None

    def __post_init__(self) -> None:
        check_family(self.family, f"data source {self.name!r}")


SOURCES: Mapping[str, SourceSpec] = MappingProxyType({
    "embedded": SourceSpec(
        name="embedded", kind="raw", load=functools.partial(parse_mirflickr, source="embedded"),
        generate=generate_embedded,
        description="small seeded dataset in the MIRFlickr-25K raw layout (generated, then parsed)"),
    "mirflickr25k": SourceSpec(
        name="mirflickr25k", family="mirflickr25k", kind="raw", load=functools.partial(parse_mirflickr, source="mirflickr25k"),
        description="MIRFlickr-25K: extracted mirflickr25k.zip + mirflickr25k_annotations_v080.zip"),
    "mscoco2014": SourceSpec(
        name="mscoco2014", family="mscoco", kind="raw", load=functools.partial(parse_coco, source="mscoco2014"),
        description="MS-COCO 2014: extracted train2014.zip + val2014.zip + annotations_trainval2014.zip"),
    "nuswide_tc21": SourceSpec(
        name="nuswide_tc21", family="nuswide21", kind="raw",
        load=functools.partial(parse_nuswide, source="nuswide_tc21", cleaning="labels"),
        description="NUS-WIDE-TC21, rows with a label (DCMH's 195,834): extracted lists/tags/groundtruth + images"),
    "nuswide_tc21_clean": SourceSpec(
        name="nuswide_tc21_clean", family="nuswide21", kind="raw",
        load=functools.partial(parse_nuswide, source="nuswide_tc21_clean", cleaning="labels_and_tags"),
        description="NUS-WIDE-TC21, rows with a label and a tag (UCCH/NRCH's 190,421)"),
    "iapr_tc12": SourceSpec(
        name="iapr_tc12", family="iaprtc12", kind="raw", load=functools.partial(parse_iapr, source="iapr_tc12"),
        description="IAPR TC-12 (iaprtc12.tgz) with the SAIAPR TC-12 region labels (255 classes)"),
    "wikipedia": SourceSpec(
        name="wikipedia", family="wikipedia", kind="features", load=import_wikipedia,
        description="Wikipedia benchmark: published SIFT/LDA features (raw_features.mat + .list files)"),
    "mirflickr25k_ucch": SourceSpec(
        name="mirflickr25k_ucch", family="mirflickr25k", kind="features", load=published.import_mirflickr25k_ucch,
        description="MIRFlickr-25K published features: mirflickr25k-{iall-vgg,yall,lall}.mat (UCCH/NRCH)"),
    "nuswide_tc21_ucch": SourceSpec(
        name="nuswide_tc21_ucch", family="nuswide21", kind="features", load=published.import_nuswide_tc21_ucch,
        description="NUS-WIDE-TC21 published features: nus-wide-tc21-{xall-vgg,yall,lall}-clean.mat (UCCH/NRCH)"),
    "iapr_tc12_ucch": SourceSpec(
        name="iapr_tc12_ucch", family="iaprtc12", kind="features", load=published.import_iapr_rand,
        description="IAPR TC-12 published features: iapr-tc12-rand.mat (UCCH/NRCH)"),
    "mscoco_ucch": SourceSpec(
        name="mscoco_ucch", family="mscoco", kind="features", load=published.import_coco_doc2vec,
        description="MS-COCO published features: MSCOCO_deep_doc2vec_data.h5py (UCCH/NRCH)"),
    "mirflickr25k_dcgmh": SourceSpec(
        name="mirflickr25k_dcgmh", family="mirflickr25k", kind="features", load=published.import_mirflickr25k_dcgmh,
        description="MIRFlickr-25K, DCGMH's mir_cnn_twt.mat (own train/query/database split)"),
    "nuswide_dcgmh": SourceSpec(
        name="nuswide_dcgmh", family="nuswide21", kind="features", load=published.import_nuswide_dcgmh,
        description="NUS-WIDE, DCGMH's nus_cnn_twt.mat (own train/query/database split)"),
    "mscoco_dcgmh": SourceSpec(
        name="mscoco_dcgmh", family="mscoco", kind="features", load=published.import_mscoco_dcgmh,
        description="MS-COCO, DCGMH's coco_cnn_twt.mat (own train/query/database split)"),
})


def known_sources() -> list[str]:
    """Names of the registered sources, sorted."""
    return sorted(SOURCES)


def source_family(name: str) -> str | None:
    """The published benchmark family of source ``name`` (:mod:`cmhash.families`)."""
    return get_source(name).family


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
                n_train: int, n_validation: int, seed: int,
                options: Mapping[str, Any] | None = None) -> tuple[RawCorpus, Splits]:
    """Parse ``raw_dir`` with the raw source ``source`` and write the prepared folder
    ``out_dir`` with the paper splits (METHODS.md, "Splits"; :func:`canonical.paper_splits`).
    ``options`` are passed to the parser as keyword arguments (e.g. NUS-WIDE's ``image_dir``)."""
    spec = get_source(source, "raw")
    corpus: RawCorpus = spec.load(raw_dir, **_checked_options(source, spec, options))
    splits = paper_splits(corpus.labels.shape[0], n_query, n_train, seed, n_validation)
    corpus.meta = dict(corpus.meta, source=source,
                       splits={"protocol": "paper_splits", "n_query": int(n_query), "n_train": int(n_train),
                               "n_validation": int(n_validation), "seed": int(seed)})
    write_prepared(out_dir, corpus, splits)
    return corpus, splits


def import_features(source: str, path: str | os.PathLike, out_dir: str | os.PathLike,
                    n_validation: int, seed: int, options: Mapping[str, Any] | None = None) -> Dataset:
    """Import the published features of ``source`` from ``path`` and write the dataset folder
    ``out_dir`` (:func:`canonical.write_dataset`). ``options`` go to the importer as keyword
    arguments (e.g. ``n_query``/``n_train`` of a positional split)."""
    spec = get_source(source, "features")
    dataset: Dataset = spec.load(path, n_validation, seed, **_checked_options(source, spec, options))
    write_dataset(out_dir, dataset)
    return dataset


def _checked_options(source: str, spec: SourceSpec, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` as keyword arguments, ConfigError naming any the loader does not take."""
    if not options:
        return {}
    import inspect

    target = spec.load.func if isinstance(spec.load, functools.partial) else spec.load
    params = inspect.signature(target).parameters
    fixed = set(spec.load.keywords) if isinstance(spec.load, functools.partial) else set()
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - fixed
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigError(f"datasets.<name>.options: {unknown} not accepted by source {source!r} "
                              f"(it takes: {', '.join(sorted(allowed)) or 'none'})")
    return dict(options)


__all__ = ["SOURCES", "SourceSpec", "get_source", "import_features", "known_sources", "prepare_raw", "source_family"]
