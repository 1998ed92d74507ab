"""Miniature archives of the four raw benchmark datasets in their published layouts (imported
explicitly by tests/test_datasets.py and tests/test_datasets_workflow.py, not a fixture file).

Also a minimal RAR 4.x writer (stored members, optionally as a multi-volume set) and reader:
NUS-WIDE's URL list and the SAIAPR region labels are published as RAR, no RAR writer exists
here, and the reader backs a stand-in ``unrar`` (:func:`install_fake_unrar`) for machines with
no RAR tool. The archives it writes follow the RAR 4.x technote (marker block, main header,
file headers with method 0x30 "store", end-of-archive block), so real tools read them too
(checked with bsdtar 3.6, which reads one volume of a set alone, and p7zip's 7z, which follows
the volumes as unrar does).
"""
from __future__ import annotations

import io
import json
import re
import shutil
import struct
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.loopback_http import LoopbackServer

REPO = Path(__file__).resolve().parents[1]


# -- generic builders ---------------------------------------------------------------------------
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


# -- RAR 4.x (stored members) -------------------------------------------------------------------
RAR4_MARKER = b"Rar!\x1a\x07\x00"
_MAIN, _FILE, _END = 0x73, 0x74, 0x7B
_LONG_BLOCK = 0x8000
_MHD_VOLUME, _MHD_NEWNUMBERING, _MHD_FIRSTVOLUME = 0x0001, 0x0010, 0x0100
_EARC_NEXT_VOLUME = 0x0001
_STORE = 0x30
_HOST_UNIX = 3
_DOS_TIME = ((2008 - 1980) << 25) | (1 << 21) | (1 << 16)  # 2008-01-01 00:00:00


def _rar_block(head_type: int, flags: int, body: bytes) -> bytes:
    head = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def _rar_archive(entries: dict[str, bytes], main_flags: int, end_flags: int) -> bytes:
    out = [RAR4_MARKER, _rar_block(_MAIN, main_flags, struct.pack("<HI", 0, 0))]
    for name, data in sorted(entries.items()):
        encoded = name.encode("ascii")
        fields = struct.pack("<IIBIIBBHI", len(data), len(data), _HOST_UNIX, zlib.crc32(data), _DOS_TIME, 20,
                             _STORE, len(encoded), 0o100644)
        out += [_rar_block(_FILE, _LONG_BLOCK, fields + encoded), data]
    out.append(_rar_block(_END, end_flags, b""))
    return b"".join(out)


def rar_bytes(entries: dict[str, bytes]) -> bytes:
    """One RAR 4.x archive holding ``entries`` (relative path -> bytes), members stored."""
    return _rar_archive(entries, 0, 0)


def rar_volumes(parts: list[dict[str, bytes]]) -> list[bytes]:
    """A multi-volume RAR 4.x set (``name.part1.rar``, ``name.part2.rar``, ... naming), volume k
    holding ``parts[k]``; no member spans two volumes."""
    last = len(parts) - 1
    return [_rar_archive(entries, _MHD_VOLUME | _MHD_NEWNUMBERING | (_MHD_FIRSTVOLUME if k == 0 else 0),
                         _EARC_NEXT_VOLUME if k < last else 0) for k, entries in enumerate(parts)]


def read_rar(path: Path) -> tuple[list[tuple[str, bytes]], bool]:
    """The stored members of one RAR 4.x volume and whether another volume follows; ValueError
    for anything else (a compressed or split member, a bad CRC, a RAR5 archive)."""
    data = path.read_bytes()
    if not data.startswith(RAR4_MARKER):
        raise ValueError(f"{path}: not a RAR 4.x archive")
    members: list[tuple[str, bytes]] = []
    pos, next_volume = len(RAR4_MARKER), False
    while pos + 7 <= len(data):
        crc, head_type, flags, size = struct.unpack_from("<HBHH", data, pos)
        if size < 7 or pos + size > len(data) or zlib.crc32(data[pos + 2:pos + size]) & 0xFFFF != crc:
            raise ValueError(f"{path}: corrupt header at byte {pos}")
        add = 0
        if head_type == _FILE:
            pack, unp, _host, file_crc, _time, _ver, method, name_size, _attr = struct.unpack_from(
                "<IIBIIBBHI", data, pos + 7)
            name = data[pos + 32:pos + 32 + name_size].decode("ascii").replace("\\", "/")
            add = pack
            if flags & 0x03:
                raise ValueError(f"{path}: {name}: members split between volumes are not supported")
            if flags & 0xE0 != 0xE0:  # not a directory entry
                body = data[pos + size:pos + size + pack]
                if method != _STORE or pack != unp or len(body) != pack or zlib.crc32(body) != file_crc:
                    raise ValueError(f"{path}: {name}: not a sound stored member")
                members.append((name, body))
        elif flags & _LONG_BLOCK:
            add = struct.unpack_from("<I", data, pos + 7)[0]
        if head_type == _END:
            next_volume = bool(flags & _EARC_NEXT_VOLUME)
            break
        pos += size + add
    return members, next_volume


def _rar_set(first: Path) -> list[tuple[str, bytes]]:
    """Every member of ``first`` and of the volumes after it (``.partN.rar`` naming)."""
    members, path = [], first
    while True:
        got, more = read_rar(path)
        members += got
        if not more:
            return members
        match = re.fullmatch(r"(.*\.part)(\d+)\.rar", path.name)
        if not match:
            raise ValueError(f"{path}: announces a next volume but is not named *.partN.rar")
        path = path.with_name(f"{match.group(1)}{int(match.group(2)) + 1:0{len(match.group(2))}d}.rar")
        if not path.is_file():
            raise ValueError(f"{path}: next volume not found")


def fake_unrar(argv: list[str]) -> int:
    """``unrar lb ARCHIVE`` and ``unrar x -o- -idq ARCHIVE DEST/`` for stored RAR 4.x archives
    (volumes followed as unrar does), for machines with no RAR tool."""
    try:
        if len(argv) == 2 and argv[0] == "lb":
            print("\n".join(name for name, _ in _rar_set(Path(argv[1]))))
            return 0
        if len(argv) == 5 and argv[:3] == ["x", "-o-", "-idq"]:
            dest = Path(argv[4])
            for name, body in _rar_set(Path(argv[3])):
                target = dest / name
                if not target.exists():  # -o-: never overwrite
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(body)
            return 0
    except (OSError, ValueError) as exc:
        print(f"fake unrar: {exc}", file=sys.stderr)
        return 3
    print(f"fake unrar: unsupported arguments {argv}", file=sys.stderr)
    return 7


def rar_tool_on_path() -> str | None:
    """The RAR tool cmhash.data.archive would use (unrar, 7z, 7za, bsdtar), if any."""
    return next((tool for tool in ("unrar", "7z", "7za", "bsdtar") if shutil.which(tool)), None)


