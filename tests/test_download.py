"""Resumable download and checksum records, against a real loopback HTTP server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nsynth_fixtures import ServerConfig, closed_port_url, serve

from instrumentgen.download import (
    DownloadError,
    DownloadNetworkError,
    checksum_path,
    download,
    loaded_file_digest,
    record_checksum,
    sha256_file,
    verify_checksum,
    verify_size,
)

DATA = os.urandom(200_000)
PATH = "/files/blob.bin"
FAST = {"retries": 2, "timeout": 5, "progress": False, "backoff": 0, "chunk_size": 8192}


def _config(**kwargs) -> ServerConfig:
    """A server config serving :data:`DATA` at :data:`PATH`."""
    return ServerConfig(files={PATH: DATA}, **kwargs)


def test_plain_download(tmp_path: Path) -> None:
    cfg = _config()
    with serve(cfg) as base:
        out = download(base + PATH, tmp_path / "sub" / "blob.bin", **FAST)
    assert out.read_bytes() == DATA
    assert not (tmp_path / "sub" / "blob.bin.part").exists()
    assert len(cfg.gets()) == 1 and "Range" not in cfg.gets()[0]


def test_resume_after_dropped_connection(tmp_path: Path) -> None:
    cut = 70_000
    cfg = _config(drop_after=cut)
    with serve(cfg) as base:
        out = download(base + PATH, tmp_path / "blob.bin", **FAST)
    assert out.read_bytes() == DATA
    gets = cfg.gets()
    assert len(gets) == 2
    assert "Range" not in gets[0]
    assert gets[1]["Range"] == f"bytes={cut}-"


def test_resume_after_connection_reset(tmp_path: Path) -> None:
    cfg = _config(drop_after=70_000, drop_reset=True)
    with serve(cfg) as base:
        out = download(base + PATH, tmp_path / "blob.bin", **FAST)
    assert out.read_bytes() == DATA
    assert len(cfg.gets()) == 2


def test_resume_from_existing_part(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(DATA[:12_345])
    cfg = _config()
    with serve(cfg) as base:
        download(base + PATH, dest, **FAST)
    assert dest.read_bytes() == DATA
    assert [g.get("Range") for g in cfg.gets()] == ["bytes=12345-"]


def test_complete_part_is_finalised_on_416(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(DATA)
    with serve(_config()) as base:
        download(base + PATH, dest, **FAST)
    assert dest.read_bytes() == DATA and not (tmp_path / "blob.bin.part").exists()


def test_oversized_part_restarts(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(DATA + b"junk")
    with serve(_config()) as base:
        download(base + PATH, dest, **FAST)
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(b"garbage" * 100)
    cfg = _config(ignore_range=True)
    with serve(cfg) as base:
        download(base + PATH, dest, **FAST)
    assert dest.read_bytes() == DATA
    assert len(cfg.gets()) == 1 and cfg.gets()[0]["Range"] == "bytes=700-"


def test_404_is_download_error_without_retry(tmp_path: Path) -> None:
    cfg = _config(status=404)
    with serve(cfg) as base, pytest.raises(DownloadError, match="404") as exc:
        download(base + PATH, tmp_path / "blob.bin", **FAST)
    assert base + PATH in str(exc.value)
    assert not isinstance(exc.value, DownloadNetworkError)
    assert len(cfg.gets()) == 1
    assert not (tmp_path / "blob.bin").exists()


def test_connection_refused(tmp_path: Path) -> None:
    url = closed_port_url() + PATH
    with pytest.raises(DownloadNetworkError) as exc:
        download(url, tmp_path / "blob.bin", **FAST)
    assert url in str(exc.value) and "refused" in str(exc.value).lower()
    assert not (tmp_path / "blob.bin").exists()


def test_drops_with_progress_do_not_use_up_retries(tmp_path: Path) -> None:
    cfg = _config(drop_after=1000, drop_gets=3 * (FAST["retries"] + 1))
    with serve(cfg) as base:
        download(base + PATH, tmp_path / "blob.bin", **FAST)
    assert (tmp_path / "blob.bin").read_bytes() == DATA
    assert len(cfg.gets()) == 3 * (FAST["retries"] + 1) + 1


def test_gives_up_after_retries_without_progress(tmp_path: Path) -> None:
    cfg = _config(drop_after=0, drop_gets=99)
    with serve(cfg) as base, pytest.raises(DownloadError, match=f"of {len(DATA)} bytes") as exc:
        download(base + PATH, tmp_path / "blob.bin", **FAST)
    assert base + PATH in str(exc.value) and "without progress" in str(exc.value)
    assert len(cfg.gets()) == FAST["retries"] + 1
    assert not (tmp_path / "blob.bin").exists()


def test_verify_size(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    verify_size(f, 3)
    verify_size(f, None)
    with pytest.raises(DownloadError, match="expected 4 bytes, actual 3"):
        verify_size(f, 4)


def test_checksum_record_and_verify(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(DATA)
    digest = sha256_file(f)
    assert record_checksum(f) == digest
    assert checksum_path(f).read_text() == f"{digest}  x.bin\n"
    verify_checksum(f)


def test_checksum_recorded_on_first_use(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(DATA)
    verify_checksum(f)
    assert checksum_path(f).read_text().split() == [sha256_file(f), "x.bin"]


def test_tampered_file_fails_checksum(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(DATA)
    expected = record_checksum(f)
    f.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 0xFF]))
    actual = sha256_file(f)
    with pytest.raises(DownloadError) as exc:
        verify_checksum(f)
    msg = str(exc.value)
    assert str(f) in msg and expected in msg and actual in msg


def test_loaded_file_digest_uses_the_record_when_present(tmp_path: Path) -> None:
    f = tmp_path / "model.npz"
    f.write_bytes(b"abc")
    assert loaded_file_digest(f) == sha256_file(f)  # no record: computed
    digest = record_checksum(f)
    assert loaded_file_digest(f) == digest
