"""The four raw benchmark datasets end to end on miniatures in their published layouts: archives
served by a loopback HTTP server, fetched through the catalog (cmhash.data.sources_catalog),
extracted, parsed, filtered and split (cmhash.data.{mirflickr,coco,nuswide,iapr})."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cmhash.data import SOURCES, prepare_raw
from cmhash.data.archive import extract_archive
from cmhash.data.canonical import read_prepared
from cmhash.data.coco import parse_coco
from cmhash.data.embedded import generate_embedded
from cmhash.data.iapr import parse_iapr
from cmhash.data.mirflickr import parse_mirflickr
from cmhash.data.nuswide import MISSING_REPORT, parse_nuswide
from cmhash.data.sources_catalog import CATALOG, RawDownload, RemoteFile, fetch_raw
from cmhash.errors import ConfigError, DataError
from tests.loopback_http import LoopbackServer

FAST = dict(backoff=0.0, timeout=5.0, progress=False)


# -- helpers ---------------------------------------------------------------------------------
def jpeg(seed: int, size: int = 8) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(entries.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def tgz_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


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
    payloads = {"mirflickr25k.zip": zip_bytes({f"mirflickr/{k}": v for k, v in tree(gen / "mirflickr").items()}),
                "mirflickr25k_annotations_v080.zip": zip_bytes(
                    {f"mirflickr25k_annotations_v080/{k}": v
                     for k, v in tree(gen / "mirflickr25k_annotations_v080").items()})}
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
COCO_CATS = [{"id": 90, "name": "toothbrush", "supercategory": "indoor"},
             {"id": 1, "name": "person", "supercategory": "person"},
             {"id": 18, "name": "dog", "supercategory": "animal"},
             {"id": 3, "name": "car", "supercategory": "vehicle"},
             {"id": 44, "name": "bottle", "supercategory": "kitchen"}]
COCO_IMAGES = {"train2014": [9, 25, 30, 34, 36, 42], "val2014": [74, 133, 136, 139]}
COCO_INSTANCES = {9: [18, 18], 25: [1], 34: [3, 1, 44], 36: [90], 42: [90, 1], 74: [18], 133: [44, 44, 3], 139: [1]}


def coco_payloads() -> dict[str, bytes]:
    caption_id = 0
    ann_id = 1000
    files: dict[str, dict[str, bytes]] = {"train2014.zip": {}, "val2014.zip": {}, "annotations_trainval2014.zip": {}}
    for split, ids in COCO_IMAGES.items():
        images, instances, captions = [], [], []
        for image_id in ids:
            name = f"COCO_{split}_{image_id:012d}.jpg"
            files[f"{split}.zip"][f"{split}/{name}"] = jpeg(image_id)
            images.append({"id": image_id, "file_name": name, "width": 8, "height": 8, "license": 1})
            for cat in COCO_INSTANCES.get(image_id, []):
                ann_id += 1
                instances.append({"id": ann_id, "image_id": image_id, "category_id": cat, "iscrowd": int(cat == 44),
                                  "area": 4.0, "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 2, 0, 2, 2]]})
            # captions stored out of id order: the parser orders them by id
            for k in (2, 1):
                caption_id += 1
                captions.append({"id": 10 * image_id + k, "image_id": image_id,
                                 "caption": f"Image {image_id}, caption {k}: A dog-like thing!"})
        info = {"description": "miniature", "year": 2014}
        files["annotations_trainval2014.zip"][f"annotations/instances_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": instances, "categories": COCO_CATS, "licenses": []}).encode()
        files["annotations_trainval2014.zip"][f"annotations/captions_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": captions, "licenses": []}).encode()
        files["annotations_trainval2014.zip"][f"annotations/person_keypoints_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": [], "categories": COCO_CATS[1:2]}).encode()
    return {name: zip_bytes(entries) for name, entries in files.items()}


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
NUS_CONCEPTS = ["airport", "animal", "beach", "bear", "birds", "boats", "book", "bridge", "buildings", "cars",
                "castle", "cat", "cityscape", "clouds", "computer", "coral", "cow", "dancing", "dog", "earthquake",
                "elk", "fire", "fish", "flags", "flowers"]
NUS_LOW = (1, 7, 13, 22)  # concepts with one image each: not in the top 21
NUS_TOP = [j for j in range(25) if j not in NUS_LOW]
N_NUS = 48
NUS_NO_TC21_LABEL = {5, 17, 29}  # 5: only a low concept, 17: only a low concept, 29: no label at all
NUS_NO_TAG = {8, 20, 33, 29}
NUS_MISSING = {2: "404", 11: "placeholder"}  # rows whose image cannot be fetched
NUS_ONLY_LARGE = 44  # url_Middle is null: the large one is used


def nus_rows() -> tuple[np.ndarray, np.ndarray, list[str]]:
    labels = np.zeros((N_NUS, 25), dtype=np.uint8)
    tags = np.zeros((N_NUS, 1000), dtype=np.uint8)
    for r in range(N_NUS):
        if r not in NUS_NO_TC21_LABEL:
            labels[r, NUS_TOP[r % 21]] = 1
            labels[r, NUS_TOP[(r + 10) % 21]] = 1
        if r not in NUS_NO_TAG:
            tags[r, [(3 * r) % 1000, (3 * r + 1) % 1000, 999 - r]] = 1
    labels[5, 1] = labels[17, 7] = labels[40, 13] = labels[41, 22] = 1
    counts = labels.sum(axis=0)
    assert counts[list(NUS_LOW)].max() < counts[NUS_TOP].min()  # the top 21 are NUS_TOP
    rel = [f"{NUS_CONCEPTS[NUS_TOP[r % 21]]}/{r:04d}_{5000 + r}.jpg" for r in range(N_NUS)]
    return labels, tags, rel


def nus_payloads(srv: LoopbackServer) -> dict[str, bytes]:
    labels, tags, rel = nus_rows()
    crlf = "\r\n"  # the lists were written on Windows
    concepts = crlf.join(NUS_CONCEPTS) + crlf
    image_list = crlf.join(p.replace("/", "\\") for p in rel) + crlf
    label_files = {f"Groundtruth/AllLabels/Labels_{c}.txt": ("".join(f"{v}{crlf}" for v in labels[:, j])).encode()
                   for j, c in enumerate(NUS_CONCEPTS)}
    label_files.update({f"Groundtruth/TrainTestLabels/Labels_{c}_Train.txt": b"0\r\n" for c in NUS_CONCEPTS[:2]})
    vocab = [f"tag{k:03d}" for k in range(1000)]
    all_tags = "".join(" ".join(str(v) for v in row) + " " + crlf for row in tags)  # trailing blank, as published
    all_tags_txt = "".join(f"{5000 + r}      " + " ".join(vocab[k] for k in np.flatnonzero(tags[r])) + crlf
                           for r in range(N_NUS))
    url_lines = ["Photo_file                 Photo_id        url_Large       url_Middle      url_Small   url_Original"]
    for r, p in enumerate(rel):
        photo = 5000 + r
        large, middle = srv.url(f"/flickr/large/{photo}.jpg"), srv.url(f"/flickr/middle/{photo}.jpg")
        if r == NUS_ONLY_LARGE:
            middle = "null"
        url_lines.append(f"C:\\ImageData\\Flickr\\{p.replace('/', chr(92))}  {photo}  {large}  {middle}  "
                         f"{srv.url(f'/flickr/small/{photo}.jpg')}  null")
        if r not in NUS_MISSING:
            srv.files[f"/flickr/{'large' if r == NUS_ONLY_LARGE else 'middle'}/{photo}.jpg"] = jpeg(r)
        elif NUS_MISSING[r] == "placeholder":
            srv.redirects[f"/flickr/middle/{photo}.jpg"] = "/images/photo_unavailable.png"
    srv.files["/images/photo_unavailable.png"] = jpeg(999)
    return {
        "ConceptsList.zip": zip_bytes({"ConceptsList/Concepts81.txt": concepts.encode()}),
        "ImageList.zip": zip_bytes({"ImageList/Imagelist.txt": image_list.encode(),
                                    "ImageList/TrainImagelist.txt": image_list.encode(),
                                    "ImageList/TestImagelist.txt": b""}),
        "Groundtruth.zip": zip_bytes(label_files),
        "NUS_WID_Tags.zip": zip_bytes({"NUS_WID_Tags/TagList1k.txt": (crlf.join(vocab) + crlf).encode(),
                                       "NUS_WID_Tags/AllTags1k.txt": all_tags.encode(),
                                       "NUS_WID_Tags/All_Tags.txt": all_tags_txt.encode(),
                                       "NUS_WID_Tags/Final_Tag_List.txt": ("\n".join(vocab) + "\n").encode()}),
        # NUS-WIDE-urls.rar holds NUS-WIDE-urls/NUS-WIDE-urls.txt; no RAR writer exists here, so the
        # miniature ships the same tree as a zip (the RAR path itself is tested below)
        "NUS-WIDE-urls.zip": zip_bytes({"NUS-WIDE-urls/NUS-WIDE-urls.txt": ("\r\n".join(url_lines) + "\r\n").encode()}),
    }


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


# -- IAPR TC-12 + SAIAPR -----------------------------------------------------------------------
IAPR_IDS = [25, 26, 27, 30, 1000, 1001, 1005, 1010, 2000, 2001, 2002, 2808, 2809, 2810]
IAPR_NO_ANNOTATION = 1010
IAPR_NO_REGIONS = 30
IAPR_EMPTY_DESCRIPTION = 2809
IAPR_REGIONS = {25: [7, 3, 7], 26: [12], 27: [3, 44], 1000: [275], 1001: [44, 12, 7], 1005: [3], 1010: [100],
                2000: [7], 2001: [12, 44], 2002: [3], 2808: [44, 275], 2809: [7], 2810: [12]}


def iapr_payloads() -> dict[str, bytes]:
    iapr: dict[str, bytes] = {"iaprtc12/README.txt": b"IAPR TC-12 Benchmark\n"}
    labels_txt: dict[str, list[str]] = {}
    for k, image_id in enumerate(IAPR_IDS):
        folder = f"{image_id // 1000:02d}"
        iapr[f"iaprtc12/images/{folder}/{image_id}.jpg"] = jpeg(image_id)
        iapr[f"iaprtc12/thumbnails/{folder}/{image_id}.jpg"] = jpeg(image_id, 4)
        if image_id != IAPR_NO_ANNOTATION:
            desc = "" if image_id == IAPR_EMPTY_DESCRIPTION else (
                "a dark-skinned boy wearing a knitted woolly hat;" if image_id == 25 else
                f"a view of Taf\u00ed del Valle number {k}; a lake in the\n background;")
            eng = (f"<DOC>\n<DOCNO>annotations/{folder}/{image_id}.eng</DOCNO>\n<TITLE>Title {k}</TITLE>\n"
                   f"<DESCRIPTION>{desc}</DESCRIPTION>\n<NOTES></NOTES>\n<LOCATION>Tucum\u00e1n, Argentina</LOCATION>\n"
                   f"<DATE>January 2002</DATE>\n<IMAGE>images/{folder}/{image_id}.jpg</IMAGE>\n"
                   f"<THUMBNAIL>thumbnails/{folder}/{image_id}.jpg</THUMBNAIL>\n</DOC>\n")
            iapr[f"iaprtc12/annotations_complete_eng/{folder}/{image_id}.eng"] = eng.encode("latin-1")
        for region, label in enumerate(IAPR_REGIONS.get(image_id, []), start=1):
            labels_txt.setdefault(folder, []).append(f"{image_id} {region} {label}")
    saiapr = {f"saiaprtc12ok/benchmark/saiapr_tc-12/{folder}/labels.txt": ("\n".join(lines) + "\n").encode()
              for folder, lines in labels_txt.items()}
    saiapr["saiaprtc12ok/benchmark/wlist.txt"] = "".join(f"{i}\tword{i}\n" for i in range(1, 277)).encode()
    saiapr["saiaprtc12ok/benchmark/saiapr_tc-12/00/images/25.jpg"] = jpeg(25)
    saiapr["saiaprtc12ok/matlab/matlab/training.mat"] = b"MATLAB 5.0 placeholder"
    return {"iaprtc12.tgz": tgz_bytes(iapr), "saiaprtc12ok.zip": zip_bytes(saiapr)}


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
