"""Parser of the raw NUS-WIDE layout (Chua et al., CIVR 2009) into the TC-21 :class:`RawCorpus`,
and the fetcher of its Flickr images from the published URL list.

The published archives (lms.comp.nus.edu.sg) extract to::

    ConceptsList/Concepts81.txt            the 81 concept names, one per line
    ImageList/Imagelist.txt                one image per line, ``concept\\NNNN_photoid.jpg``
    Groundtruth/AllLabels/Labels_{c}.txt   one 0/1 per line, rows in Imagelist order
    NUS_WID_Tags/TagList1k.txt             the 1,000 most frequent tags, one per line
    NUS_WID_Tags/AllTags1k.txt             one line of 1,000 0/1 values per image
    NUS-WIDE-urls/NUS-WIDE-urls.txt        header, then ``Photo_file Photo_id url_Large
                                           url_Middle url_Small url_Original`` (``null`` if none)

(the folder names above are how the archives extract; the parser finds each file by name up
to three levels below the raw folder). Images are not distributed: :func:`fetch_nuswide_images`
downloads them from the URL list (many Flickr photos no longer exist) or a local image folder
holding ``{concept}/{file}.jpg`` is given.

NUS-WIDE-TC21 (DCMH, and NRCH/SCBCH after it; METHODS.md "Shared by NRCH and SCBCH"): the
21 most frequent concepts (by number of positive images; columns kept in Concepts81 order),
text = the AllTags1k bag of words (1,000-d, columns in TagList1k order). Two published
cleanings:

* ``cleaning="labels"``: rows with at least one TC-21 label — 195,834 rows (DCMH's release);
* ``cleaning="labels_and_tags"``: rows with a TC-21 label and at least one AllTags1k tag —
  190,421 rows (the ``*-clean.mat`` files of UCCH/NRCH).
"""
from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from cmhash.data.canonical import RawCorpus
from cmhash.errors import ConfigError, DataError
from cmhash.io import file_sha256

log = logging.getLogger("cmhash")

CONCEPTS_FILE = "Concepts81.txt"
IMAGE_LIST_FILE = "Imagelist.txt"
TAG_LIST_FILE = "TagList1k.txt"
TAG_MATRIX_FILE = "AllTags1k.txt"
LABELS_DIR = "AllLabels"
URLS_FILE = "NUS-WIDE-urls.txt"
IMAGE_DIR = "Flickr"
MISSING_REPORT = "nuswide_missing_images.json"
Cleaning = Literal["labels", "labels_and_tags"]
_MAX_DEPTH = 3
_BLOCK_LINES = 20000


