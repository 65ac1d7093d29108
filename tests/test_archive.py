"""Safe, atomic archive extraction."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from nsynth_fixtures import file_member, members_archive_bytes, split_archive_bytes, symlink_member

from instrumentgen.nsynth import metadata
from instrumentgen.nsynth.archive import ArchiveError, safe_extract

TOP = "nsynth-valid"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_good_archive_extracts(tmp_path: Path) -> None:
    archive = _write(tmp_path / "a.tar.gz", split_archive_bytes(tmp_path))
    out = safe_extract(archive, tmp_path / "out", TOP)
    assert out == tmp_path / "out" / TOP
    assert len(metadata.load_examples(out)) == 3
    assert len(list((out / "audio").glob("*.wav"))) == 3
    assert os.listdir(tmp_path / "out") == [TOP]  # no temp dir left behind


def test_existing_destination_is_replaced(tmp_path: Path) -> None:
    archive = _write(tmp_path / "a.tar.gz", split_archive_bytes(tmp_path))
    (tmp_path / "out" / TOP).mkdir(parents=True)
    (tmp_path / "out" / TOP / "stale.txt").write_text("old")
    out = safe_extract(archive, tmp_path / "out", TOP)
    assert not (out / "stale.txt").exists() and (out / "examples.json").is_file()


def test_truncated_archive(tmp_path: Path) -> None:
    data = split_archive_bytes(tmp_path)
    archive = _write(tmp_path / "a.tar.gz", data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupt") as exc:
        safe_extract(archive, tmp_path / "out", TOP)
    assert str(archive) in str(exc.value)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("where", ["middle", "crc"])
def test_corrupt_archive(tmp_path: Path, where: str) -> None:
    data = bytearray(split_archive_bytes(tmp_path))
    if where == "middle":  # garbage inside the deflate stream
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    else:  # intact deflate stream, wrong CRC-32 in the gzip trailer
        data[-8] ^= 0xFF
    archive = _write(tmp_path / "a.tar.gz", bytes(data))
    with pytest.raises(ArchiveError, match="truncated or corrupt.*download it again"):
        safe_extract(archive, tmp_path / "out", TOP)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("member", "name"),
    [
        (file_member("../evil.txt"), "../evil.txt"),
        (file_member(f"{TOP}/../../evil.txt"), f"{TOP}/../../evil.txt"),
        (file_member("/tmp/evil-instrumentgen-test.txt"), "/tmp/evil-instrumentgen-test.txt"),
        (symlink_member(f"{TOP}/link", "../../outside"), f"{TOP}/link"),
        (symlink_member(f"{TOP}/abs", "/etc/passwd"), f"{TOP}/abs"),
    ],
)
def test_unsafe_members_rejected_before_extraction(tmp_path: Path, member, name: str) -> None:
    # A good member comes first: it must not be extracted either.
    members = [file_member(f"{TOP}/examples.json", b"{}"), member]
    parent = tmp_path / "work"
    parent.mkdir()
    archive = _write(tmp_path / "evil.tar.gz", members_archive_bytes(members))
    with pytest.raises(ArchiveError) as exc:
        safe_extract(archive, parent / "out", TOP)
    assert repr(name) in str(exc.value) and str(archive) in str(exc.value)
    assert os.listdir(parent / "out") == []
    assert os.listdir(parent) == ["out"]
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "work"]
    assert not Path("/tmp/evil-instrumentgen-test.txt").exists()


def test_device_member_rejected(tmp_path: Path) -> None:
    info = tarfile.TarInfo(f"{TOP}/dev")
    info.type = tarfile.CHRTYPE
    archive = _write(tmp_path / "dev.tar.gz", members_archive_bytes([(info, None)]))
    with pytest.raises(ArchiveError, match="device"):
        safe_extract(archive, tmp_path / "out", TOP)
    assert os.listdir(tmp_path / "out") == []


def test_inner_symlink_allowed(tmp_path: Path) -> None:
    members = [file_member(f"{TOP}/a.txt", b"hi"), symlink_member(f"{TOP}/b.txt", "a.txt")]
    archive = _write(tmp_path / "ok.tar.gz", members_archive_bytes(members))
    out = safe_extract(archive, tmp_path / "out", TOP)
    assert (out / "b.txt").read_text() == "hi"


def test_wrong_top_folder(tmp_path: Path) -> None:
    archive = _write(tmp_path / "a.tar.gz", split_archive_bytes(tmp_path, top_dir="something-else"))
    with pytest.raises(ArchiveError, match=r"nsynth-valid/.*something-else/"):
        safe_extract(archive, tmp_path / "out", TOP)
    assert os.listdir(tmp_path / "out") == []
