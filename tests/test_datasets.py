"""The four raw benchmark datasets end to end on miniatures in their published layouts: archives
served by a loopback HTTP server, fetched through the catalog (cmhash.data.sources_catalog),
extracted, parsed, filtered and split (cmhash.data.{mirflickr,coco,nuswide,iapr})."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cmhash.data import SOURCES, prepare_raw
from cmhash.data.archive import _rar_tool, extract_archive
from cmhash.data.canonical import read_prepared
from cmhash.data.coco import parse_coco
from cmhash.data.embedded import generate_embedded
from cmhash.data.iapr import parse_iapr
from cmhash.data.mirflickr import parse_mirflickr
from cmhash.data.nuswide import MISSING_REPORT, parse_nuswide
from cmhash.data.sources_catalog import CATALOG, RawDownload, RemoteFile, fetch_raw
from cmhash.errors import ConfigError, DataError
from tests.archives import (
    IAPR_EMPTY_DESCRIPTION,
    IAPR_IDS,
    IAPR_NO_ANNOTATION,
    IAPR_NO_REGIONS,
    N_NUS,
    NUS_CONCEPTS,
    NUS_MISSING,
    NUS_NO_TAG,
    NUS_NO_TC21_LABEL,
    NUS_ONLY_LARGE,
    NUS_TOP,
    coco_payloads,
    iapr_payloads,
    mirflickr_payloads,
    nus_payloads,
    nus_rows,
    rar_volumes,
)
from tests.loopback_http import LoopbackServer

FAST = dict(backoff=0.0, timeout=5.0, progress=False)


# -- helpers ---------------------------------------------------------------------------------
def served(spec: RawDownload, srv: LoopbackServer, payloads: dict[str, bytes]) -> RawDownload:
    """The catalog entry with its URLs pointed at the loopback server (same file names) and
    MD5s of the miniatures, so the published names and the verification are exercised."""
    files = []
    for remote in spec.files:
        data = payloads[remote.name]
        srv.files["/" + remote.name] = data
        files.append(dataclasses.replace(remote, url=srv.url("/" + remote.name), md5=hashlib.md5(data).hexdigest()))
    return dataclasses.replace(spec, files=tuple(files))


def check_prepared(out: Path, n_rows: int, n_query: int, n_train: int, n_validation: int) -> None:
    corpus, splits = read_prepared(out)
    assert corpus.labels.shape[0] == n_rows
    assert len(splits.query) == n_query and len(splits.train) == n_train
    assert len(splits.database) == n_rows - n_query and len(splits.validation) == n_validation
    assert not set(splits.query) & set(splits.database)
    assert set(splits.train) <= set(splits.database) and set(splits.validation) <= set(splits.train)


def test_catalog_names_the_published_files() -> None:
    names = {src: [f.name for f in spec.files] for src, spec in CATALOG.items()}
    assert names["mirflickr25k"] == ["mirflickr25k.zip", "mirflickr25k_annotations_v080.zip"]
    assert names["mscoco2014"] == ["train2014.zip", "val2014.zip", "annotations_trainval2014.zip"]
    assert names["nuswide_tc21"] == ["ConceptsList.zip", "ImageList.zip", "Groundtruth.zip", "NUS_WID_Tags.zip",
                                     "NUS-WIDE-urls.rar"]
    assert names["iapr_tc12"] == ["iaprtc12.tgz", "saiaprtc12ok.part1.rar", "saiaprtc12ok.part2.rar",
                                  "saiaprtc12ok.part3.rar"]
    assert CATALOG["mirflickr25k"].files[0].md5 == "a23d0a8564ee84cda5622a6c2f947785"
    assert CATALOG["mscoco2014"].files[2].md5 == "0a379cfc70b0e71301e0f377548639bd"
    assert all(src in SOURCES and SOURCES[src].kind == "raw" for src in CATALOG)


# -- MIRFlickr-25K ------------------------------------------------------------------------------
def test_mirflickr_download_parse_split(tmp_path: Path) -> None:
    gen = generate_embedded(tmp_path / "gen", n_images=40, seed=3, image_size=32)
    payloads = mirflickr_payloads(gen)
    with LoopbackServer({}) as srv:
        spec = served(CATALOG["mirflickr25k"], srv, payloads)
        raw = fetch_raw(spec, tmp_path / "raw", archive_dir=tmp_path / "archives", **FAST)
    expected = parse_mirflickr(gen)
    corpus, _ = prepare_raw("mirflickr25k", raw, tmp_path / "prepared", n_query=5, n_train=20, n_validation=4, seed=1)
    np.testing.assert_array_equal(corpus.labels, expected.labels)
    assert corpus.texts == expected.texts and corpus.ids == expected.ids
    check_prepared(tmp_path / "prepared", len(expected.ids), 5, 20, 4)
    lock = json.loads((tmp_path / "archives" / "checksums.lock.json").read_text())["files"]
    assert len(lock) == 2


# -- MS-COCO 2014 -------------------------------------------------------------------------------
def test_coco_download_parse_split(tmp_path: Path) -> None:
    with LoopbackServer({}) as srv:
        spec = served(CATALOG["mscoco2014"], srv, coco_payloads())
        raw = fetch_raw(spec, tmp_path / "raw", archive_dir=tmp_path / "archives", **FAST)
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == ["annotations", "train2014",
                                                                                  "val2014"]
    corpus = parse_coco(raw)
    # 10 images, 30 (train) and 136 (val) have no instance: 8 rows, in ascending image id
    assert corpus.ids == ["9", "25", "34", "36", "42", "74", "133", "139"]
    assert corpus.classes == ["person", "car", "dog", "bottle", "toothbrush"]  # ascending COCO id 1, 3, 18, 44, 90
    assert corpus.meta["category_ids"] == [1, 3, 18, 44, 90]
    assert corpus.meta["dropped_no_label"] == 2 and corpus.meta["n_raw_rows"] == 10
    expected = {9: [2], 25: [0], 34: [0, 1, 3], 36: [4], 42: [0, 4], 74: [2], 133: [1, 3], 139: [0]}
    for row, image_id in enumerate(corpus.ids):
        assert np.flatnonzero(corpus.labels[row]).tolist() == expected[int(image_id)]
    assert corpus.texts[0] == ["image", "9", "caption", "1", "a", "dog", "like", "thing",
                               "image", "9", "caption", "2", "a", "dog", "like", "thing"]
    assert corpus.image_paths[5].endswith("val2014/COCO_val2014_000000000074.jpg")
    assert Path(corpus.image_paths[5]).is_file()

    prepare_raw("mscoco2014", raw, tmp_path / "prepared", n_query=2, n_train=4, n_validation=1, seed=0)
    check_prepared(tmp_path / "prepared", 8, 2, 4, 1)

    (raw / "val2014" / "COCO_val2014_000000000139.jpg").unlink()
    with pytest.raises(DataError, match=r"COCO_val2014_000000000139\.jpg: image not found"):
        parse_coco(raw)


# -- NUS-WIDE ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nus_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("nus")
    with LoopbackServer({}) as srv:
        payloads = nus_payloads(srv)
        spec = CATALOG["nuswide_tc21"]
        spec = dataclasses.replace(spec, files=tuple(RemoteFile(f.url.replace(".rar", ".zip")) for f in spec.files))
        spec = served(spec, srv, payloads)
        raw = fetch_raw(spec, tmp / "raw", archive_dir=tmp / "archives", options={"image_workers": 4}, **FAST)
        assert srv.count(f"/flickr/large/{5000 + NUS_ONLY_LARGE}.jpg") == 1
    return raw


def test_nuswide_fetch_reports_missing_images(nus_raw: Path) -> None:
    report = json.loads((nus_raw / MISSING_REPORT).read_text())
    _, _, rel = nus_rows()
    # only the images of rows with a TC-21 label are fetched (48 rows, 3 without)
    assert report["n_wanted"] == N_NUS - len(NUS_NO_TC21_LABEL) and report["n_missing"] == 2
    assert not (nus_raw / "Flickr" / rel[29]).exists()
    assert "404" in report["missing"][rel[2]] and "placeholder" in report["missing"][rel[11]]
    assert (nus_raw / "Flickr" / rel[NUS_ONLY_LARGE]).is_file()
    assert not (nus_raw / "Flickr" / rel[11]).exists()


@pytest.mark.parametrize("source, cleaning, n_before_images", [("nuswide_tc21", "labels", 45),
                                                               ("nuswide_tc21_clean", "labels_and_tags", 42)])
def test_nuswide_tc21_cleanings(nus_raw: Path, tmp_path: Path, source: str, cleaning: str,
                                n_before_images: int) -> None:
    labels, tags, rel = nus_rows()
    corpus = SOURCES[source].load(nus_raw)
    assert corpus.meta["cleaning"] == cleaning
    assert corpus.classes == [NUS_CONCEPTS[j] for j in NUS_TOP]  # Concepts81 order, the 4 rarest left out
    assert corpus.vocabulary == [f"tag{k:03d}" for k in range(1000)]
    drop = NUS_NO_TC21_LABEL | (NUS_NO_TAG if cleaning == "labels_and_tags" else set())
    kept = [r for r in range(N_NUS) if r not in drop]
    assert len(kept) == n_before_images
    assert corpus.meta["dropped_no_label"] == 3
    assert corpus.meta["dropped_no_tag"] == (3 if cleaning == "labels_and_tags" else 0)
    with_images = [r for r in kept if r not in NUS_MISSING]
    assert corpus.meta["dropped_missing_image"] == 2
    assert corpus.ids == [str(5000 + r) for r in with_images]
    np.testing.assert_array_equal(corpus.labels, labels[with_images][:, NUS_TOP])
    row8 = with_images.index(8) if 8 in with_images else None
    if cleaning == "labels":
        assert row8 is not None and corpus.texts[row8] == []  # kept with no tag
    r = with_images.index(10)
    assert corpus.texts[r] == ["tag030", "tag031", "tag989"]
    assert corpus.image_paths[r] == str(nus_raw / "Flickr" / rel[10])

    prepare_raw(source, nus_raw, tmp_path / "prepared", n_query=5, n_train=20, n_validation=3, seed=2)
    check_prepared(tmp_path / "prepared", len(with_images), 5, 20, 3)


def test_nuswide_missing_images_error_and_bad_matrix(nus_raw: Path, tmp_path: Path) -> None:
    _, _, rel = nus_rows()
    with pytest.raises(DataError, match=rf"{rel[2].split('/')[1]}: image not found \(2 of the 45"):
        parse_nuswide(nus_raw, missing_images="error")
    with pytest.raises(ConfigError, match="cleaning"):
        parse_nuswide(nus_raw, cleaning="tags")
    broken = tmp_path / "broken"
    shutil.copytree(nus_raw, broken, ignore=shutil.ignore_patterns("Flickr"))
    tag_file = broken / "NUS_WID_Tags" / "AllTags1k.txt"
    lines = tag_file.read_bytes().split(b"\r\n")
    lines[6] = lines[6].replace(b"0 0 ", b"0 2 ", 1)
    tag_file.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match=r"AllTags1k\.txt: line 7: expected 1000 values of 0 or 1"):
        parse_nuswide(broken)
    lines[6] = b" ".join(lines[6].split()[:-1])
    tag_file.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DataError, match=r"AllTags1k\.txt: line 7"):
        parse_nuswide(broken)


def test_rar_needs_a_tool_or_says_so(tmp_path: Path) -> None:
    if shutil.which("unrar") or shutil.which("7z") or shutil.which("7za") or shutil.which("bsdtar"):
        pytest.skip("a RAR tool is installed here")
    fake = tmp_path / "NUS-WIDE-urls.rar"
    fake.write_bytes(b"Rar!\x1a\x07\x00")
    with pytest.raises(DataError, match=r"NUS-WIDE-urls\.rar: extracting RAR archives needs 'unrar'"):
        extract_archive(fake, tmp_path / "raw")


def test_rar_volume_set_is_not_given_to_bsdtar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bsdtar reads one volume of a .partN.rar set and stops: the SAIAPR labels would come out incomplete
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/bsdtar" if tool == "bsdtar" else None)
    assert _rar_tool(tmp_path / "NUS-WIDE-urls.rar") == ("bsdtar", "/usr/bin/bsdtar")
    part1 = tmp_path / "saiaprtc12ok.part1.rar"
    part1.write_bytes(rar_volumes([{"a/one.txt": b"1"}, {"a/two.txt": b"2"}])[0])
    with pytest.raises(DataError, match=r"saiaprtc12ok\.part1\.rar: extracting RAR archives needs 'unrar' or '7z' "
                                        r"\(bsdtar reads only one volume"):
        extract_archive(part1, tmp_path / "raw")


# -- IAPR TC-12 + SAIAPR -----------------------------------------------------------------------
def test_iapr_download_parse_split(tmp_path: Path) -> None:
    payloads = iapr_payloads()
    spec = CATALOG["iapr_tc12"]
    # the SAIAPR labels are published as a three-part RAR; no RAR writer exists here, so the
    # miniature ships the same tree as one zip
    spec = dataclasses.replace(spec, files=(spec.files[0], RemoteFile(spec.files[1].url.replace(".part1.rar", ".zip"))))
    with LoopbackServer({}) as srv:
        raw = fetch_raw(served(spec, srv, payloads), tmp_path / "raw", archive_dir=tmp_path / "archives", **FAST)
    every = parse_iapr(raw, min_df=2)  # an empty description is kept (an all-zero text row), as DCMH does
    assert len(every.ids) == 12 and every.texts[every.ids.index(str(IAPR_EMPTY_DESCRIPTION))] == []
    assert every.meta["empty_description"] == 1 and every.meta["dropped_empty_description"] == 0
    corpus = parse_iapr(raw, min_df=2, drop_empty_description=True)
    kept = [i for i in IAPR_IDS if i not in (IAPR_NO_ANNOTATION, IAPR_NO_REGIONS, IAPR_EMPTY_DESCRIPTION)]
    assert corpus.ids == [str(i) for i in kept] and len(kept) == 11
    # classes: every label id of the region files, ascending (100 only on the image with no annotation)
    assert corpus.meta["label_ids"] == [3, 7, 12, 44, 100, 275]
    assert corpus.classes == ["word3", "word7", "word12", "word44", "word100", "word275"]
    assert corpus.labels[:, 4].sum() == 0
    assert np.flatnonzero(corpus.labels[0]).tolist() == [0, 1]  # image 25: labels 7, 3, 7
    assert np.flatnonzero(corpus.labels[kept.index(2808)]).tolist() == [3, 5]
    assert corpus.texts[0] == ["a", "dark", "skinned", "boy", "wearing", "a", "knitted", "woolly", "hat"]
    assert corpus.texts[1][:5] == ["a", "view", "of", "taf", "del"]  # latin-1 'í' is not a word character
    assert corpus.meta["dropped_no_annotation"] == 1 and corpus.meta["dropped_no_region_label"] == 1
    assert corpus.meta["dropped_empty_description"] == 1
    assert corpus.vocabulary[:2] == ["a", "background"] and "boy" not in corpus.vocabulary
    assert corpus.image_paths[0].endswith("iaprtc12/images/00/25.jpg")

    prepare_raw("iapr_tc12", raw, tmp_path / "prepared", n_query=2, n_train=6, n_validation=2, seed=5,
                options={"drop_empty_description": True})
    check_prepared(tmp_path / "prepared", 11, 2, 6, 2)

    bad = raw / "saiaprtc12ok" / "benchmark" / "saiapr_tc-12" / "01" / "labels.txt"
    bad.write_text(bad.read_text() + "1001 x 7\n")
    with pytest.raises(DataError, match=r"01/labels\.txt: line \d+: expected 'image_id region_id label_id'"):
        parse_iapr(raw)
