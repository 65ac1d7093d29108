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


def test_excluded_modules_are_not_followed():
    paper = rel(module_files("features/codes.py", exclude=("codec/fitted.py",)))
    assert "codec/fitted.py" not in paper and "codec/dac_codec.py" in paper
    assert "codec/kmeans.py" not in paper  # only reachable through the excluded fitted codec
    assert "features/cache.py" in paper and not any(f.startswith("clap/") for f in paper)
    offline = rel(module_files("features/codes.py", exclude=("codec/dac_codec.py",)))
    assert "codec/kmeans.py" in offline and "codec/dac_codec.py" not in offline


def test_loaded_code_digest_tracks_the_source_of_loaded_modules(tmp_path: Path):
    import importlib.util
    import sys

    from instrumentgen.codedeps import loaded_code_digest

    module = tmp_path / "mod_for_digest.py"
    module.write_text("X = 1\n")
    spec = importlib.util.spec_from_file_location("mod_for_digest", module)
    sys.modules["mod_for_digest"] = importlib.util.module_from_spec(spec)
    try:
        before = loaded_code_digest(package_dir=tmp_path)
        module.write_text("X = 2\n")
        assert loaded_code_digest(package_dir=tmp_path) != before
        assert len(before) == 64
    finally:
        del sys.modules["mod_for_digest"]


@pytest.mark.parametrize(
    "entry",
    ["generate/cli.py", "make.py", "generate/session.py", "listening/cli.py", "companion/__main__.py"],
)
def test_generation_does_not_import_the_training_package(entry: str):
    """Generating from a trained LM needs the LM (instrumentgen.lm), never the trainer: editing the
    training code must not regenerate instruments, and `instrumentgen make` must not load it."""
    files = [f.relative_to(PACKAGE_DIR).as_posix() for f in module_files(entry)]
    assert "lm/checkpoint.py" in files or entry.startswith("companion")
    assert [f for f in files if f.startswith("train/")] == []
