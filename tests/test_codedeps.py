"""codedeps: the source files a pipeline step runs, found by following its imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from instrumentgen.codedeps import PACKAGE_DIR, module_files


def rel(paths: list[Path]) -> set[str]:
    return {str(p.relative_to(PACKAGE_DIR)) for p in paths}


def test_follows_imports_transitively():
    files = rel(module_files("data/resample.py"))
    assert {"data/resample.py", "data/audio_io.py", "data/manifest.py", "data/store.py", "atomic.py",
            "progress.py", "__init__.py", "data/__init__.py"} <= files
    assert "download.py" not in files and "synth/dsp.py" not in files and "nsynth/fetch.py" not in files


def test_package_folder_and_no_follow():
    assert rel(module_files("nsynth/fetch.py", follow_imports=False)) == {"nsynth/fetch.py"}
    synth = rel(module_files("synth"))
    assert {"synth/families.py", "synth/dsp.py", "nsynth/metadata.py", "atomic.py"} <= synth


def test_from_import_of_a_module(tmp_path: Path):
    pkg = tmp_path / "instrumentgen"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("X = 1\n")
    (pkg / "entry.py").write_text("from instrumentgen.sub import leaf\nimport os\n")
    assert {p.relative_to(pkg).as_posix() for p in module_files("entry.py", package_dir=pkg)} == {
        "entry.py", "__init__.py", "sub/__init__.py", "sub/leaf.py"}


def test_missing_module_named():
    with pytest.raises(FileNotFoundError, match="data/nope.py"):
        module_files("data/nope.py")
