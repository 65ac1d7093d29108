"""Resumable HTTP downloads (stdlib ``urllib``) and SHA-256 checksum records.

A download streams into ``<dest>.part``; an interrupted one resumes with an HTTP ``Range``
request, and only a complete file (its size checked against the server's announcement) is
moved onto ``dest``. So ``dest`` either exists complete or not at all.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from instrumentgen.atomic import write_text_atomic
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(?P<start>\d+)-(?P<end>\d+)|\*)/(?P<total>\d+|\*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(RuntimeError):
    """A download or a downloaded file's integrity check failed."""


class DownloadNetworkError(DownloadError):
    """The server could not be reached, or the connection kept failing, after all retries."""


class _Transient(Exception):
    """A failure worth retrying (dropped connection, timeout, 5xx); the message is the reason."""


# --------------------------------------------------------------------------- HTTP helpers


def _reason(exc: BaseException) -> str:
    """A short human description of a network exception."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        if not isinstance(exc.reason, BaseException):
            return f"URLError: {exc.reason}"
        exc = exc.reason
    return f"{type(exc).__name__}: {str(exc) or 'no details'}"


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``bytes START-END/TOTAL`` or ``bytes */TOTAL``; ``None`` where unknown."""
    m = _CONTENT_RANGE.match((value or "").strip())
    if m is None:
        return None, None
    start = int(m["start"]) if m["start"] is not None else None
    total = int(m["total"]) if m["total"] != "*" else None
    return start, total


