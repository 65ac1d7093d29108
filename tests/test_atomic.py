"""Atomic writes: a failed write leaves neither a partial target nor temporary files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from instrumentgen.atomic import atomic_dir, atomic_path, write_json_atomic


def test_atomic_path_success_and_failure(tmp_path: Path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_dir_replaces_only_on_success(tmp_path: Path):
    target = tmp_path / "split"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise ValueError
    assert [p.name for p in target.iterdir()] == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


def test_write_json_atomic(tmp_path: Path):
    write_json_atomic(tmp_path / "x.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "x.json").read_text().startswith('{\n  "a"')


def test_outputs_get_the_umask_permissions_not_private_ones(tmp_path: Path):
    """tempfile makes private files and folders; the outputs must be readable as a plain write's are
    (a web server serving the companion page, a colleague on a shared cluster)."""
    from instrumentgen.atomic import current_umask

    umask = current_umask()
    assert umask == os.umask(umask)  # what the process has
    write_json_atomic(tmp_path / "a.json", {"a": 1})
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "x").write_text("x")
    plain = tmp_path / "plain"
    plain.write_text("p")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask
