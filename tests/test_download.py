"""Resumable verified downloads (cmhash.data.download) and safe extraction (cmhash.data.archive),
against a loopback HTTP server serving generated archives."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cmhash.data.archive import check_archive, extract_archive
from cmhash.data.download import download, fetch_many, read_lock
from cmhash.errors import DataError
from tests.loopback_http import LoopbackServer

FAST = dict(backoff=0.0, timeout=5.0, progress=False)


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tgz(entries: list[tuple[str, bytes | None, str | None, bytes]]) -> bytes:
    """entries: (name, data, link type 'sym'/'hard'/None, link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data, link, target in entries:
            info = tarfile.TarInfo(name)
            if link == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target.decode()
                tf.addfile(info)
            elif link == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, target.decode()
                tf.addfile(info)
            else:
                info.size = len(data or b"")
                tf.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


@pytest.fixture()
def payload() -> bytes:
    # incompressible content so the zip is large enough to be cut in the middle
    blob = np.random.default_rng(0).bytes(256_000)
    return make_zip({"top/a.txt": b"alpha\n", "top/sub/b.bin": blob})


def test_download_ok_records_lock_and_extracts(tmp_path: Path, payload: bytes) -> None:
    with LoopbackServer({"/data/a.zip": payload}) as srv:
        dest = tmp_path / "arch" / "a.zip"
        got = download(srv.url("/data/a.zip"), dest, md5=hashlib.md5(payload).hexdigest(), **FAST)
        assert got == dest and dest.read_bytes() == payload
        assert not (tmp_path / "arch" / "a.zip.part").exists()
        lock = read_lock(tmp_path / "arch" / "checksums.lock.json")
        assert lock[srv.url("/data/a.zip")]["sha256"] == hashlib.sha256(payload).hexdigest()
        assert lock[srv.url("/data/a.zip")]["size"] == len(payload)
        # second call: the file is there and verified; no new request
        n = srv.count("/data/a.zip")
        assert download(srv.url("/data/a.zip"), dest, **FAST) == dest
        assert srv.count("/data/a.zip") == n == 1

    out = tmp_path / "raw"
    entries = extract_archive(dest, out)
    assert entries == [out / "top"]
    assert (out / "top" / "a.txt").read_bytes() == b"alpha\n"
    assert (out / "top" / "sub" / "b.bin").stat().st_size == 256_000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".extracting")]
    # extracted once: a second call is a no-op (the marker matches), even with the folder present
    assert extract_archive(dest, out) == entries


def test_resume_after_dropped_connection(tmp_path: Path, payload: bytes) -> None:
    with LoopbackServer({"/a.zip": payload}, drop_first={"/a.zip": 1}) as srv:
        dest = tmp_path / "a.zip"
        download(srv.url("/a.zip"), dest, sha256=hashlib.sha256(payload).hexdigest(), retries=2, **FAST)
        assert dest.read_bytes() == payload
        ranges = [r["range"] for r in srv.requests]
    assert len(ranges) == 2 and ranges[0] is None
    # the second request resumed exactly where the first body stopped
    assert ranges[1] == f"bytes={len(payload) // 2}-"


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path, payload: bytes) -> None:
    with LoopbackServer({"/a.zip": payload}, drop_first={"/a.zip": 1}, ignore_range={"/a.zip"}) as srv:
        dest = tmp_path / "a.zip"
        download(srv.url("/a.zip"), dest, md5=hashlib.md5(payload).hexdigest(), retries=2, **FAST)
        assert dest.read_bytes() == payload  # not the first half followed by the whole file
        assert srv.requests[1]["range"] is not None


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path: Path, payload: bytes) -> None:
    dest = tmp_path / "a.zip"
    (tmp_path / "a.zip.part").write_bytes(payload[:1000])
    with LoopbackServer({"/a.zip": payload}) as srv:
        download(srv.url("/a.zip"), dest, retries=0, **FAST)
        assert srv.requests[0]["range"] == "bytes=1000-"
    assert dest.read_bytes() == payload