def _content_length(headers: http.client.HTTPMessage) -> int | None:
    """The ``Content-Length`` header as an int, or ``None`` when absent or malformed."""
    value = (headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def remote_size(url: str, timeout: float = 60) -> int | None:
    """Size of ``url`` from a ``HEAD`` request, or ``None`` if the server does not say."""
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return _content_length(resp.headers)
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        log.debug("HEAD %s failed: %s", url, _reason(e))
        return None


def _part_size(part: Path) -> int:
    """Bytes already downloaded into ``part`` (0 if it does not exist)."""
    return part.stat().st_size if part.exists() else 0


def _handle_http_error(url: str, part: Path, offset: int, err: urllib.error.HTTPError,
                       timeout: float) -> int | None:
    """Decide what an HTTP error status means for the download.

    Returns the total size when a ``416`` shows that ``part`` is already complete; returns
    ``None`` after discarding ``part`` when the download must restart from zero; raises
    :class:`DownloadError` for client errors and :class:`_Transient` for server errors.
    """
    try:
        if err.code == 416 and offset:
            _, total = _parse_content_range(err.headers.get("Content-Range"))
            if total is None:
                total = remote_size(url, timeout)
            if total == offset:
                return total
            log.warning("%s: server refused to resume at byte %d (size %s); restarting", url, offset, total)
            part.unlink()
            return None
        if 400 <= err.code < 500:
            raise DownloadError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
        raise _Transient(f"HTTP {err.code} {err.reason}") from err
    finally:
        err.close()


def _open(url: str, part: Path, timeout: float) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Open ``url``, resuming after the bytes already in ``part``.

    Returns ``(response, start, total)``: the byte offset the response body starts at (0 means
    ``part`` is to be truncated) and the expected final size (``None`` if unknown). ``response``
    is ``None`` when ``part`` is already complete.
    """
    offset = _part_size(part)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        total = _handle_http_error(url, part, offset, err, timeout)
        if total is not None:
            return None, offset, total
        return _open(url, part, timeout)  # .part was discarded: a plain request, no recursion loop
    if resp.status == 206:
        start, total = _parse_content_range(resp.headers.get("Content-Range"))
        if start != offset:
            resp.close()
            part.unlink(missing_ok=True)
            raise _Transient(f"server resumed at byte {start}, expected {offset}; restarting from zero")
        return resp, offset, total
    if offset:
        log.warning("%s: server ignored the Range request; restarting from zero", url)
    return resp, 0, _content_length(resp.headers)


def _stream(resp: http.client.HTTPResponse, part: Path, start: int, chunk_size: int, bar: tqdm) -> None:
    """Append (``start > 0``) or write the response body to ``part``."""
    with resp, open(part, "ab" if start else "wb") as f:
        while chunk := resp.read(chunk_size):
            f.write(chunk)
            bar.update(len(chunk))


def _check_part_size(url: str, part: Path, total: int | None) -> None:
    """Raise if ``part`` is shorter (retry) or longer (corrupt) than the announced ``total``."""
    if total is None:
        return
    size = _part_size(part)
    if size < total:
        raise _Transient(f"connection closed after {size} of {total} bytes")
    if size > total:
        part.unlink()
        raise DownloadError(f"download of {url}: size mismatch, received {size} bytes but the server "
                            f"announced {total}; the partial file was discarded")


def _attempt(url: str, dest: Path, part: Path, timeout: float, chunk_size: int, progress: bool) -> None:
    """One download attempt into ``part``; raises :class:`_Transient` on retryable failures."""
    try:
        resp, start, total = _open(url, part, timeout)
        if resp is not None:
            with progress_bar(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=dest.name, disable=not progress) as bar:
                _stream(resp, part, start, chunk_size, bar)
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        raise _Transient(_reason(e)) from e
    _check_part_size(url, part, total)


# --------------------------------------------------------------------------- download


def download(url: str, dest: Path, *, retries: int = 5, timeout: float = 60, chunk_size: int = 1 << 20,
             progress: bool = True, backoff: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` via ``<dest>.part``, resuming and retrying dropped connections.

    Each retry resumes from the current ``.part`` size; it gives up after ``retries + 1``
    consecutive attempts that brought no new bytes (sleeping ``backoff * 2**k`` seconds between
    them), so a long download survives any number of drops as long as it makes progress.
    Raises :class:`DownloadError` for HTTP client errors (no retry) and
    :class:`DownloadNetworkError` when the attempts failed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0  # consecutive failed attempts that brought no new bytes
    while True:
        before = _part_size(part)
        try:
            _attempt(url, dest, part, timeout, chunk_size, progress)
        except _Transient as e:
            failures = 0 if _part_size(part) > before else failures + 1
            log.warning("download of %s: attempt failed (%d/%d without progress): %s", url, failures,
                        retries + 1, e)
            if failures > retries:
                raise DownloadNetworkError(
                    f"could not download {url} after {failures} attempt(s) without progress: {e}") from e
            time.sleep(backoff * 2**max(failures - 1, 0))
            continue
        os.replace(part, dest)
        log.info("downloaded %s -> %s (%d bytes)", url, dest, dest.stat().st_size)
        return dest


# --------------------------------------------------------------------------- integrity


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 22, progress: bool = False) -> str:
    """Hex SHA-256 of a file, read in chunks (optionally with a tqdm bar on stderr)."""
    path = Path(path)
    digest = hashlib.sha256()
    bar = progress_bar(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
               desc=f"sha256 {path.name}", disable=not progress)
    with open(path, "rb") as f, bar:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def checksum_path(path: str | os.PathLike) -> Path:
    """The checksum record next to ``path``: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def record_checksum(path: str | os.PathLike, progress: bool = False) -> str:
    """Write ``<path>.sha256`` (``"<hex>  <filename>\\n"``, atomically) and return the hex digest."""
    path = Path(path)
    digest = sha256_file(path, progress=progress)
    write_text_atomic(checksum_path(path), f"{digest}  {path.name}\n")
    log.info("recorded SHA-256 of %s: %s", path, digest)
    return digest


def _read_checksum(record: Path) -> str:
    """The hex digest stored in a checksum record; :class:`DownloadError` if malformed."""
    fields = record.read_text().split()
    digest = fields[0].lower() if fields else ""
    if not _HEX64.match(digest):
        raise DownloadError(f"{record}: not a SHA-256 record (expected '<64 hex digits>  <filename>')")
    return digest


def verify_checksum(path: str | os.PathLike, progress: bool = False, published: str | None = None) -> None:
    """Check ``path`` against ``<path>.sha256``; record it there on first use.

    ``published`` (a SHA-256 or a prefix of one, e.g. the ``10086976`` of ``vggish-10086976.pth``) is
    checked before anything is recorded, so a wrong file never leaves a record behind. Raises
    :class:`DownloadError` naming the file, the expected and the actual digest on mismatch.
    """
    path = Path(path)
    record = checksum_path(path)
    if not record.exists():
        if published:
            digest = sha256_file(path, progress=progress)
            _check_published(path, digest, published)
            write_text_atomic(record, f"{digest}  {path.name}\n")
            log.info("SHA-256 of %s matches the published %s; recorded", path, published)
        else:
            record_checksum(path, progress=progress)
        return
    expected = _read_checksum(record)
    if published:
        _check_published(path, expected, published)
    actual = sha256_file(path, progress=progress)
    if actual != expected:
        raise DownloadError(
            f"{path}: SHA-256 mismatch: expected {expected} (from {record.name}), actual {actual}. "
            f"The file is corrupt or was replaced; delete it (and {record.name} if the new file is "
            f"trusted) and download it again")
    log.info("SHA-256 of %s matches its record", path)


def _check_published(path: Path, digest: str, published: str) -> None:
    if not digest.startswith(published.lower()):
        raise DownloadError(
            f"{path}: SHA-256 {digest} does not match the published {published}: the file is corrupt or "
            f"another one; delete it (and {checksum_path(path).name} if present) and download it again")


def verify_size(path: str | os.PathLike, expected: int | None) -> None:
    """Raise :class:`DownloadError` if ``expected`` is given and ``path`` has another size."""
    if expected is None:
        return
    actual = Path(path).stat().st_size
    if actual != expected:
        raise DownloadError(f"{path}: size mismatch: expected {expected} bytes, actual {actual} bytes; "
                            f"delete it and download it again")


def fetch_weights(url: str, cache_dir: str | os.PathLike, *, what: str, error: type[Exception],
                  progress: bool = True, published_sha256: str | None = None, **download_kwargs: Any) -> Path:
    """Pretrained weights at ``cache_dir/<file name of url>``: downloaded (resumably) unless already
    there, then checked against their SHA-256 record (recorded on first use; against
    ``published_sha256``, a digest or its prefix, first when given).

    Every failure is raised as ``error`` naming the file or URL; without network the message says
    where a copy downloaded elsewhere can be placed. ``what`` names the weights in messages.
    """
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise error(f"cannot derive a file name for the {what} from the URL {url!r}")
    dest = Path(cache_dir) / name
    try:
        if not dest.is_file():
            log.info("downloading the %s %s -> %s", what, url, dest)
            download(url, dest, progress=progress, **download_kwargs)
        verify_checksum(dest, published=published_sha256)
    except DownloadNetworkError as e:
        raise error(f"could not download the {what} from {url} ({e}). Without network, download that "
                    f"file elsewhere and put it at {dest}") from e
    except DownloadError as e:
        raise error(str(e)) from e
    return dest


def loaded_file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a model file that was just loaded: its checksum record when it has one (the
    loaders of pretrained weights verify the file against it first, so a multi-GB checkpoint is
    not read twice), else computed."""
    record = checksum_path(path)
    return _read_checksum(record) if record.is_file() else sha256_file(path)
