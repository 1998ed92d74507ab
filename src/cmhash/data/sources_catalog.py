"""Where the raw benchmark datasets are published: URLs, checksums and how to lay them out.

Each :class:`RawDownload` lists the files of one registered raw source (:data:`cmhash.data.SOURCES`)
as published by their owners, with a published checksum where one is known (the owners of
these datasets publish none themselves; the MD5s below are those quoted by third-party
loaders, noted per file). A file without one is pinned by the lock file at its first download
(:mod:`cmhash.data.download`). :func:`fetch_raw` downloads every file into an archive folder
(or uses the copies already in ``data_root``), extracts the archives safely
(:mod:`cmhash.data.archive`) into the raw folder the parser reads, and runs the source's
extra step (NUS-WIDE: its Flickr images from the URL list).

The published feature files (:mod:`cmhash.data.published`) are distributed through cloud
drives that offer no stable direct URL; they are imported from a folder the user fills.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cmhash.data.archive import extract_archive, is_archive
from cmhash.data.download import download, read_lock
from cmhash.errors import ConfigError

log = logging.getLogger("cmhash")


@dataclass(frozen=True)
class RemoteFile:
    """One published file. ``extract``: an archive to unpack into the raw folder (a later part
    of a multi-volume RAR is downloaded but not extracted on its own). ``checksum_note`` says
    who published the checksum."""

    url: str
    md5: str | None = None
    sha256: str | None = None
    extract: bool = True
    checksum_note: str = ""

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RawDownload:
    """The published files of one raw source and the step run after extraction, if any
    (``(raw_dir, options) -> None``)."""

    source: str
    files: tuple[RemoteFile, ...]
    homepage: str
    layout: str
    after: Callable[[Path, Mapping[str, Any]], None] | None = None
    notes: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


def _nuswide_images(raw_dir: Path, options: Mapping[str, Any]) -> None:
    """NUS-WIDE's extra step: fetch the images from NUS-WIDE-urls.txt unless the user gives a
    local image folder or turns it off."""
    from cmhash.data.nuswide import fetch_nuswide_images

    if not options.get("fetch_images", True) or options.get("image_dir"):
        return
    fetch_nuswide_images(raw_dir, workers=int(options.get("image_workers", 8)),
                         retries=int(options.get("retries", 3)), backoff=float(options.get("backoff", 1.0)),
                         progress=bool(options.get("progress", True)))


_MIR = "https://press.liacs.nl/mirflickr/mirflickr25k.v3b/"
_COCO = "http://images.cocodataset.org/"
_NUS = "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/"
_IAPR = "http://www-i6.informatik.rwth-aachen.de/imageclef/resources/"

CATALOG: Mapping[str, RawDownload] = MappingProxyType({
    "mirflickr25k": RawDownload(
        source="mirflickr25k",
        files=(RemoteFile(_MIR + "mirflickr25k.zip", md5="a23d0a8564ee84cda5622a6c2f947785",
                          checksum_note="MD5 as quoted by third-party loaders (the publisher lists none)"),
               RemoteFile(_MIR + "mirflickr25k_annotations_v080.zip")),
        homepage="https://press.liacs.nl/mirflickr/mirdownload.html",
        layout="mirflickr/im{N}.jpg, mirflickr/meta/tags/, mirflickr/doc/common_tags.txt, "
               "mirflickr25k_annotations_v080/{concept}.txt"),
    "mscoco2014": RawDownload(
        source="mscoco2014",
        files=(RemoteFile(_COCO + "zips/train2014.zip", md5="0da8c0bd3d6becc4dcb32757491aca88",
                          checksum_note="MD5 as quoted by third-party loaders (LAVIS, torchvision users)"),
               RemoteFile(_COCO + "zips/val2014.zip", md5="a3d79f5ed8d289b7a7554ce06a5782b3",
                          checksum_note="MD5 as quoted by third-party loaders"),
               RemoteFile(_COCO + "annotations/annotations_trainval2014.zip", md5="0a379cfc70b0e71301e0f377548639bd",
                          checksum_note="MD5 as quoted by third-party loaders")),
        homepage="https://cocodataset.org/#download",
        layout="train2014/COCO_train2014_{id:012d}.jpg, val2014/..., annotations/{instances,captions}_{train,val}2014.json"),
    "nuswide_tc21": RawDownload(
        source="nuswide_tc21",
        files=(RemoteFile(_NUS + "ConceptsList.zip"), RemoteFile(_NUS + "ImageList.zip"),
               RemoteFile(_NUS + "Groundtruth.zip"), RemoteFile(_NUS + "NUS_WID_Tags.zip"),
               RemoteFile(_NUS + "NUS-WIDE-urls.rar")),
        homepage="https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html",
        layout="ConceptsList/Concepts81.txt, ImageList/Imagelist.txt, Groundtruth/AllLabels/Labels_{c}.txt, "
               "NUS_WID_Tags/{TagList1k,AllTags1k}.txt, NUS-WIDE-urls.txt; images fetched into Flickr/{concept}/",
        after=_nuswide_images,
        notes="NUS-WIDE-urls.rar needs unrar, 7z or bsdtar; many Flickr photos no longer exist: the missing ones "
              "are listed in nuswide_missing_images.json and dropped by the parser. A complete image copy can be "
              "given instead (image_dir)."),
    "iapr_tc12": RawDownload(
        source="iapr_tc12",
        files=(RemoteFile(_IAPR + "iaprtc12.tgz"),
               RemoteFile(_IAPR + "saiaprtc12/saiaprtc12ok.part1.rar"),
               RemoteFile(_IAPR + "saiaprtc12/saiaprtc12ok.part2.rar", extract=False),
               RemoteFile(_IAPR + "saiaprtc12/saiaprtc12ok.part3.rar", extract=False)),
        homepage="https://www.imageclef.org/photodata (IAPR TC-12); https://www.imageclef.org/SIAPRdata (SAIAPR)",
        layout="iaprtc12/{images,annotations_complete_eng}/{XX}/, saiaprtc12ok/benchmark/saiapr_tc-12/{XX}/labels.txt",
        notes="the SAIAPR region labels come as a three-part RAR (needs unrar or 7z; the parts must sit together)"),
})
# The second published NUS-WIDE cleaning reads the same files.
CATALOG = MappingProxyType({**CATALOG, "nuswide_tc21_clean": dataclasses.replace(CATALOG["nuswide_tc21"],
                                                                                  source="nuswide_tc21_clean")})


def get_download(source: str) -> RawDownload:
    """The catalog entry of ``source``; ConfigError listing the downloadable sources otherwise."""
    if source not in CATALOG:
        raise ConfigError(f"no download is known for data source {source!r}; downloadable: {', '.join(sorted(CATALOG))}")
    return CATALOG[source]


def fetch_raw(source: str | RawDownload, raw_dir: str | os.PathLike, *, archive_dir: str | os.PathLike,
              lock_file: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
              retries: int = 5, backoff: float = 1.0, timeout: float = 60.0, progress: bool = True,
              options: Mapping[str, Any] | None = None) -> Path:
    """Download (or find in ``data_root``) every published file of ``source`` into
    ``archive_dir``, extract the archives into ``raw_dir`` and run the source's extra step.

    ``lock_file`` defaults to ``archive_dir/checksums.lock.json``. ``options`` go to the extra
    step (NUS-WIDE: ``fetch_images``, ``image_dir``, ``image_workers``). Returns ``raw_dir``.
    """
    spec = get_download(source) if isinstance(source, str) else source
    raw_dir, archive_dir = Path(raw_dir), Path(archive_dir)
    lock = Path(lock_file) if lock_file is not None else archive_dir / "checksums.lock.json"
    local: list[tuple[RemoteFile, Path]] = []
    for remote in spec.files:
        path = download(remote.url, archive_dir / remote.name, md5=remote.md5, sha256=remote.sha256,
                        lock_file=lock, data_root=data_root, retries=retries, backoff=backoff, timeout=timeout,
                        progress=progress)
        local.append((remote, path))
    if data_root is not None:
        # a multi-volume RAR is read from the folder of its first part: keep the parts together
        parts = {p.parent for r, p in local if ".part" in r.name and r.name.endswith(".rar")}
        if len(parts) > 1:
            raise ConfigError(f"{spec.source}: the RAR volumes are split between {sorted(map(str, parts))}; put "
                              f"them in one folder")
    raw_dir.mkdir(parents=True, exist_ok=True)
    recorded = read_lock(lock)  # the digests verified above: no second pass over the archives
    for remote, path in local:
        if remote.extract and is_archive(path):
            log.info("extracting %s into %s", path, raw_dir)
            extract_archive(path, raw_dir, sha256=recorded.get(remote.url, {}).get("sha256"))
    if spec.after is not None:
        spec.after(raw_dir, {**spec.options, "retries": retries, "backoff": backoff, "progress": progress,
                             **(options or {})})
    return raw_dir


__all__ = ["CATALOG", "RawDownload", "RemoteFile", "fetch_raw", "get_download"]
