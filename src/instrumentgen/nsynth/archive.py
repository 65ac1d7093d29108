"""Safe, atomic extraction of a dataset tar archive.

Every member is checked as it is extracted (no absolute paths, no ``..``, no links that
escape, no device files; then tarfile's ``data`` filter) into a temporary directory next to
the destination, in one pass over the (possibly 22 GB) archive; the expected top folder is
moved into place only when everything succeeded. An unsafe member, a truncated or a corrupt
archive leaves nothing behind; temporary folders of a killed earlier run are swept first.
"""

from __future__ import annotations

import gzip
import logging
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

_CORRUPT = (EOFError, tarfile.ReadError, tarfile.CompressionError, tarfile.HeaderError,
            zlib.error, gzip.BadGzipFile)


class ArchiveError(RuntimeError):
    """An archive that is unsafe, truncated, corrupt or not laid out as expected."""


def _escapes(path: str) -> bool:
    """True if the relative POSIX ``path`` is absolute or leaves its root once normalised."""
    if path.startswith(("/", "\\")) or PurePosixPath(path).is_absolute():
        return True
    norm = posixpath.normpath(path)
    return norm == ".." or norm.startswith("../")


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is unsafe to extract, or ``None`` if it is fine."""
    name = member.name
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' path component"
    if member.isdev():
        return "device file or FIFO"
    if member.issym() and _escapes(posixpath.join(posixpath.dirname(name), member.linkname)):
        return f"symlink to {member.linkname!r} escapes the archive"
    if member.islnk() and _escapes(member.linkname):
        return f"hard link to {member.linkname!r} escapes the archive"
    return None


def check_members(tar: tarfile.TarFile) -> None:
    """Scan every member of ``tar``; raise :class:`ArchiveError` on the first unsafe one."""
    for member in tar:
        problem = _member_problem(member)
        if problem is not None:
            raise ArchiveError(f"{tar.name}: refusing to extract member {member.name!r}: {problem}")


def _read_to_end(tar: tarfile.TarFile, chunk_size: int = 1 << 20) -> None:
    """Read the rest of the (decompressed) stream so gzip checks its CRC and length trailer.

    tarfile stops silently at the first invalid header after the start, so a corrupt middle
    would otherwise pass as a shorter archive.
    """
    fileobj = tar.fileobj
    if fileobj is None:
        return
    while fileobj.read(chunk_size):
        pass


def _corrupt_error(archive: Path, exc: BaseException) -> ArchiveError:
    """The error for a truncated or corrupt archive, telling the user how to recover."""
    return ArchiveError(f"{archive}: archive is truncated or corrupt ({type(exc).__name__}: {exc}); "
                        f"delete it and download it again")


def _checked_data_filter(member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo | None:
    """tarfile extraction filter: our member checks, then tarfile's ``data`` filter."""
    problem = _member_problem(member)
    if problem is not None:
        raise _UnsafeMember(member, problem)
    return tarfile.data_filter(member, dest_path)


class _UnsafeMember(tarfile.FilterError):
    def __init__(self, member: tarfile.TarInfo, problem: str):
        super().__init__(problem)
        self.tarinfo = member


def _extract_all(archive: Path, tmp: Path) -> None:
    """Extract ``archive`` into ``tmp`` in one pass, checking every member, then the gzip trailer."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter=_checked_data_filter)
            _read_to_end(tar)
    except tarfile.FilterError as e:
        name = e.tarinfo.name if e.tarinfo is not None else "?"
        raise ArchiveError(f"{archive}: refusing to extract member {name!r}: {e}") from e
    except _CORRUPT as e:
        raise _corrupt_error(archive, e) from e


def _found(tmp: Path) -> str:
    """A short listing of the top level of ``tmp`` for error messages."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in tmp.iterdir())
    return ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "nothing"


def safe_extract(archive: str | os.PathLike, target_parent: str | os.PathLike, top_dir: str) -> Path:
    """Extract ``archive`` and move its ``top_dir/`` to ``target_parent/top_dir``; return that path.

    An existing destination is replaced only after a successful extraction. On any error the
    temporary directory is removed, nothing is left at the destination, and
    :class:`ArchiveError` names the archive and the problem.
    """
    archive, target_parent = Path(archive), Path(target_parent)
    dest = target_parent / top_dir
    target_parent.mkdir(parents=True, exist_ok=True)
    for stale in target_parent.glob(f".{top_dir}.*.extract"):
        log.info("removing %s, left by an interrupted extraction", stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{top_dir}.", suffix=".extract", dir=target_parent))
    try:
        log.info("extracting %s into %s", archive, dest)
        _extract_all(archive, tmp)
        src = tmp / top_dir
        if not src.is_dir():
            raise ArchiveError(f"{archive}: expected a top folder {top_dir + '/'!r}, found: {_found(tmp)}")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
