"""Safe extraction of the downloaded archives (zip, tar, tar.gz/tgz, and RAR through an external
tool) into a raw-data folder.

Every member name is checked *before* anything is written: an absolute path, a ``..``
component, a symlink or hardlink whose target leaves the destination, or a device/FIFO member
raises :class:`DataError` naming the archive and the member. The archive is extracted into a
temporary folder beside the destination and its top-level entries are renamed into place only
when the whole extraction succeeded, so a truncated or corrupt archive never leaves a
half-extracted tree that a parser could read. A marker file records each extracted archive
(name, size, SHA-256) so that :func:`extract_archive` skips an archive already extracted.

RAR (NUS-WIDE's URL list, the SAIAPR TC-12 region labels) has no reader in the standard
library: ``unrar``, ``7z`` or ``bsdtar`` is used when one is on ``PATH`` (for a multi-volume
``name.partN.rar`` set only ``unrar`` or ``7z``: bsdtar reads one volume alone); the member list is
checked with the same rules first and the extracted tree is checked again for links leaving it.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from cmhash.errors import DataError
from cmhash.io import file_digests, file_sha256

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".rar")
MARKER_PREFIX = ".extracted-"
_RAR_VOLUME = re.compile(r"\.part\d+\.rar$", re.IGNORECASE)


def archive_kind(path: str | os.PathLike) -> str:
    """``zip``, ``tar`` or ``rar`` from the file name; DataError for any other suffix."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")):
        return "tar"
    if name.endswith(".rar"):
        return "rar"
    raise DataError(f"{path}: not a known archive type (expected one of {', '.join(ARCHIVE_SUFFIXES)})")


def is_archive(path: str | os.PathLike) -> bool:
    """True if the name ends with a suffix :func:`extract_archive` handles."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def check_member_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path; DataError if it is absolute or has a ``..`` component.

    Backslashes count as separators (archives made on Windows), and a drive letter counts as
    absolute.
    """
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing to extract the archive")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{archive}: member {name!r} has a '..' component (it would be written outside the "
                        f"destination); refusing to extract the archive")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _check_link(archive: Path, member: str, link_dir: PurePosixPath, target: str, kind: str) -> None:
    """DataError if a link's target, resolved from ``link_dir`` inside the archive root, leaves it."""
    norm = target.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise DataError(f"{archive}: {kind} member {member!r} points to the absolute path {target!r}; "
                        f"refusing to extract the archive")
    resolved = posixpath.normpath(posixpath.join(str(link_dir), norm))
    if resolved == ".." or resolved.startswith(("../", "/")):
        raise DataError(f"{archive}: {kind} member {member!r} points outside the destination ({target!r}); "
                        f"refusing to extract the archive")


def list_members(path: str | os.PathLike) -> list[str]:
    """The member names of an archive after checking them all (see :func:`check_archive`)."""
    return check_archive(path)