def parse_nuswide(raw_dir: str | os.PathLike, *, source: str = "nuswide_tc21", n_concepts: int = 21,
                  cleaning: Cleaning = "labels", image_dir: str | os.PathLike | None = None,
                  missing_images: Literal["drop", "error"] = "drop") -> RawCorpus:
    """Parse an extracted NUS-WIDE layout into NUS-WIDE-TC``n_concepts``.

    ``image_dir`` (default ``raw_dir/Flickr``) holds the images as ``{concept}/{file}.jpg``, the
    Imagelist paths. Rows kept by ``cleaning`` whose image is absent are dropped
    (``missing_images="drop"``, counted in ``meta`` and logged) or raise DataError
    (``"error"``). Raises DataError naming the file for a missing file, a line of the wrong
    length or a value other than 0/1.
    """
    if cleaning not in ("labels", "labels_and_tags"):
        raise ConfigError(f"nuswide: cleaning must be 'labels' or 'labels_and_tags', got {cleaning!r}")
    if missing_images not in ("drop", "error"):
        raise ConfigError(f"nuswide: missing_images must be 'drop' or 'error', got {missing_images!r}")
    raw_dir = Path(raw_dir).resolve()
    concepts, image_list, labels, top, counts, concepts_path, image_list_path = read_tc_labels(raw_dir, n_concepts)
    n_rows = len(image_list)

    tag_list_path = find_file(raw_dir, TAG_LIST_FILE, "NUS_WID_Tags.zip")
    vocabulary = _read_names(tag_list_path)
    tag_matrix_path = find_file(raw_dir, TAG_MATRIX_FILE, "NUS_WID_Tags.zip")
    tags = read_binary_matrix(tag_matrix_path, n_rows, len(vocabulary))

    labelled = labels.sum(axis=1) > 0
    tagged = tags.sum(axis=1) > 0
    keep = labelled & tagged if cleaning == "labels_and_tags" else labelled
    rows = np.flatnonzero(keep)

    image_root = Path(image_dir).resolve() if image_dir is not None else raw_dir / IMAGE_DIR
    present = _present_images(image_root, (image_list[r] for r in rows))
    missing = [int(r) for r, ok in zip(rows, present) if not ok]
    if missing:
        first = image_root / image_list[missing[0]]
        if missing_images == "error":
            raise DataError(f"{first}: image not found ({len(missing)} of the {rows.size} kept images are missing); "
                            f"fetch them (cmhash.data.nuswide.fetch_nuswide_images) or pass image_dir")
        log.warning("nuswide: %d of %d kept rows have no image under %s (first: %s); dropped", len(missing),
                    rows.size, image_root, first)
        rows = np.array([r for r, ok in zip(rows, present) if ok], dtype=np.int64)
    if not rows.size:
        raise DataError(f"{raw_dir}: no row is left after cleaning '{cleaning}' and the image check")

    texts = [[vocabulary[k] for k in np.flatnonzero(tags[r])] for r in rows]
    corpus = RawCorpus(
        labels=labels[rows], classes=[concepts[j] for j in top], texts=texts,
        image_paths=[str(image_root / image_list[r]) for r in rows], ids=[_photo_id(image_list[r]) for r in rows],
        vocabulary=vocabulary,
        meta={"source": source, "raw_dir": str(raw_dir), "image_dir": str(image_root), "n_raw_rows": n_rows,
              "cleaning": cleaning, "n_concepts": n_concepts,
              "concept_counts": {concepts[j]: int(counts[j]) for j in top},
              "concept_columns_in_concepts81": [int(j) for j in top],
              "dropped_no_label": int((~labelled).sum()),
              "dropped_no_tag": int((labelled & ~tagged).sum()) if cleaning == "labels_and_tags" else 0,
              "dropped_missing_image": len(missing),
              "missing_images_first": [image_list[r] for r in missing[:20]],
              "text": "AllTags1k tags (TagList1k order, the BoW columns)",
              "source_files": {str(p.relative_to(raw_dir)): file_sha256(p)
                               for p in (concepts_path, image_list_path, tag_list_path)}})
    corpus.check(str(raw_dir))
    return corpus