def install_fake_unrar(bin_dir: Path) -> Path:
    """Write the stand-in ``unrar`` (:func:`fake_unrar`) into ``bin_dir``; put that folder first
    on PATH to use it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "unrar"
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                   f"from tests.archives import fake_unrar\nsys.exit(fake_unrar(sys.argv[1:]))\n")
    exe.chmod(0o755)
    return exe


# -- MIRFlickr-25K --------------------------------------------------------------------------------
def mirflickr_payloads(gen: Path) -> dict[str, bytes]:
    """The two published archives of a MIRFlickr-layout tree (the embedded generator's output)."""
    return {"mirflickr25k.zip": zip_bytes({f"mirflickr/{k}": v for k, v in tree(gen / "mirflickr").items()}),
            "mirflickr25k_annotations_v080.zip": zip_bytes(
                {f"mirflickr25k_annotations_v080/{k}": v
                 for k, v in tree(gen / "mirflickr25k_annotations_v080").items()})}


# -- MS-COCO 2014 -------------------------------------------------------------------------------
COCO_CATS = [{"id": 90, "name": "toothbrush", "supercategory": "indoor"},
             {"id": 1, "name": "person", "supercategory": "person"},
             {"id": 18, "name": "dog", "supercategory": "animal"},
             {"id": 3, "name": "car", "supercategory": "vehicle"},
             {"id": 44, "name": "bottle", "supercategory": "kitchen"}]
#: The 80 categories of instances_{train,val}2014.json (ids 1..90 with 10 gaps), in reverse id
#: order so the parser's ordering by id is exercised.
COCO_80 = [{"id": i, "name": n, "supercategory": "miniature"} for i, n in reversed((
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"), (14, "parking meter"),
    (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"),
    (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"),
    (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"),
    (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"),
    (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"),
    (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"),
    (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"), (78, "microwave"),
    (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"),
    (87, "scissors"), (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
))]
COCO_IMAGES = {"train2014": [9, 25, 30, 34, 36, 42], "val2014": [74, 133, 136, 139]}
COCO_INSTANCES = {9: [18, 18], 25: [1], 34: [3, 1, 44], 36: [90], 42: [90, 1], 74: [18], 133: [44, 44, 3], 139: [1]}


def coco_payloads(categories: list[dict] = COCO_CATS) -> dict[str, bytes]:
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
        person = [c for c in categories if c["id"] == 1]
        files["annotations_trainval2014.zip"][f"annotations/instances_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": instances, "categories": categories,
             "licenses": []}).encode()
        files["annotations_trainval2014.zip"][f"annotations/captions_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": captions, "licenses": []}).encode()
        files["annotations_trainval2014.zip"][f"annotations/person_keypoints_{split}.json"] = json.dumps(
            {"info": info, "images": images, "annotations": [], "categories": person}).encode()
    return {name: zip_bytes(entries) for name, entries in files.items()}


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


def nus_payloads(srv: LoopbackServer, rar: bool = False) -> dict[str, bytes]:
    """The NUS-WIDE archives, the URL list pointing at ``srv`` (which then serves the images).
    ``rar``: NUS-WIDE-urls.rar as published; else the same tree as NUS-WIDE-urls.zip."""
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
    urls = {"NUS-WIDE-urls/NUS-WIDE-urls.txt": ("\r\n".join(url_lines) + "\r\n").encode()}
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
        # NUS-WIDE-urls.rar holds NUS-WIDE-urls/NUS-WIDE-urls.txt
        **({"NUS-WIDE-urls.rar": rar_bytes(urls)} if rar else {"NUS-WIDE-urls.zip": zip_bytes(urls)}),
    }


# -- IAPR TC-12 + SAIAPR -----------------------------------------------------------------------
IAPR_IDS = [25, 26, 27, 30, 1000, 1001, 1005, 1010, 2000, 2001, 2002, 2808, 2809, 2810]
IAPR_NO_ANNOTATION = 1010
IAPR_NO_REGIONS = 30
IAPR_EMPTY_DESCRIPTION = 2809
IAPR_REGIONS = {25: [7, 3, 7], 26: [12], 27: [3, 44], 1000: [275], 1001: [44, 12, 7], 1005: [3], 1010: [100],
                2000: [7], 2001: [12, 44], 2002: [3], 2808: [44, 275], 2809: [7], 2810: [12]}


def iapr_description(image_id: int) -> str:
    """The English <DESCRIPTION> of a miniature image (empty for IAPR_EMPTY_DESCRIPTION)."""
    if image_id == IAPR_EMPTY_DESCRIPTION:
        return ""
    if image_id == 25:
        return "a dark-skinned boy wearing a knitted woolly hat;"
    return f"a view of Taf\u00ed del Valle number {IAPR_IDS.index(image_id)}; a lake in the\n background;"


def iapr_payloads(rar: bool = False) -> dict[str, bytes]:
    """iaprtc12.tgz and the SAIAPR labels: as published, a three-part RAR (``rar``; part 1
    holds what the parser reads, parts 2 and 3 the rest), else the same tree as one zip."""
    iapr: dict[str, bytes] = {"iaprtc12/README.txt": b"IAPR TC-12 Benchmark\n"}
    labels_txt: dict[str, list[str]] = {}
    for k, image_id in enumerate(IAPR_IDS):
        folder = f"{image_id // 1000:02d}"
        iapr[f"iaprtc12/images/{folder}/{image_id}.jpg"] = jpeg(image_id)
        iapr[f"iaprtc12/thumbnails/{folder}/{image_id}.jpg"] = jpeg(image_id, 4)
        if image_id != IAPR_NO_ANNOTATION:
            eng = (f"<DOC>\n<DOCNO>annotations/{folder}/{image_id}.eng</DOCNO>\n<TITLE>Title {k}</TITLE>\n"
                   f"<DESCRIPTION>{iapr_description(image_id)}</DESCRIPTION>\n<NOTES></NOTES>\n"
                   f"<LOCATION>Tucum\u00e1n, Argentina</LOCATION>\n"
                   f"<DATE>January 2002</DATE>\n<IMAGE>images/{folder}/{image_id}.jpg</IMAGE>\n"
                   f"<THUMBNAIL>thumbnails/{folder}/{image_id}.jpg</THUMBNAIL>\n</DOC>\n")
            iapr[f"iaprtc12/annotations_complete_eng/{folder}/{image_id}.eng"] = eng.encode("latin-1")
        for region, label in enumerate(IAPR_REGIONS.get(image_id, []), start=1):
            labels_txt.setdefault(folder, []).append(f"{image_id} {region} {label}")
    saiapr = {f"saiaprtc12ok/benchmark/saiapr_tc-12/{folder}/labels.txt": ("\n".join(lines) + "\n").encode()
              for folder, lines in labels_txt.items()}
    saiapr["saiaprtc12ok/benchmark/wlist.txt"] = "".join(f"{i}\tword{i}\n" for i in range(1, 277)).encode()
    image = {"saiaprtc12ok/benchmark/saiapr_tc-12/00/images/25.jpg": jpeg(25)}
    matlab = {"saiaprtc12ok/matlab/matlab/training.mat": b"MATLAB 5.0 placeholder"}
    if rar:
        parts = rar_volumes([saiapr, image, matlab])
        return {"iaprtc12.tgz": tgz_bytes(iapr),
                **{f"saiaprtc12ok.part{k}.rar": data for k, data in enumerate(parts, start=1)}}
    return {"iaprtc12.tgz": tgz_bytes(iapr), "saiaprtc12ok.zip": zip_bytes({**saiapr, **image, **matlab})}

