"""The MIRFlickr raw-layout parser on hand-made layouts, and the raw sources of the registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cmhash.data import SOURCES, get_source, import_features, known_sources, prepare_raw
from cmhash.data.canonical import read_prepared
from cmhash.data.mirflickr import MIRFLICKR_CONCEPTS, parse_mirflickr
from cmhash.errors import ConfigError, DataError


def make_layout(root: Path, *, tags: dict[int, list[str]], labels: dict[str, list[int]],
                common: str = "sky\t9\nsea\t7\nbeach\t5\n", annotation_folder: str = "mirflickr25k_annotations_v080",
                r1: dict[str, list[int]] | None = None) -> Path:
    """A tiny MIRFlickr layout: images im1..imN (placeholder bytes; the parser never decodes
    them), one tag file each, common_tags.txt, and one annotation file per concept."""
    image_dir = root / "mirflickr"
    (image_dir / "meta" / "tags").mkdir(parents=True)
    (image_dir / "doc").mkdir()
    for n, row_tags in tags.items():
        (image_dir / f"im{n}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
        (image_dir / "meta" / "tags" / f"tags{n}.txt").write_text("".join(t + "\n" for t in row_tags))
    (image_dir / "doc" / "common_tags.txt").write_text(common)
    ann = root / annotation_folder
    ann.mkdir(parents=True)
    for concept in MIRFLICKR_CONCEPTS:
        (ann / f"{concept}.txt").write_text("".join(f"{n}\n" for n in labels.get(concept, [])))
    for concept, ids in (r1 or {}).items():
        (ann / f"{concept}_r1.txt").write_text("".join(f"{n}\n" for n in ids))
    (ann / "README.txt").write_text("annotations\n")
    return root


TAGS = {1: ["beach", "holiday", "sky", "beach"], 2: ["sea"], 3: ["nikon"], 4: ["sky"], 5: []}
LABELS = {"sky": [1, 3, 4], "sea": [1, 2], "water": [1, 2], "clouds": [4]}


def test_parses_labels_tags_and_drops_rows(tmp_path: Path) -> None:
    root = make_layout(tmp_path, tags=TAGS, labels=LABELS, r1={"sky": [2]})
    corpus = parse_mirflickr(root)
    # image 3 has labels but no common tag, image 5 neither labels nor tags
    assert corpus.ids == ["1", "2", "4"]
    assert corpus.meta["dropped_no_label"] == 1 and corpus.meta["dropped_no_tag"] == 1
    assert corpus.meta["n_raw_rows"] == 5
    assert corpus.vocabulary == ["sky", "sea", "beach"]  # the file's order, not alphabetical
    assert corpus.texts == [["beach", "sky"], ["sea"], ["sky"]]  # file order, out-of-vocabulary and repeats removed
    assert corpus.classes == list(MIRFLICKR_CONCEPTS) == sorted(MIRFLICKR_CONCEPTS)
    col = {c: j for j, c in enumerate(corpus.classes)}
    expected = np.zeros((3, 24), dtype=np.uint8)
    for c, row in [("sky", 0), ("sea", 0), ("water", 0), ("sea", 1), ("water", 1), ("sky", 2), ("clouds", 2)]:
        expected[row, col[c]] = 1
    np.testing.assert_array_equal(corpus.labels, expected)  # sky_r1.txt (image 2) is ignored
    assert corpus.image_paths == [str((tmp_path / "mirflickr" / f"im{n}.jpg").resolve()) for n in (1, 2, 4)]
    assert "mirflickr/doc/common_tags.txt" in corpus.meta["source_files"]


def test_annotations_found_in_another_folder_and_space_separated_counts(tmp_path: Path) -> None:
    root = make_layout(tmp_path, tags=TAGS, labels=LABELS, common="sky 9\nsea 7\n",
                       annotation_folder="downloads/annotations")
    corpus = parse_mirflickr(root)
    assert corpus.meta["annotation_dir"] == str((tmp_path / "downloads" / "annotations").resolve())
    assert corpus.vocabulary == ["sky", "sea"]
    assert corpus.ids == ["1", "2", "4"]


@pytest.mark.parametrize("corrupt, match", [
    (lambda r: (r / "mirflickr" / "doc" / "common_tags.txt").unlink(), r"common_tags\.txt: file not found"),
    (lambda r: (r / "mirflickr" / "doc" / "common_tags.txt").write_text("sky\t9\nsea seven\n"),
     r"common_tags\.txt: line 2"),
    (lambda r: (r / "mirflickr25k_annotations_v080" / "dog.txt").unlink(), r"annotation file\(s\) dog\.txt not found"),
    (lambda r: (r / "mirflickr25k_annotations_v080" / "sky.txt").write_text("1\nx3\n"),
     r"sky\.txt: line 2: expected an image number"),
    (lambda r: (r / "mirflickr25k_annotations_v080" / "sea.txt").write_text("2\n9\n"),
     r"sea\.txt: line 2: image 9 out of range"),
    (lambda r: (r / "mirflickr" / "meta" / "tags" / "tags4.txt").unlink(), r"tags4\.txt: tag file not found"),
])
def test_errors_name_the_file(tmp_path: Path, corrupt, match: str) -> None:
    root = make_layout(tmp_path, tags=TAGS, labels=LABELS)
    corrupt(root)
    with pytest.raises(DataError, match=match):
        parse_mirflickr(root)


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="raw folder not found"):
        parse_mirflickr(tmp_path / "absent")
    with pytest.raises(DataError, match=r"meta/tags: folder not found"):
        parse_mirflickr(tmp_path)


def test_registry_and_prepare_raw(tmp_path: Path) -> None:
    assert {"embedded", "mirflickr25k", "wikipedia"} <= set(known_sources())
    kinds = {name: spec.kind for name, spec in SOURCES.items()}
    assert {k: kinds[k] for k in ("embedded", "mirflickr25k", "wikipedia")} == \
        {"embedded": "raw", "mirflickr25k": "raw", "wikipedia": "features"}
    assert get_source("embedded").generate is not None
    with pytest.raises(ConfigError, match="known sources: embedded, iapr_tc12"):
        get_source("nuswide")
    with pytest.raises(ConfigError, match="use import_features"):
        prepare_raw("wikipedia", tmp_path, tmp_path / "out", 1, 1, 0, 0)
    with pytest.raises(ConfigError, match="use prepare_raw"):
        import_features("embedded", tmp_path, tmp_path / "out", 0, 0)

    raw = get_source("embedded").generate(tmp_path / "raw", 40, seed=1, image_size=32)
    corpus, splits = prepare_raw("embedded", raw, tmp_path / "prepared", n_query=5, n_train=20, n_validation=4, seed=2)
    back, back_splits = read_prepared(tmp_path / "prepared")
    np.testing.assert_array_equal(back.labels, corpus.labels)
    assert back.texts == corpus.texts and back.ids == corpus.ids and back.vocabulary == corpus.vocabulary
    assert back.meta["source"] == "embedded" and back.meta["splits"]["n_train"] == 20
    assert len(back_splits.query) == 5 and len(back_splits.train) == 20 and len(back_splits.validation) == 4
    assert len(back_splits.database) == corpus.labels.shape[0] - 5
    assert not np.isin(back_splits.query, back_splits.database).any()