def read_tc_labels(raw_dir: str | os.PathLike, n_concepts: int = 21):
    """The TC-``n_concepts`` labels: ``(concepts81, image list, labels n x n_concepts, column
    indices into Concepts81, per-concept counts, Concepts81 path, Imagelist path)``.

    The concepts are the ``n_concepts`` with the most positive images over the whole list
    (ties: the earlier Concepts81 entry), kept in Concepts81 order (METHODS.md: NUS-WIDE-TC21).
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: NUS-WIDE raw folder not found")
    concepts_path = find_file(raw_dir, CONCEPTS_FILE, "ConceptsList.zip")
    concepts = _read_names(concepts_path)
    image_list_path = find_file(raw_dir, IMAGE_LIST_FILE, "ImageList.zip")
    image_list = [line.strip().replace("\\", "/") for line in _read_lines(image_list_path) if line.strip()]
    if not 0 < n_concepts <= len(concepts):
        raise ConfigError(f"nuswide: n_concepts must lie in 1..{len(concepts)}, got {n_concepts}")
    labels_dir = find_dir(raw_dir, LABELS_DIR, f"Labels_{concepts[0]}.txt", "Groundtruth.zip")
    all_labels = np.zeros((len(image_list), len(concepts)), dtype=np.uint8)
    for j, concept in enumerate(concepts):
        all_labels[:, j] = read_binary_matrix(labels_dir / f"Labels_{concept}.txt", len(image_list), 1)[:, 0]
    counts = all_labels.sum(axis=0, dtype=np.int64)
    top = np.sort(np.argsort(-counts, kind="stable")[:n_concepts])
    return concepts, image_list, all_labels[:, top], top, counts, concepts_path, image_list_path


def read_binary_matrix(path: Path, n_rows: int, n_cols: int) -> np.ndarray:
    """A text file of ``n_rows`` lines of ``n_cols`` whitespace-separated 0/1 values as uint8.

    Read in blocks of lines; DataError naming the file (and the line) for a wrong line count,
    a line of the wrong length or a value other than 0 and 1.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if n_cols == 1:  # one value per line (the 81 label files): split the whole file at once
        tokens = path.read_bytes().split()
        joined = b"".join(tokens)
        if len(tokens) == n_rows and len(joined) == n_rows:
            values = np.frombuffer(joined, dtype=np.uint8) - ord("0")
            if not (values > 1).any():
                return values.reshape(n_rows, 1).copy()
        # fall through to the line reader, which names the offending line
    out = np.zeros((n_rows, n_cols), dtype=np.uint8)
    row = 0
    with path.open("rb") as handle:
        while True:
            block = list(itertools.islice(handle, _BLOCK_LINES))
            if not block:
                break
            block = [line for line in block if line.strip()]
            if row + len(block) > n_rows:
                raise DataError(f"{path}: more than {n_rows} lines (the image list has {n_rows})")
            stripped = [line.translate(None, b" \t\r\n") for line in block]
            if any(len(d) != n_cols for d in stripped):
                _raise_bad_line(path, block, row, n_cols)
            values = np.frombuffer(b"".join(stripped), dtype=np.uint8) - ord("0")
            if (values > 1).any():  # also catches non-digits (wrapped around below '0')
                _raise_bad_line(path, block, row, n_cols)
            out[row:row + len(block)] = values.reshape(len(block), n_cols)
            row += len(block)
    if row != n_rows:
        raise DataError(f"{path}: {row} lines, but the image list has {n_rows} images")
    return out


def _raise_bad_line(path: Path, block: list[bytes], first_row: int, n_cols: int) -> None:
    for k, line in enumerate(block):
        fields = line.split()
        if len(fields) != n_cols or any(f not in (b"0", b"1") for f in fields):
            shown = line.decode("latin-1").strip()
            raise DataError(f"{path}: line {first_row + k + 1}: expected {n_cols} values of 0 or 1, found "
                            f"{shown[:80]!r}{'...' if len(shown) > 80 else ''}")
    raise DataError(f"{path}: malformed block after line {first_row}")  # pragma: no cover


def read_urls(raw_dir: str | os.PathLike) -> dict[str, list[str]]:
    """NUS-WIDE-urls.txt as ``{relative image path: [url_Middle, url_Large, url_Small,
    url_Original]}`` (``null`` entries left out). The path is the last two components of
    ``Photo_file`` (``concept/NNNN_photoid.jpg``), as in Imagelist.txt."""
    path = find_file(Path(raw_dir), URLS_FILE, "NUS-WIDE-urls.rar")
    urls: dict[str, list[str]] = {}
    lines = _read_lines(path)
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise DataError(f"{path}: line {lineno}: expected 6 fields (Photo_file Photo_id url_Large url_Middle "
                            f"url_Small url_Original), found {len(fields)}")
        rel = "/".join(fields[0].replace("\\", "/").split("/")[-2:])
        large, middle, small, original = fields[2:6]
        urls[rel] = [u for u in (middle, large, small, original) if u.lower() != "null"]
    return urls


