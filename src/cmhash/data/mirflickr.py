"""Parser of the raw MIRFlickr-25K layout (Huiskes & Lew, MIR 2008) into a :class:`RawCorpus`.

The two published archives extract to::

    mirflickr/im{N}.jpg                        N = 1..25000
    mirflickr/meta/tags/tags{N}.txt            one (cleaned, lower-case) Flickr tag per line
    mirflickr/doc/common_tags.txt              ``tag count`` per line, the common tags
    mirflickr25k_annotations_v080/{concept}.txt     1-based image numbers, one per line
    mirflickr25k_annotations_v080/{concept}_r1.txt  the "relevant" subsets (ignored here)
    mirflickr25k_annotations_v080/README.txt

The cross-modal hashing literature (DCMH, and NRCH/SCBCH after it; METHODS.md, "Shared by
NRCH and SCBCH") uses the 24 concept files in alphabetical order as labels and the tags of
``common_tags.txt`` (1,386 tags, in that file's order) as the bag-of-words vocabulary, and
keeps only the images with at least one label and one common tag (20,015 of 25,000).
:func:`parse_mirflickr` does exactly that and records how many rows it dropped.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmhash.data.canonical import RawCorpus
from cmhash.errors import DataError
from cmhash.io import file_sha256

#: The 24 MIRFlickr-25K concepts, alphabetical (the DCMH/UCCH column order of ``LAll``).
MIRFLICKR_CONCEPTS: tuple[str, ...] = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor",
    "lake", "male", "night", "people", "plant_life", "portrait", "river", "sea", "sky",
    "structures", "sunset", "transport", "tree", "water",
)
#: Folder name of the extracted annotations archive (mirflickr25k_annotations_v080.zip).
ANNOTATION_FOLDER = "mirflickr25k_annotations_v080"
IMAGE_FOLDER = "mirflickr"
TAGS_SUBDIR = Path("meta") / "tags"
COMMON_TAGS_FILE = Path("doc") / "common_tags.txt"

_IMAGE_NAME = re.compile(r"^im(\d+)\.jpg$")
_MAX_SEARCH_DEPTH = 3


def parse_mirflickr(raw_dir: str | os.PathLike, *, source: str = "mirflickr25k",
                    concepts: Sequence[str] = MIRFLICKR_CONCEPTS) -> RawCorpus:
    """Parse an extracted MIRFlickr-25K layout (or the ``embedded`` generator's copy of it).

    Rows are the images ``im{N}.jpg`` in increasing N; ``ids`` are the numbers N as strings and
    ``image_paths`` absolute paths. Labels: one column per concept, in alphabetical order, from
    ``{concept}.txt`` (``*_r1.txt`` and README are ignored). Texts: each image's tags that belong
    to the vocabulary of ``doc/common_tags.txt`` (the BoW columns, in that file's order), in the
    tag file's order with repeats removed. Rows with no label or no common tag are dropped (the
    DCMH filtering); ``meta`` records the counts.

    Raises DataError naming the file for a missing folder or file, a malformed line, or an
    annotation that refers to an image that is not there.
    """
    raw_dir = Path(raw_dir).resolve()
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: MIRFlickr raw folder not found; extract mirflickr25k.zip and "
                        f"mirflickr25k_annotations_v080.zip into it")
    classes = sorted(concepts)
    image_dir = find_image_dir(raw_dir)
    vocab_file = image_dir / COMMON_TAGS_FILE
    vocabulary = read_common_tags(vocab_file)
    numbers = _image_numbers(image_dir)
    annotation_dir = find_annotation_dir(raw_dir, classes)

    row_of = {n: r for r, n in enumerate(numbers)}
    labels = np.zeros((len(numbers), len(classes)), dtype=np.uint8)
    source_files = {str(vocab_file.relative_to(raw_dir)): file_sha256(vocab_file)}
    for j, concept in enumerate(classes):
        path = annotation_dir / f"{concept}.txt"
        for n in read_annotation(path, numbers):
            labels[row_of[n], j] = 1
        source_files[str(path.relative_to(raw_dir))] = file_sha256(path)

    in_vocab = set(vocabulary)
    texts: list[list[str]] = []
    for n in numbers:
        tags = read_tags(image_dir / TAGS_SUBDIR / f"tags{n}.txt")
        texts.append(list(dict.fromkeys(t for t in tags if t in in_vocab)))

    labelled = labels.sum(axis=1) > 0
    tagged = np.array([len(t) > 0 for t in texts], dtype=bool)
    keep = np.flatnonzero(labelled & tagged)
    corpus = RawCorpus(
        labels=labels[keep],
        classes=classes,
        texts=[texts[r] for r in keep],
        image_paths=[str(image_dir / f"im{numbers[r]}.jpg") for r in keep],
        ids=[str(numbers[r]) for r in keep],
        vocabulary=vocabulary,
        meta={
            "source": source,
            "raw_dir": str(raw_dir),
            "image_dir": str(image_dir),
            "annotation_dir": str(annotation_dir),
            "n_raw_rows": len(numbers),
            "dropped_no_label": int((~labelled).sum()),
            "dropped_no_tag": int((labelled & ~tagged).sum()),
            "text": "tags restricted to doc/common_tags.txt, in that file's order (BoW columns)",
            "source_files": source_files,
        },
    )
    if not keep.size:
        raise DataError(f"{raw_dir}: no image has both a label and a common tag")
    corpus.check(str(raw_dir))
    return corpus


def find_image_dir(raw_dir: Path) -> Path:
    """The folder holding ``im{N}.jpg``, ``meta/tags`` and ``doc/common_tags.txt``:
    ``raw_dir/mirflickr`` as extracted, ``raw_dir`` itself, or one found up to 3 levels down."""
    for candidate in (raw_dir / IMAGE_FOLDER, raw_dir):
        if (candidate / TAGS_SUBDIR).is_dir():
            return candidate
    for folder, _ in _walk(raw_dir):
        if (folder / TAGS_SUBDIR).is_dir():
            return folder
    raise DataError(f"{raw_dir / IMAGE_FOLDER / TAGS_SUBDIR}: folder not found; extract mirflickr25k.zip "
                    f"into {raw_dir} so that it holds mirflickr/im1.jpg and mirflickr/meta/tags/")


def find_annotation_dir(raw_dir: Path, concepts: Sequence[str] = MIRFLICKR_CONCEPTS) -> Path:
    """The folder holding the ``{concept}.txt`` files: ``raw_dir/mirflickr25k_annotations_v080``
    when present, otherwise the folder (up to 3 levels below ``raw_dir``, outside ``meta``) with
    the most concept files. Raises DataError naming the missing files if none has them all."""
    preferred = raw_dir / ANNOTATION_FOLDER
    wanted = {f"{c}.txt" for c in concepts}
    if preferred.is_dir():
        best, found = preferred, wanted & {p.name for p in preferred.iterdir()}
    else:
        best, found = preferred, set()
        for folder, files in _walk(raw_dir):
            hits = wanted & files
            if len(hits) > len(found):
                best, found = folder, hits
    missing = sorted(wanted - found)
    if missing:
        raise DataError(f"{best}: annotation file(s) {', '.join(missing)} not found; extract "
                        f"mirflickr25k_annotations_v080.zip into {raw_dir}")
    return best


def read_common_tags(path: Path) -> list[str]:
    """The vocabulary of ``doc/common_tags.txt``: lines ``tag count`` (tab or space separated),
    kept in file order. Raises DataError naming the file and line for a malformed line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (the common-tags list of mirflickr25k.zip)")
    vocabulary: list[str] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                raise DataError(f"{path}: line {lineno}: expected 'tag<TAB>count', found {line.rstrip()!r}")
            if fields[0] in seen:
                raise DataError(f"{path}: line {lineno}: tag {fields[0]!r} listed twice")
            seen.add(fields[0])
            vocabulary.append(fields[0])
    if not vocabulary:
        raise DataError(f"{path}: lists no tag")
    return vocabulary


def read_annotation(path: Path, numbers: Sequence[int]) -> list[int]:
    """The 1-based image numbers listed in one concept file, checked against ``numbers`` (the
    images present). Raises DataError naming the file and line for a malformed or unknown id."""
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    present = set(numbers)
    ids: list[int] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if not text.isdigit():
                raise DataError(f"{path}: line {lineno}: expected an image number, found {text!r}")
            n = int(text)
            if n not in present:
                raise DataError(f"{path}: line {lineno}: image {n} out of range (the images are "
                                f"im{min(numbers)}.jpg..im{max(numbers)}.jpg, {len(numbers)} files)")
            ids.append(n)
    return ids


def read_tags(path: Path) -> list[str]:
    """The tags of one image, one per line (blank lines skipped)."""
    if not path.is_file():
        raise DataError(f"{path}: tag file not found (every im{{N}}.jpg needs meta/tags/tags{{N}}.txt)")
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [t for t in (line.strip() for line in handle) if t]


def _image_numbers(image_dir: Path) -> list[int]:
    numbers = sorted(int(m.group(1)) for name in os.listdir(image_dir)
                     if (m := _IMAGE_NAME.match(name)))
    if not numbers:
        raise DataError(f"{image_dir}: holds no image im{{N}}.jpg")
    return numbers


def _walk(root: Path):
    """Folders below ``root`` (depth <= 3) with their file names, skipping ``meta`` folders
    (which hold one file per image)."""
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d != "meta" and depth < _MAX_SEARCH_DEPTH)
        yield Path(folder), set(files)




__all__ = [
    "ANNOTATION_FOLDER",
    "MIRFLICKR_CONCEPTS",
    "find_annotation_dir",
    "find_image_dir",
    "parse_mirflickr",
    "read_annotation",
    "read_common_tags",
    "read_tags",
]