def test_checksum_mismatch_leaves_no_file(tmp_path: Path, payload: bytes) -> None:
    with LoopbackServer({"/a.zip": payload}) as srv:
        dest = tmp_path / "a.zip"
        with pytest.raises(DataError, match=r"a\.zip: MD5 .* does not match the published 0{32}"):
            download(srv.url("/a.zip"), dest, md5="0" * 32, **FAST)
        assert not dest.exists() and not (tmp_path / "a.zip.part").exists()
        with pytest.raises(DataError, match="SHA256 .* does not match"):
            download(srv.url("/a.zip"), dest, sha256="f" * 64, **FAST)
        assert not dest.exists()
    # nothing was recorded in the lock file for a failed download
    assert read_lock(tmp_path / "checksums.lock.json") == {}


def test_lock_file_detects_a_changed_file(tmp_path: Path, payload: bytes) -> None:
    lock = tmp_path / "lock" / "sums.json"
    changed = make_zip({"top/a.txt": b"tampered\n"})
    with LoopbackServer({"/a.zip": payload}) as srv:
        url = srv.url("/a.zip")
        download(url, tmp_path / "one" / "a.zip", lock_file=lock, **FAST)
        recorded = json.loads(lock.read_text())["files"][url]
        assert recorded["sha256"] == hashlib.sha256(payload).hexdigest()
        srv.files["/a.zip"] = changed
        with pytest.raises(DataError, match=r"differs from .* recorded .* sums\.json"):
            download(url, tmp_path / "two" / "a.zip", lock_file=lock, **FAST)
        assert not (tmp_path / "two" / "a.zip").exists()
        srv.files["/a.zip"] = payload
        download(url, tmp_path / "two" / "a.zip", lock_file=lock, **FAST)  # the recorded content again: fine
    # a locally corrupted copy of a recorded file is refused too (and not deleted: it is the user's)
    (tmp_path / "one" / "a.zip").write_bytes(changed)
    with pytest.raises(DataError, match="differs from"):
        download(url, tmp_path / "one" / "a.zip", lock_file=lock, **FAST)
    assert (tmp_path / "one" / "a.zip").exists()


def test_truncated_download_is_refused_and_kept_for_resume(tmp_path: Path, payload: bytes) -> None:
    with LoopbackServer({"/a.zip": payload}, truncate={"/a.zip"}, ignore_range={"/a.zip"}) as srv:
        dest = tmp_path / "a.zip"
        with pytest.raises(DataError, match=r"a\.zip: download of .* failed after 3 attempts .*(truncated|lost)"):
            download(srv.url("/a.zip"), dest, retries=2, **FAST)
        assert srv.count("/a.zip") == 3
    assert not dest.exists()
    assert (tmp_path / "a.zip.part").stat().st_size == len(payload) // 2


def test_corrupt_archive_is_refused(tmp_path: Path, payload: bytes) -> None:
    broken = payload[: len(payload) - 200]  # the zip's central directory is cut off
    with LoopbackServer({"/a.zip": broken}) as srv:
        with pytest.raises(DataError, match=r"a\.zip: downloaded from .* not a sound archive"):
            download(srv.url("/a.zip"), tmp_path / "a.zip", **FAST)
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.part").exists()


def test_http_404_is_not_retried(tmp_path: Path) -> None:
    with LoopbackServer({}) as srv:
        with pytest.raises(DataError, match="HTTP 404"):
            download(srv.url("/missing.zip"), tmp_path / "missing.zip", retries=4, **FAST)
        assert srv.count("/missing.zip") == 1


def test_data_root_is_used_without_downloading(tmp_path: Path, payload: bytes) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "a.zip").write_bytes(payload)
    with LoopbackServer({"/a.zip": payload}) as srv:
        got = download(srv.url("/a.zip"), tmp_path / "arch" / "a.zip", data_root=root,
                       md5=hashlib.md5(payload).hexdigest(), **FAST)
        assert got == root / "a.zip" and srv.requests == []
        assert not (tmp_path / "arch" / "a.zip").exists()
        with pytest.raises(DataError, match=r"mine/a\.zip: MD5"):
            download(srv.url("/a.zip"), tmp_path / "arch" / "a.zip", data_root=root, md5="1" * 32, **FAST)
        assert srv.requests == []