def fetch_nuswide_images(raw_dir: str | os.PathLike, image_dir: str | os.PathLike | None = None, *,
                         only: Iterable[str] | None = None, n_concepts: int = 21, workers: int = 8,
                         retries: int = 3,
                         backoff: float = 1.0, timeout: float = 30.0, progress: bool = True) -> dict[str, str]:
    """Download the images of the Imagelist rows with a TC-``n_concepts`` label (or of ``only``,
    relative paths) from the URL list into ``image_dir`` (default ``raw_dir/Flickr``),
    concurrently and with retries; images already there are skipped. Writes ``nuswide_missing_images.json`` (relative path -> reason)
    in ``raw_dir`` and returns it. Flickr's "photo unavailable" placeholder counts as missing.
    """
    from cmhash.data.download import (
        fetch_many,  # local: only this step needs the network code
    )

    raw_dir = Path(raw_dir)
    image_root = Path(image_dir) if image_dir is not None else raw_dir / IMAGE_DIR
    urls = read_urls(raw_dir)
    if only is None:  # the images of the rows with a TC-21 label (what either cleaning can keep)
        _, image_list, labels, *_ = read_tc_labels(raw_dir, n_concepts)
        wanted = [image_list[r] for r in np.flatnonzero(labels.sum(axis=1) > 0)]
    else:
        wanted = list(only)
    missing: dict[str, str] = {}
    items: list[tuple[str, Path]] = []
    for rel in wanted:
        candidates = urls.get(rel)
        if not candidates:
            missing[rel] = "no URL in NUS-WIDE-urls.txt"
        else:
            items.append((candidates[0], image_root / rel))
    failures = fetch_many(items, workers=workers, retries=retries, backoff=backoff, timeout=timeout,
                          progress=progress, reject=_flickr_placeholder)
    for dest, reason in failures.items():
        missing[Path(dest).relative_to(image_root).as_posix()] = reason
    report = raw_dir / MISSING_REPORT
    report.write_text(json.dumps({"image_dir": str(image_root), "n_wanted": len(wanted), "n_missing": len(missing),
                                  "missing": dict(sorted(missing.items()))}, indent=1) + "\n")
    if missing:
        log.warning("nuswide: %d of %d images could not be fetched (see %s)", len(missing), len(wanted), report)
    return missing


def _flickr_placeholder(final_url: str, body: bytes) -> str | None:
    if "photo_unavailable" in final_url or "unavailable" in final_url.rsplit("/", 1)[-1]:
        return "Flickr placeholder (photo no longer available)"
    return None


def find_file(raw_dir: Path, name: str, archive: str) -> Path:
    """``name`` in ``raw_dir`` or up to three levels below it (first in sorted walk order)."""
    for folder, _ in _walk(raw_dir):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{raw_dir}: {name} not found (up to {_MAX_DEPTH} levels down); extract {archive} into "
                    f"{raw_dir}")


def find_dir(raw_dir: Path, name: str, must_hold: str, archive: str) -> Path:
    """The folder ``name`` holding ``must_hold``, in ``raw_dir`` or up to three levels below."""
    for folder, _ in _walk(raw_dir):
        if folder.name == name and (folder / must_hold).is_file():
            return folder
    raise DataError(f"{raw_dir}: folder {name}/ with {must_hold} not found; extract {archive} into {raw_dir}")


def _walk(root: Path):
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        # the image folder holds one sub-folder per concept and 269,648 files: never walk it
        dirs[:] = sorted(d for d in dirs if depth < _MAX_DEPTH and d != IMAGE_DIR)
        yield Path(folder), files


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _read_names(path: Path) -> list[str]:
    names = [line.strip() for line in _read_lines(path) if line.strip()]
    if not names:
        raise DataError(f"{path}: lists nothing")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: a name is listed twice")
    return names


def _present_images(image_root: Path, rels: Iterable[str]) -> list[bool]:
    listing: dict[str, set[str]] = {}
    out = []
    for rel in rels:
        folder, _, name = rel.rpartition("/")
        if folder not in listing:
            d = image_root / folder
            listing[folder] = set(os.listdir(d)) if d.is_dir() else set()
        out.append(name in listing[folder])
    return out


def _photo_id(rel: str) -> str:
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.split("_", 1)[1] if "_" in stem else stem




__all__ = [
    "Cleaning",
    "fetch_nuswide_images",
    "find_dir",
    "find_file",
    "parse_nuswide",
    "read_binary_matrix",
    "read_tc_labels",
    "read_urls",
]
