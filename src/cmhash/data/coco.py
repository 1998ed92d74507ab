"""Parser of the raw MS-COCO 2014 layout (Lin et al., ECCV 2014) into a :class:`RawCorpus`.

The three published archives extract to::

    train2014/COCO_train2014_{id:012d}.jpg          82,783 images
    val2014/COCO_val2014_{id:012d}.jpg              40,504 images
    annotations/instances_{train,val}2014.json      object instances (image_id, category_id)
    annotations/captions_{train,val}2014.json       about five captions per image

The cross-modal hashing benchmark (NRCH/SCBCH, METHODS.md "Shared by NRCH and SCBCH"; the
UCCH/SVHN MS-COCO release before them) pools train2014 and val2014 (123,287 images), labels
each image with the 80 object categories remapped to 0..79 in ascending order of their COCO
ids, takes the captions as its text (300-d Doc2Vec downstream), and drops the images without
any instance annotation: 122,218 rows on the real data. :func:`parse_coco` does exactly that.
Rows are ordered by ascending COCO image id (ids are unique across train and val); the text of
a row is the tokens of its captions, in caption-id order, joined.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cmhash.data.canonical import RawCorpus
from cmhash.errors import DataError
from cmhash.io import file_sha256

SPLITS = ("train2014", "val2014")
ANNOTATION_DIR = "annotations"
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize_caption(text: str) -> list[str]:
    """Lower-case alphanumeric tokens of a caption (punctuation dropped)."""
    return _TOKEN.findall(text.lower())


def parse_coco(raw_dir: str | os.PathLike, *, source: str = "mscoco2014", splits: tuple[str, ...] = SPLITS,
               check_images: bool = True) -> RawCorpus:
    """Parse an extracted MS-COCO 2014 layout (train2014.zip, val2014.zip,
    annotations_trainval2014.zip in one folder).

    Labels: multi-hot over the 80 categories sorted by COCO id (``classes`` are their names),
    from every instance annotation (crowd ones included). Texts: caption tokens. Rows with no
    instance annotation (and, should there be any, no caption) are dropped; ``meta`` records
    how many. ``check_images``: every kept row's image file must exist (DataError naming the
    first missing one otherwise).
    """
    raw_dir = Path(raw_dir).resolve()
    ann_dir = _find_dir(raw_dir, ANNOTATION_DIR, f"instances_{splits[0]}.json")
    categories: list[dict[str, Any]] | None = None
    images: dict[int, tuple[str, str]] = {}  # id -> (split, file name)
    labels_of: dict[int, set[int]] = defaultdict(set)
    captions_of: dict[int, list[tuple[int, str]]] = defaultdict(list)
    source_files: dict[str, str] = {}
    for split in splits:
        inst_path = ann_dir / f"instances_{split}.json"
        cap_path = ann_dir / f"captions_{split}.json"
        inst = _load(inst_path, ("images", "annotations", "categories"))
        cats = sorted(inst["categories"], key=lambda c: int(c["id"]))
        if categories is None:
            categories = cats
        elif [c["id"] for c in cats] != [c["id"] for c in categories]:
            raise DataError(f"{inst_path}: categories differ from those of instances_{splits[0]}.json")
        for im in inst["images"]:
            image_id = int(im["id"])
            if image_id in images:
                raise DataError(f"{inst_path}: image id {image_id} also appears in {images[image_id][0]}")
            images[image_id] = (split, str(im["file_name"]))
        for ann in inst["annotations"]:
            labels_of[int(ann["image_id"])].add(int(ann["category_id"]))
        caps = _load(cap_path, ("annotations",))
        for ann in caps["annotations"]:
            captions_of[int(ann["image_id"])].append((int(ann["id"]), str(ann["caption"])))
        source_files[str(inst_path.relative_to(raw_dir))] = file_sha256(inst_path)
        source_files[str(cap_path.relative_to(raw_dir))] = file_sha256(cap_path)
    assert categories is not None
    column = {int(c["id"]): j for j, c in enumerate(categories)}
    unknown = {cid for cids in labels_of.values() for cid in cids} - set(column)
    if unknown:
        raise DataError(f"{ann_dir}: annotations use category ids {sorted(unknown)[:5]} not listed in 'categories'")
    stray = set(labels_of) - set(images)
    if stray:
        raise DataError(f"{ann_dir}: {len(stray)} annotations refer to unknown image ids (first {min(stray)})")

    order = sorted(images)
    labelled = [i for i in order if labels_of.get(i)]
    kept = [i for i in labelled if captions_of.get(i)]
    labels = np.zeros((len(kept), len(categories)), dtype=np.uint8)
    texts: list[list[str]] = []
    paths: list[str] = []
    present: dict[str, set[str]] = {}
    folders = {split: _find_image_dir(raw_dir, split) for split in splits}
    for r, image_id in enumerate(kept):
        for cid in labels_of[image_id]:
            labels[r, column[cid]] = 1
        texts.append([tok for _, cap in sorted(captions_of[image_id]) for tok in tokenize_caption(cap)])
        split, name = images[image_id]
        folder = folders[split]
        if check_images:
            names = present.setdefault(split, set(os.listdir(folder)))
            if name not in names:
                raise DataError(f"{folder / name}: image not found ({split}.zip extracted incompletely?); "
                                f"extract {split}.zip into {raw_dir}")
        paths.append(str(folder / name))
    if not kept:
        raise DataError(f"{raw_dir}: no image has an instance annotation")
    corpus = RawCorpus(
        labels=labels, classes=[str(c["name"]) for c in categories], texts=texts, image_paths=paths,
        ids=[str(i) for i in kept], vocabulary=None,
        meta={"source": source, "raw_dir": str(raw_dir), "n_raw_rows": len(order),
              "dropped_no_label": len(order) - len(labelled), "dropped_no_caption": len(labelled) - len(kept),
              "category_ids": [int(c["id"]) for c in categories],
              "text": "caption tokens (lower-case alphanumeric), captions in id order",
              "row_order": "ascending COCO image id over train2014 + val2014",
              "source_files": source_files})
    corpus.check(str(raw_dir))
    return corpus


def _load(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; extract annotations_trainval2014.zip into the raw folder")
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed JSON ({exc})") from exc
    missing = [k for k in keys if k not in data]
    if missing:
        raise DataError(f"{path}: key(s) {missing} not found")
    return data


def _find_dir(raw_dir: Path, name: str, must_hold: str) -> Path:
    for candidate in (raw_dir / name, *sorted(raw_dir.glob(f"*/{name}"))):
        if (candidate / must_hold).is_file():
            return candidate
    raise DataError(f"{raw_dir / name / must_hold}: not found; extract annotations_trainval2014.zip into {raw_dir}")


def _find_image_dir(raw_dir: Path, split: str) -> Path:
    for candidate in (raw_dir / split, *sorted(raw_dir.glob(f"*/{split}"))):
        if candidate.is_dir():
            return candidate
    raise DataError(f"{raw_dir / split}: folder not found; extract {split}.zip into {raw_dir}")




__all__ = ["SPLITS", "parse_coco", "tokenize_caption"]