def check_archive(path: str | os.PathLike, kind: str | None = None) -> list[str]:
    """Open the archive, read its member list and check every member; return the names.

    ``kind`` (``zip``/``tar``/``rar``) defaults to the one the file name says. DataError naming
    the file if it is missing, truncated or not an archive of its kind (a zip without a readable
    central directory, a tar or gzip stream that ends early), or naming the member for an
    unsafe path or link.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: archive not found")
    kind = kind or archive_kind(path)
    if kind == "zip":
        return [m.filename for m in _zip_members(path)]
    if kind == "tar":
        return [m.name for m in _tar_members(path)]
    return _rar_members(path)


def _zip_members(path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                rel = check_member_name(path, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    target = zf.read(info).decode("utf-8", errors="replace")
                    _check_link(path, info.filename, rel.parent, target, "symlink")
                elif mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
                    raise DataError(f"{path}: member {info.filename!r} is a device or FIFO; refusing to extract")
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc}); it is truncated or corrupt — delete it "
                        f"and download it again") from exc
    return infos


def _tar_members(path: Path) -> list[tarfile.TarInfo]:
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable tar archive ({exc}); it is truncated or corrupt — delete it "
                        f"and download it again") from exc
    for m in members:
        rel = check_member_name(path, m.name)
        if m.issym():
            _check_link(path, m.name, rel.parent, m.linkname, "symlink")
        elif m.islnk():
            # hardlink targets are names of earlier members, relative to the archive root
            _check_link(path, m.name, PurePosixPath("."), m.linkname, "hardlink")
        elif m.isdev() or m.isfifo():
            raise DataError(f"{path}: member {m.name!r} is a device or FIFO; refusing to extract the archive")
    return members


# -- RAR through an external tool ------------------------------------------------------------
def _rar_tool(path: Path | None = None) -> tuple[str, str] | None:
    """The first RAR tool on PATH. bsdtar only for a single archive: given a volume of a
    ``name.partN.rar`` set it reads that volume alone (no volume following in the bsdtar
    command line, libarchive issue 783), so the set would extract incompletely."""
    tools = ("unrar", "7z", "7za") if path is not None and _RAR_VOLUME.search(path.name) else (
        "unrar", "7z", "7za", "bsdtar")
    for tool in tools:
        exe = shutil.which(tool)
        if exe:
            return tool, exe
    return None


def _rar_members(path: Path) -> list[str]:
    found = _rar_tool(path)
    if found is None:
        tools = ("'unrar' or '7z' (bsdtar reads only one volume of a .partN.rar set)"
                 if _RAR_VOLUME.search(path.name) else "'unrar', '7z' or 'bsdtar'")
        raise DataError(f"{path}: extracting RAR archives needs {tools} on PATH; install one, "
                        f"or extract {path.name} yourself into the raw folder")
    tool, exe = found
    cmd = {"unrar": [exe, "lb", str(path)], "7z": [exe, "l", "-slt", "-ba", str(path)],
           "7za": [exe, "l", "-slt", "-ba", str(path)], "bsdtar": [exe, "-tf", str(path)]}[tool]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DataError(f"{path}: '{tool}' cannot list the archive ({proc.stderr.strip()[:300]}); it is truncated "
                        f"or corrupt — delete it and download it again")
    if tool in ("7z", "7za"):
        names = [line[len("Path = "):] for line in proc.stdout.splitlines() if line.startswith("Path = ")]
    else:
        names = [line for line in proc.stdout.splitlines() if line.strip()]
    for name in names:
        check_member_name(path, name)
    return names


def _extract_rar(path: Path, into: Path) -> None:
    _rar_members(path)
    tool, exe = _rar_tool(path)  # type: ignore[misc]  # checked by _rar_members
    cmd = {"unrar": [exe, "x", "-o-", "-idq", str(path), str(into) + os.sep],
           "7z": [exe, "x", "-y", f"-o{into}", str(path)], "7za": [exe, "x", "-y", f"-o{into}", str(path)],
           "bsdtar": [exe, "-xf", str(path), "-C", str(into)]}[tool]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DataError(f"{path}: '{tool}' failed to extract it ({proc.stderr.strip()[:300]}); it is truncated or "
                        f"corrupt — delete it and download it again")
    check_tree(into, source=str(path))


def check_tree(root: Path, source: str | None = None) -> None:
    """DataError if a symlink under ``root`` resolves outside it (checked after an external
    tool extracted an archive)."""
    root_resolved = root.resolve()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            if p.is_symlink():
                target = (p.parent / os.readlink(p)).resolve()
                if root_resolved != target and root_resolved not in target.parents:
                    raise DataError(f"{source or root}: member {p.relative_to(root)} is a symlink leaving the "
                                    f"destination; refusing to use the archive")


# -- extraction -----------------------------------------------------------------------------
def extract_archive(path: str | os.PathLike, dest_dir: str | os.PathLike, *, sha256: str | None = None,
                    overwrite: bool = False) -> list[Path]:
    """Extract ``path`` safely into ``dest_dir`` and return the top-level paths it created.

    The archive is checked (:func:`check_archive`), extracted into a temporary folder beside
    ``dest_dir``, and each of its top-level entries is renamed into ``dest_dir``. An entry that
    already exists there raises DataError unless ``overwrite`` (then it is replaced). A marker
    ``.extracted-<archive name>.json`` (archive size and SHA-256) is written last; when it is
    present and matches, nothing is extracted again.
    """
    path, dest_dir = Path(path), Path(dest_dir)
    kind = archive_kind(path)
    size = path.stat().st_size if path.is_file() else None
    marker = dest_dir / f"{MARKER_PREFIX}{path.name}.json"
    if marker.is_file() and size is not None:
        try:
            recorded = json.loads(marker.read_text())
        except json.JSONDecodeError:
            recorded = {}
        entries = [dest_dir / name for name in recorded.get("entries", [])]
        if (recorded.get("size") == size and (sha256 is None or recorded.get("sha256") == sha256)
                and all(e.exists() for e in entries)):
            return entries
    members_checked = check_archive(path)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".extracting", dir=dest_dir.parent))
    try:
        try:
            if kind == "zip":
                with zipfile.ZipFile(path) as zf:
                    zf.extractall(tmp)
            elif kind == "tar":
                with tarfile.open(path, "r:*") as tf:
                    tf.extractall(tmp, filter="data")
            else:
                _extract_rar(path, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: extraction failed ({exc}); the archive is truncated or corrupt — delete it "
                            f"and download it again") from exc
        entries = sorted(p.name for p in tmp.iterdir())
        if not entries and members_checked:
            raise DataError(f"{path}: extraction produced no file")
        for name in entries:
            target = dest_dir / name
            if target.exists() or target.is_symlink():
                if not overwrite:
                    if target.is_dir() and (tmp / name).is_dir():
                        _merge_dir(tmp / name, target, path)
                        continue
                    raise DataError(f"{target}: already exists; remove it or extract {path.name} elsewhere")
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
            os.replace(tmp / name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    digest = sha256 or file_sha256(path)
    marker.write_text(json.dumps({"archive": path.name, "size": size, "sha256": digest, "entries": entries},
                                 indent=2) + "\n")
    return [dest_dir / name for name in entries]


def _merge_dir(src: Path, dst: Path, archive: Path) -> None:
    """Move the contents of ``src`` into the existing folder ``dst`` (two archives that share a
    top-level folder, e.g. NUS-WIDE's), refusing to replace an existing file."""
    for child in sorted(src.iterdir()):
        target = dst / child.name
        if target.exists():
            if target.is_dir() and child.is_dir():
                _merge_dir(child, target, archive)
                continue
            raise DataError(f"{target}: already exists; remove it or extract {archive.name} elsewhere")
        os.replace(child, target)


__all__ = [
    "ARCHIVE_SUFFIXES",
    "archive_kind",
    "check_archive",
    "check_member_name",
    "check_tree",
    "extract_archive",
    "file_digests",
    "file_sha256",
    "is_archive",
    "list_members",
]