# -- safe extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt", "C:/evil.txt"])
def test_zip_members_outside_the_destination_are_refused(tmp_path: Path, name: str) -> None:
    arch = tmp_path / "bad.zip"
    arch.write_bytes(make_zip({"ok.txt": b"x", name: b"evil"}))
    out = tmp_path / "out"
    with pytest.raises(DataError, match=rf"bad\.zip: member '{name}'"):
        extract_archive(arch, out)
    assert not (tmp_path / "evil.txt").exists()
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("entry, message", [
    (("/etc/evil", b"x", None, b""), "absolute path"),
    (("d/../../evil", b"x", None, b""), r"'\.\.' component"),
    (("d/link", None, "sym", b"../../outside"), "symlink member 'd/link' points outside"),
    (("d/link", None, "sym", b"/etc/passwd"), "symlink member 'd/link' points to the absolute path"),
    (("d/hard", None, "hard", b"../outside"), "hardlink member 'd/hard' points outside"),
])
def test_tar_members_outside_the_destination_are_refused(tmp_path: Path, entry: tuple, message: str) -> None:
    arch = tmp_path / "bad.tar.gz"
    arch.write_bytes(make_tgz([("d/ok.txt", b"ok", None, b""), entry]))
    with pytest.raises(DataError, match=message):
        check_archive(arch)
    with pytest.raises(DataError, match=r"bad\.tar\.gz"):
        extract_archive(arch, tmp_path / "out")
    assert not (tmp_path / "out" / "d").exists()


def test_tar_links_inside_the_destination_are_extracted(tmp_path: Path) -> None:
    arch = tmp_path / "good.tgz"
    arch.write_bytes(make_tgz([("d/a.txt", b"alpha", None, b""), ("d/sub/link", None, "sym", b"../a.txt"),
                               ("d/hard", None, "hard", b"d/a.txt")]))
    extract_archive(arch, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "sub" / "link").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "d" / "hard").read_bytes() == b"alpha"


def test_truncated_tar_is_refused_and_nothing_extracted(tmp_path: Path) -> None:
    blob = np.random.default_rng(1).bytes(100_000)
    data = make_tgz([("d/a.bin", blob, None, b""), ("d/b.bin", blob[::-1], None, b"")])
    arch = tmp_path / "cut.tar.gz"
    arch.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.tar\.gz: .*truncated or corrupt"):
        extract_archive(arch, tmp_path / "out")
    assert not (tmp_path / "out" / "d").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".extracting")]


def test_two_archives_sharing_a_top_folder_are_merged_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "one.zip").write_bytes(make_zip({"NUS/a.txt": b"1"}))
    (tmp_path / "two.zip").write_bytes(make_zip({"NUS/b.txt": b"2"}))
    (tmp_path / "three.zip").write_bytes(make_zip({"NUS/a.txt": b"3"}))
    out = tmp_path / "out"
    extract_archive(tmp_path / "one.zip", out)
    extract_archive(tmp_path / "two.zip", out)
    assert sorted(p.name for p in (out / "NUS").iterdir()) == ["a.txt", "b.txt"]
    with pytest.raises(DataError, match=r"NUS/a\.txt: already exists"):
        extract_archive(tmp_path / "three.zip", out)
    assert (out / "NUS" / "a.txt").read_bytes() == b"1"


# -- many small files ---------------------------------------------------------------------------
def test_fetch_many_retries_and_reports_missing(tmp_path: Path) -> None:
    files = {"/img/1.jpg": b"one", "/img/2.jpg": b"two", "/placeholder.png": b"unavailable"}
    with LoopbackServer(files, drop_first={"/img/2.jpg": 1}, redirects={"/img/4.jpg": "/placeholder.png"}) as srv:
        items = [(srv.url(f"/img/{i}.jpg"), tmp_path / f"{i}.jpg") for i in (1, 2, 3, 4)] + [("null", tmp_path / "5.jpg")]
        failures = fetch_many(items, workers=3, retries=2, backoff=0.0, timeout=5.0, progress=False,
                              reject=lambda url, body: "placeholder" if "placeholder" in url else None)
        assert srv.count("/img/2.jpg") == 2  # dropped once, then fetched
        assert srv.count("/img/3.jpg") == 1  # 404: not retried
    assert (tmp_path / "1.jpg").read_bytes() == b"one" and (tmp_path / "2.jpg").read_bytes() == b"two"
    assert set(failures) == {str(tmp_path / "3.jpg"), str(tmp_path / "4.jpg"), str(tmp_path / "5.jpg")}
    assert "404" in failures[str(tmp_path / "3.jpg")] and failures[str(tmp_path / "4.jpg")] == "placeholder"
    assert not (tmp_path / "3.jpg").exists() and not (tmp_path / "4.jpg").exists()
