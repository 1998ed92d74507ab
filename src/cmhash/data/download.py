"""Resumable, verified downloads of the published dataset archives.

:func:`download` fetches one URL with :mod:`urllib.request` into ``<dest>.part``, resuming a
partial file with an HTTP ``Range`` request (a server that ignores ``Range`` and answers 200 is
detected and the file restarted), retrying network failures and truncated bodies with
exponential back-off, and shows a tqdm progress bar. The file is renamed onto ``dest`` only
when it is complete and verified:

* its size equals the announced ``Content-Length`` (a body that ends early is a truncation,
  retried and, when retries run out, a DataError naming the file; the ``.part`` stays so a
  later run resumes it);
* where a published checksum is known (``md5``/``sha256``) it must match;
* where none is, the first download's SHA-256 is recorded in a JSON lock file keyed by URL
  (``checksums.lock.json``) and every later download or re-use of the file must match it;
* an archive (zip, tar, tgz) must open and list cleanly (:func:`cmhash.data.archive.check_archive`).

A corrupt file (checksum or archive check failed) is deleted and never handed to a parser.
``data_root``: a folder where the user already keeps the archives; a file of the same name
there is used in place (verified the same way) and nothing is downloaded.

:func:`fetch_many` fetches many small files (NUS-WIDE's Flickr images from its URL list)
concurrently, with retries, and returns what could not be fetched for a missing-files report.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cmhash.data.archive import archive_kind, check_archive, file_digests, is_archive
from cmhash.errors import DataError
from cmhash.io import load_json, save_json

try:  # POSIX advisory locks guard the lock file against parallel jobs
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("cmhash")

LOCK_FILE_NAME = "checksums.lock.json"
USER_AGENT = "cmhash (+https://github.com/; dataset download)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError)


class _Retryable(Exception):
    """A failure worth another attempt (network error, truncated body, 5xx)."""


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, lock_file: str | os.PathLike | None = None, retries: int = 5,
             backoff: float = 1.0, timeout: float = 60.0, data_root: str | os.PathLike | None = None,
             progress: bool = True, chunk_size: int = 1 << 20, verify_archive: bool = True) -> Path:
    """Download ``url`` to ``dest`` (resumable, retried, verified) and return the usable path.

    ``lock_file`` defaults to ``checksums.lock.json`` beside ``dest``. ``retries`` is the
    number of further attempts after the first; attempt k waits ``backoff * 2**(k-1)`` seconds
    (at most 300). Returns ``dest``, or the file in ``data_root`` when one of that name is
    there. Raises DataError naming the URL and file on an HTTP error other than a transient
    one, a truncated download after the last retry, a checksum mismatch (published or locked)
    or a corrupt archive.
    """
    dest = Path(dest)
    lock_path = Path(lock_file) if lock_file is not None else dest.parent / LOCK_FILE_NAME
    if data_root is not None:
        candidate = Path(data_root) / dest.name
        if candidate.is_file():
            log.info("using %s from data_root (no download)", candidate)
            verify_file(candidate, url, md5=md5, sha256=sha256, size=size, lock_file=lock_path,
                        verify_archive=verify_archive)
            return candidate
    if dest.is_file():
        verify_file(dest, url, md5=md5, sha256=sha256, size=size, lock_file=lock_path, verify_archive=verify_archive)
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: str = ""
    for attempt in range(retries + 1):
        if attempt:
            wait = min(backoff * 2 ** (attempt - 1), 300.0)
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1f s", url, attempt, retries + 1,
                        last_error, wait)
            if wait > 0:
                time.sleep(wait)
        try:
            _attempt(url, part, timeout=timeout, chunk_size=chunk_size, progress=progress)
            break
        except _Retryable as exc:
            last_error = str(exc)
    else:
        have = part.stat().st_size if part.exists() else 0
        kept = f"; {have} bytes are kept in {part.name} and the next run resumes from there" if have else ""
        raise DataError(f"{dest}: download of {url} failed after {retries + 1} attempts ({last_error}){kept}")

    try:
        digests = verify_file(part, url, md5=md5, sha256=sha256, size=size, lock_file=lock_path,
                              verify_archive=verify_archive, archive_name=dest.name, display=dest)
    except DataError:
        part.unlink(missing_ok=True)  # corrupt: resuming it cannot help
        raise
    os.replace(part, dest)
    log.info("downloaded %s -> %s (%d bytes, sha256 %s)", url, dest, dest.stat().st_size, digests["sha256"])
    return dest


def _attempt(url: str, part: Path, *, timeout: float, chunk_size: int, progress: bool) -> None:
    """One request: resume ``part`` from its size; raise _Retryable on a transient failure."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            whole = re.match(r"bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if whole and int(whole.group(1)) == offset:
                return  # the partial file is already complete
            part.unlink()  # the partial file does not fit what the server has: start over
            raise _Retryable(f"HTTP 416 for a resume at byte {offset}; restarting") from exc
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code} {exc.reason}") from exc
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}; check the URL (the publisher may have moved the "
                        f"file) or download it by hand into the data_root folder") from exc
    except _NETWORK_ERRORS as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc

    with response:
        length = response.headers.get("Content-Length")
        total: int | None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink()
                raise _Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')!r}; restarting")
            total = int(match.group(3)) if match.group(3) != "*" else (offset + int(length) if length else None)
            mode = "ab"
        else:
            if offset:
                log.info("%s: the server ignored the Range request; restarting from byte 0", url)
            offset, mode = 0, "wb"
            total = int(length) if length is not None else None
        try:
            with open(part, mode) as handle, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                  unit_divisor=1024, desc=part.name[:-5], disable=not progress,
                                                  leave=False) as bar:
                while block := response.read(chunk_size):
                    handle.write(block)
                    bar.update(len(block))
        except _NETWORK_ERRORS as exc:
            raise _Retryable(f"connection lost after {part.stat().st_size} bytes ({type(exc).__name__})") from exc
    got = part.stat().st_size
    if total is not None and got != total:
        raise _Retryable(f"truncated: {got} of {total} bytes (Content-Length mismatch)")


