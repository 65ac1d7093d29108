"""Parameters: profiles merge over params.yaml, validate against the schema, fill defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from instrumentgen.config import (
    REPO_ROOT,
    ParamsError,
    available_profiles,
    check_profile_overlays,
    deep_merge,
    load_profile,
    validate_params,
)
from instrumentgen.workspace import make_workspace, snakemake


def paper() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("name", ["paper", "tiny", "ci"])
def test_shipped_profiles_validate(name):
    params = load_profile(name)
    assert params["profile"] == name
    assert 21 <= params["data"]["pitch_min"] <= params["data"]["pitch_max"] <= 108


def test_profiles_listed():
    assert {"paper", "tiny", "ci"} <= set(available_profiles())


def test_offline_profiles_resample_to_another_rate():
    for name in ("tiny", "ci"):
        params = load_profile(name)
        assert params["data"]["source"] == "synthetic"
        assert params["resample"]["target_rate"] != params["data"]["sample_rate"]
    assert load_profile("paper")["resample"]["target_rate"] == 44100


def test_defaults_filled():
    params = validate_params({"profile": "ci", "data": {"source": "synthetic"}})
    assert params["data"]["velocities"] == [25, 50, 75, 100, 127]
    assert params["resample"] == {"target_rate": 44100, "quality": "HQ", "chunk_notes": 512}
    assert params["variants"] == ["baseline", "random", "fixed", "magnet"]


def test_partial_instrument_counts_named():
    with pytest.raises(ParamsError, match=r"synthetic\.instruments_per_family = \{'train': 2\}.*'valid'"):
        validate_params({"profile": "ci", "data": {"source": "synthetic"},
                         "synthetic": {"instruments_per_family": {"train": 2}}})


def test_deep_merge_overlays_nested_keys():
    merged = deep_merge({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"c": 3}, "l": [9]})
    assert merged == {"a": {"b": 1, "c": 3}, "l": [9]}


def test_unknown_profile_names_known_ones():
    with pytest.raises(ParamsError, match=r"unknown profile 'huge'.*ci.*paper.*tiny"):
        load_profile("huge")


@pytest.mark.parametrize(
    ("overlay", "pattern"),
    [
        ({"data": {"pitch_max": 120}}, r"data\.pitch_max = 120.*maximum of 108"),
        ({"data": {"pitch_min": 9}}, r"data\.pitch_min = 9.*minimum of 21"),
        ({"data": {"velocities": [25, 30]}}, r"data\.velocities\.1 = 30"),
        ({"variants": ["baseline", "huge"]}, r"variants\.1 = 'huge'"),
        ({"profile": "Nightly build"}, r"profile = 'Nightly build'"),
        ({"resample": {"quality": "best"}}, r"resample\.quality = 'best'"),
        ({"data": {"pitch_typo": 3}}, r"pitch_typo"),
        ({"data": {"pitch_min": 60, "pitch_max": 50}}, r"pitch_min = 60 is above data\.pitch_max = 50"),
        ({"data": {"source": "synthetic"}}, r"paper profile needs data\.source = 'nsynth'"),
        ({"resample": {"target_rate": 24000}}, r"codec\.kind = 'dac' \(44\.1 kHz\) needs"),
    ],
)
def test_bad_params_named(overlay, pattern):
    with pytest.raises(ParamsError, match=pattern):
        validate_params(deep_merge(paper(), overlay))


@pytest.mark.slow  # Snakemake subprocesses (~2 s)
def test_snakemake_rejects_bad_params_before_any_job(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    overlay = ws / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["data"]["velocities"] = [50, 64]
    overlay.write_text(yaml.safe_dump(params))
    proc = snakemake(ws, "-n", profile="ci", check=False)
    assert proc.returncode != 0
    assert "data.velocities.1 = 64" in proc.stdout + proc.stderr
    assert not (ws / "data").exists()


def test_overlay_must_name_its_profile(tmp_path: Path):
    check_profile_overlays("tiny", ["workflow/profiles/tiny/params.yaml"])
    with pytest.raises(ParamsError, match=r"belongs to profile 'mine'.*set `profile: mine`"):
        check_profile_overlays("paper", ["/x/workflow/profiles/mine/params.yaml"])


@pytest.mark.slow  # a Snakemake subprocess (~2 s)
def test_snakemake_refuses_an_overlay_that_would_write_into_paper(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    shutil.copytree(ws / "workflow/profiles/ci", ws / "workflow/profiles/mine")
    overlay = ws / "workflow/profiles/mine/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    del params["profile"]
    overlay.write_text(yaml.safe_dump(params))
    proc = snakemake(ws, "-n", profile="mine", check=False)
    assert proc.returncode != 0 and "set `profile: mine`" in proc.stdout + proc.stderr


@pytest.mark.slow  # a Snakemake subprocess (~2 s)
def test_snakemake_unknown_workflow_profile(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    shutil.rmtree(ws / "workflow/profiles/ci")
    proc = snakemake(ws, "-n", profile="ci", check=False)
    assert proc.returncode != 0
    assert "profile directory given (workflow/profiles/ci)" in proc.stderr


def test_validated_params_do_not_depend_on_key_order():
    """Snakemake compares dict params with their key order: reordering an overlay must change nothing."""
    params = load_profile("ci")
    reordered = {key: params[key] for key in reversed(list(params))}
    reordered["clap"] = {**params["clap"], "small": dict(reversed(list(params["clap"]["small"].items())))}
    a, b = validate_params(params), validate_params(reordered)
    assert a == b and repr(a) == repr(b)
    assert list(a["clap"]["small"]) == sorted(a["clap"]["small"])
