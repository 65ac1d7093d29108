"""End-to-end fetch of an NSynth split from a loopback HTTP server (or a pre-placed archive)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nsynth_fixtures import ServerConfig, closed_port_url, serve, split_archive_bytes

from instrumentgen.download import DownloadError, checksum_path, sha256_file
from instrumentgen.nsynth import fetch
from instrumentgen.nsynth.archive import ArchiveError

SPLIT = "valid"
NAME = "nsynth-valid.jsonwav.tar.gz"
FAST = {"retries": 1, "timeout": 5, "progress": False, "backoff": 0}


@pytest.fixture()
def archive_bytes(tmp_path: Path) -> bytes:
    return split_archive_bytes(tmp_path / "fixture", SPLIT)


def _dirs(tmp_path: Path) -> dict[str, Path]:
    return {"archive_dir": tmp_path / "downloads", "out_root": tmp_path / "nsynth"}


def test_names() -> None:
    assert fetch.archive_name("train") == "nsynth-train.jsonwav.tar.gz"
    assert fetch.archive_url("http://h/x/", "test") == "http://h/x/nsynth-test.jsonwav.tar.gz"


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'bogus'.*train, valid, test"):
        fetch.fetch_split("bogus", base_url="http://unused", **_dirs(tmp_path))


def test_fetch_then_skip(tmp_path: Path, archive_bytes: bytes) -> None:
    cfg = ServerConfig(files={f"/ds/{NAME}": archive_bytes})
    dirs = _dirs(tmp_path)
    with serve(cfg) as base:
        out = fetch.fetch_split(SPLIT, base_url=base + "/ds", **dirs, **FAST)
        assert out == dirs["out_root"] / "nsynth-valid"
        assert (out / "examples.json").is_file() and len(list((out / "audio").glob("*.wav"))) == 3
        archive = dirs["archive_dir"] / NAME
        assert archive.read_bytes() == archive_bytes
        assert checksum_path(archive).read_text() == f"{sha256_file(archive)}  {NAME}\n"
        n_requests = len(cfg.requests)
        assert fetch.fetch_split(SPLIT, base_url=base + "/ds", **dirs, **FAST) == out
        assert len(cfg.requests) == n_requests


def test_preplaced_archive_needs_no_server(tmp_path: Path, archive_bytes: bytes) -> None:
    dirs = _dirs(tmp_path)
    dirs["archive_dir"].mkdir()
    (dirs["archive_dir"] / NAME).write_bytes(archive_bytes)
    out = fetch.fetch_split(SPLIT, base_url=closed_port_url(), **dirs, **FAST)
    assert (out / "examples.json").is_file()
    assert checksum_path(dirs["archive_dir"] / NAME).exists()


def test_preplaced_archive_with_bad_checksum(tmp_path: Path, archive_bytes: bytes) -> None:
    dirs = _dirs(tmp_path)
    dirs["archive_dir"].mkdir()
    archive = dirs["archive_dir"] / NAME
    archive.write_bytes(archive_bytes)
    checksum_path(archive).write_text(f"{'0' * 64}  {NAME}\n")
    with pytest.raises(DownloadError, match="0" * 64):
        fetch.fetch_split(SPLIT, base_url=closed_port_url(), **dirs, **FAST)
    assert not (dirs["out_root"] / "nsynth-valid").exists()


def test_corrupted_download_leaves_nothing(tmp_path: Path, archive_bytes: bytes) -> None:
    cfg = ServerConfig(files={f"/{NAME}": archive_bytes}, corrupt=True)
    dirs = _dirs(tmp_path)
    with serve(cfg) as base, pytest.raises(ArchiveError, match="truncated or corrupt"):
        fetch.fetch_split(SPLIT, base_url=base, **dirs, **FAST)
    assert os.listdir(dirs["out_root"]) == []
    assert not checksum_path(dirs["archive_dir"] / NAME).exists()  # a corrupt archive is never recorded


def test_good_archive_replaces_a_corrupt_one(tmp_path: Path, archive_bytes: bytes) -> None:
    dirs = _dirs(tmp_path)
    dirs["archive_dir"].mkdir(parents=True, exist_ok=True)
    archive = dirs["archive_dir"] / NAME
    archive.write_bytes(archive_bytes[: len(archive_bytes) // 2])
    with pytest.raises(ArchiveError, match="delete it and download it again"):
        fetch.fetch_split(SPLIT, base_url=closed_port_url(), **dirs, **FAST)
    archive.write_bytes(archive_bytes)  # what the user does after the message
    split_dir = fetch.fetch_split(SPLIT, base_url=closed_port_url(), **dirs, **FAST)
    assert (split_dir / "examples.json").is_file()
    assert checksum_path(archive).read_text().split()[0] == sha256_file(archive)


def test_stale_extraction_folder_is_swept(tmp_path: Path, archive_bytes: bytes) -> None:
    dirs = _dirs(tmp_path)
    stale = dirs["out_root"] / f".nsynth-{SPLIT}.abc123.extract"
    (stale / "junk").mkdir(parents=True)
    dirs["archive_dir"].mkdir(parents=True, exist_ok=True)
    (dirs["archive_dir"] / NAME).write_bytes(archive_bytes)
    fetch.fetch_split(SPLIT, base_url=closed_port_url(), **dirs, **FAST)
    assert os.listdir(dirs["out_root"]) == [f"nsynth-{SPLIT}"]


def test_unreachable_without_archive(tmp_path: Path) -> None:
    base = closed_port_url()
    dirs = _dirs(tmp_path)
    with pytest.raises(DownloadError) as exc:
        fetch.fetch_split(SPLIT, base_url=base, **dirs, **FAST)
    msg = str(exc.value)
    assert f"{base}/{NAME}" in msg and str(dirs["archive_dir"] / NAME) in msg and "tiny" in msg
    assert not (dirs["archive_dir"] / NAME).exists()


def test_cli_unreachable_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _dirs(tmp_path)
    argv = ["--split", SPLIT, "--base-url", closed_port_url(), "--archive-dir", str(dirs["archive_dir"]),
            "--out-root", str(dirs["out_root"]), "--retries", "0", "--timeout", "5", "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        fetch.main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "error: " in err and "tiny" in err and NAME in err


def test_cli_success(tmp_path: Path, archive_bytes: bytes) -> None:
    dirs = _dirs(tmp_path)
    with serve(ServerConfig(files={f"/{NAME}": archive_bytes})) as base:
        fetch.main(["--split", SPLIT, "--base-url", base, "--archive-dir", str(dirs["archive_dir"]),
                    "--out-root", str(dirs["out_root"]), "--no-progress"])
    assert (dirs["out_root"] / "nsynth-valid" / "examples.json").is_file()