def verify_file(path: str | os.PathLike, url: str, *, md5: str | None = None, sha256: str | None = None,
                size: int | None = None, lock_file: str | os.PathLike | None = None, verify_archive: bool = True,
                archive_name: str | None = None, display: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check ``path`` against the expected size, the published checksums and the lock file's
    record for ``url`` (recording its SHA-256 there when there is none), and, for an archive,
    that it opens. Returns ``{"md5", "sha256", "size"}``; DataError naming the file otherwise.

    ``archive_name`` is the name that tells the archive type (for a ``.part`` file);
    ``display`` the name used in messages.
    """
    path = Path(path)
    shown = Path(display) if display is not None else path
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DataError(f"{shown}: {actual_size} bytes, but {url} is published with {size} bytes; the file is "
                        f"truncated or not the published one")
    digests: dict[str, Any] = dict(file_digests(path, ("md5", "sha256")), size=actual_size)
    for name, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and digests[name] != expected.lower():
            raise DataError(f"{shown}: {name.upper()} {digests[name]} does not match the published {expected} "
                            f"of {url}; the file is corrupt or not the published one")
    name_for_kind = archive_name or path.name
    if verify_archive and is_archive(name_for_kind):
        try:
            check_archive(path, kind=archive_kind(name_for_kind))
        except DataError as exc:
            raise DataError(f"{shown}: downloaded from {url} but not a sound archive: {exc}") from exc
    if lock_file is not None:
        check_lock(lock_file, url, digests, shown)
    return digests


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    guard = lock_path.with_name(f".{lock_path.name}.flock")
    with open(guard, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def read_lock(lock_file: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The lock file's records, keyed by URL (empty when the file does not exist)."""
    lock_path = Path(lock_file)
    if not lock_path.is_file():
        return {}
    data = load_json(lock_path)
    if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
        raise DataError(f"{lock_path}: expected {{\"files\": {{url: {{\"sha256\": ...}}}}}}")
    return dict(data.get("files", {}))


def check_lock(lock_file: str | os.PathLike, url: str, digests: dict[str, Any], shown: Path) -> None:
    """Compare ``digests`` with the lock file's record of ``url``; record them if there is none."""
    lock_path = Path(lock_file)
    with _locked(lock_path):
        records = read_lock(lock_path)
        record = records.get(url)
        if record is not None:
            if record.get("sha256") != digests["sha256"]:
                raise DataError(f"{shown}: SHA-256 {digests['sha256']} differs from {record.get('sha256')} recorded "
                                f"for {url} in {lock_path} (first download {record.get('recorded', '?')}); the file "
                                f"is corrupt or changed upstream. If the publisher replaced it on purpose, delete "
                                f"that entry from {lock_path.name} and run again")
            return
        records[url] = {"file": shown.name, "size": int(digests["size"]), "sha256": digests["sha256"],
                        "md5": digests["md5"],
                        "recorded": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
        save_json(lock_path, {"comment": "SHA-256 of each file at its first download, verified on every later "
                                         "run (cmhash.data.download)", "files": dict(sorted(records.items()))})
        log.info("recorded sha256 of %s in %s", url, lock_path)


# -- many small files ---------------------------------------------------------------------------
def fetch_many(items: Sequence[tuple[str, str | os.PathLike]], *, workers: int = 8, retries: int = 3,
               backoff: float = 1.0, timeout: float = 30.0, progress: bool = True,
               reject: Callable[[str, bytes], str | None] | None = None) -> dict[str, str]:
    """Fetch each ``(url, dest)`` concurrently; return ``{dest: reason}`` for those that failed.

    A destination that already exists is skipped. Each file goes to a temporary name and is
    renamed when complete; transient failures (network errors, 5xx, truncated bodies) are
    retried with exponential back-off, HTTP 4xx is not. ``reject(final_url, body)`` may return
    a reason to treat a response as missing (e.g. Flickr's "photo unavailable" placeholder).
    """
    failures: dict[str, str] = {}
    todo = [(url, Path(dest)) for url, dest in items if not Path(dest).is_file()]
    if not todo:
        return failures

    def one(url: str, dest: Path) -> tuple[Path, str | None]:
        reason = "not attempted"
        for attempt in range(retries + 1):
            if attempt and backoff > 0:
                time.sleep(min(backoff * 2 ** (attempt - 1), 60.0))
            try:
                return dest, _fetch_small(url, dest, timeout, reject)
            except _Retryable as exc:
                reason = str(exc)
        return dest, f"failed after {retries + 1} attempts: {reason}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(todo), unit="file", desc="fetching", disable=not progress) as bar:
        for dest, reason in pool.map(lambda item: one(*item), todo):
            if reason is not None:
                failures[str(dest)] = reason
            bar.update(1)
    return failures


def _fetch_small(url: str, dest: Path, timeout: float,
                 reject: Callable[[str, bytes], str | None] | None) -> str | None:
    """Fetch one small file; None on success, a reason when it is missing for good."""
    if not url or url.lower() == "null":
        return "no URL"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            body = response.read()
            final_url = response.geturl()
    except urllib.error.HTTPError as exc:
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code}") from exc
        return f"HTTP {exc.code} {exc.reason}"
    except ValueError as exc:  # malformed URL
        return f"bad URL ({exc})"
    except _NETWORK_ERRORS as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
    if length is not None and len(body) != int(length):
        raise _Retryable(f"truncated: {len(body)} of {length} bytes")
    if reject is not None and (why := reject(final_url, body)):
        return why
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, dest)
    return None


__all__ = ["LOCK_FILE_NAME", "check_lock", "download", "fetch_many", "read_lock", "verify_file"]
