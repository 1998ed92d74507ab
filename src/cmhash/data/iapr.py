"""Parser of the raw IAPR TC-12 layout (Grubinger et al., 2006) with the SAIAPR TC-12 region labels
(Escalante et al., CVIU 2010) into a :class:`RawCorpus`.

The published archives extract to::

    iaprtc12/images/{XX}/{id}.jpg                       20,000 photographs (XX = 00..40)
    iaprtc12/annotations_complete_eng/{XX}/{id}.eng     ISO-8859-1 pseudo-XML: <DOC><DOCNO>
                                                        <TITLE><DESCRIPTION><NOTES><LOCATION>
                                                        <DATE><IMAGE>images/XX/id.jpg</IMAGE>...
    saiaprtc12ok/benchmark/saiapr_tc-12/{XX}/labels.txt one region per line: ``image_id
                                                        region_id label_id`` (label ids 1-based)
    saiaprtc12ok/benchmark/wlist.txt                    ``label_id<TAB>name`` (276 labels)

(iaprtc12.tgz and the three-part saiaprtc12ok RAR; the parser finds the folders by name up
to four levels below the raw folder).

The cross-modal hashing benchmark (DCMH, and NRCH/SCBCH after it; METHODS.md "Shared by NRCH
and SCBCH") labels each image with the SAIAPR labels of its regions: 255 distinct labels occur
in the region files of the 20,000 images, and these are the classes, here in ascending label-id
order. Text: the English ``<DESCRIPTION>`` of each image, as lower-case word tokens. The
published 2,912-word bag-of-words vocabulary is not documented; ``vocabulary`` here is every
token that occurs in at least ``min_df`` descriptions (default 5), most frequent first (ties
alphabetical), so its size differs from 2,912.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from cmhash.data.canonical import RawCorpus
from cmhash.errors import DataError
from cmhash.io import file_sha256

ANNOTATION_DIR = "annotations_complete_eng"
IMAGES_DIR = "images"
SAIAPR_DIR = "saiapr_tc-12"
WORD_LIST = "wlist.txt"
_DESCRIPTION = re.compile(r"<DESCRIPTION>(.*?)</DESCRIPTION>", re.DOTALL | re.IGNORECASE)
_IMAGE = re.compile(r"<IMAGE>(.*?)</IMAGE>", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_MAX_DEPTH = 4


def parse_iapr(raw_dir: str | os.PathLike, *, source: str = "iapr_tc12", min_df: int = 5,
               check_images: bool = True, drop_empty_description: bool = False) -> RawCorpus:
    """Parse extracted IAPR TC-12 + SAIAPR TC-12 files.

    Rows: images with SAIAPR region labels and an English annotation, in ascending image id
    (DCMH keeps every such pair); rows without a region label or without an annotation file
    are dropped, and so are those with an empty description when ``drop_empty_description``;
    ``meta`` counts each. ``check_images``: every kept row's image must exist.
    Raises DataError naming the file (and line) for a missing folder, a malformed labels line
    or annotation, or a label id absent from ``wlist.txt``.
    """
    raw_dir = Path(raw_dir).resolve()
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: IAPR TC-12 raw folder not found")
    ann_root = _find_dir(raw_dir, ANNOTATION_DIR, "iaprtc12.tgz")
    iapr_root = ann_root.parent
    saiapr_root = _find_dir(raw_dir, SAIAPR_DIR, "saiaprtc12ok.part1.rar (with part2 and part3)")
    names = read_word_list(saiapr_root.parent / WORD_LIST) if (saiapr_root.parent / WORD_LIST).is_file() else {}

    region_labels: dict[int, set[int]] = {}
    label_files = sorted(saiapr_root.glob("*/labels.txt"))
    if not label_files:
        raise DataError(f"{saiapr_root}: no {{XX}}/labels.txt file; extract the SAIAPR TC-12 archive completely")
    for path in label_files:
        for image_id, label_id in read_region_labels(path):
            region_labels.setdefault(image_id, set()).add(label_id)
    label_ids = sorted({lab for labs in region_labels.values() for lab in labs})
    if names:
        unknown = [lab for lab in label_ids if lab not in names]
        if unknown:
            raise DataError(f"{saiapr_root.parent / WORD_LIST}: label id(s) {unknown[:5]} used in labels.txt are not "
                            f"listed")
    column = {lab: j for j, lab in enumerate(label_ids)}

    annotations = {int(p.stem): p for p in ann_root.glob("*/*.eng") if p.stem.isdigit()}
    descriptions: dict[int, list[str]] = {}
    image_rel: dict[int, str] = {}
    for image_id in sorted(set(region_labels) & set(annotations)):
        desc, image = read_annotation(annotations[image_id])
        descriptions[image_id] = _WORD.findall(desc.lower())
        image_rel[image_id] = image
    kept = [i for i in sorted(descriptions) if descriptions[i] or not drop_empty_description]

    labels = np.zeros((len(kept), len(label_ids)), dtype=np.uint8)
    paths: list[str] = []
    listing: dict[Path, set[str]] = {}
    for r, image_id in enumerate(kept):
        labels[r, [column[lab] for lab in region_labels[image_id]]] = 1
        path = iapr_root / image_rel[image_id]
        if check_images:
            names_here = listing.setdefault(path.parent, set(os.listdir(path.parent)) if path.parent.is_dir() else set())
            if path.name not in names_here:
                raise DataError(f"{path}: image not found (named by {annotations[image_id]}); extract iaprtc12.tgz "
                                f"completely")
        paths.append(str(path))
    if not kept:
        raise DataError(f"{raw_dir}: no image has both SAIAPR region labels and an English description")

    texts = [descriptions[i] for i in kept]
    df = Counter(tok for toks in texts for tok in set(toks))
    vocabulary = sorted((t for t, c in df.items() if c >= min_df), key=lambda t: (-df[t], t))
    corpus = RawCorpus(
        labels=labels, classes=[names.get(lab, f"label{lab}") for lab in label_ids], texts=texts,
        image_paths=paths, ids=[str(i) for i in kept], vocabulary=vocabulary or None,
        meta={"source": source, "raw_dir": str(raw_dir), "annotation_dir": str(ann_root),
              "saiapr_dir": str(saiapr_root), "label_ids": label_ids,
              "n_labelled_images": len(region_labels), "n_annotations": len(annotations),
              "dropped_no_annotation": len(set(region_labels) - set(annotations)),
              "dropped_no_region_label": len(set(annotations) - set(region_labels)),
              "empty_description": sum(1 for i in descriptions if not descriptions[i]),
              "dropped_empty_description": len(descriptions) - len(kept),
              "text": "English <DESCRIPTION> word tokens (lower-case)",
              "vocabulary_rule": f"tokens in >= {min_df} descriptions, most frequent first",
              "source_files": {str(p.relative_to(raw_dir)): file_sha256(p) for p in label_files}})
    corpus.check(str(raw_dir))
    return corpus


def read_region_labels(path: Path) -> list[tuple[int, int]]:
    """``(image_id, label_id)`` of each line ``image_id region_id label_id`` of a SAIAPR labels.txt."""
    pairs = []
    with path.open(encoding="latin-1") as handle:
        for lineno, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 3 or not all(_is_int(f) for f in fields[:3]):
                raise DataError(f"{path}: line {lineno}: expected 'image_id region_id label_id', found {line.strip()!r}")
            pairs.append((int(float(fields[0])), int(float(fields[2]))))
    return pairs


def read_word_list(path: Path) -> dict[int, str]:
    """SAIAPR ``wlist.txt``: ``label_id<TAB>name`` per line."""
    names: dict[int, str] = {}
    with path.open(encoding="latin-1") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            head, _, name = line.rstrip("\r\n").partition("\t")
            if not _is_int(head.strip()):
                raise DataError(f"{path}: line {lineno}: expected 'label_id<TAB>name', found {line.strip()!r}")
            names[int(float(head))] = name.strip() or f"label{int(float(head))}"
    return names


def read_annotation(path: Path) -> tuple[str, str]:
    """``(description, image path relative to iaprtc12/)`` of one ``.eng`` file (ISO-8859-1)."""
    text = path.read_text(encoding="latin-1")
    desc = _DESCRIPTION.search(text)
    image = _IMAGE.search(text)
    if desc is None or image is None:
        missing = "DESCRIPTION" if desc is None else "IMAGE"
        raise DataError(f"{path}: no <{missing}> element (an IAPR TC-12 annotation holds <DESCRIPTION> and <IMAGE>)")
    rel = image.group(1).strip().replace("\\", "/")
    if rel.startswith("/") or ".." in rel.split("/"):
        raise DataError(f"{path}: <IMAGE> {rel!r} is not a path inside iaprtc12/")
    return " ".join(desc.group(1).split()), rel


def _find_dir(raw_dir: Path, name: str, archive: str) -> Path:
    for folder, dirs, _ in os.walk(raw_dir):
        depth = len(Path(folder).relative_to(raw_dir).parts)
        if name in dirs:
            return Path(folder) / name
        dirs[:] = sorted(d for d in dirs if depth < _MAX_DEPTH and d not in (IMAGES_DIR, "thumbnails"))
    raise DataError(f"{raw_dir}: folder {name}/ not found (up to {_MAX_DEPTH} levels down); extract {archive} into "
                    f"{raw_dir}")


def _is_int(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value == int(value)




__all__ = ["parse_iapr", "read_annotation", "read_region_labels", "read_word_list"]
