"""The listening-test kit: stimulus selection, loudness normalisation, and the webMUSHRA config checked
against webMUSHRA's documented page types and keys (doc/experimenter.md of audiolabs/webMUSHRA)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile as sf
import yaml

from instrumentgen.listening.kit import Audio, build_kit, normalise
from instrumentgen.listening.selection import mos_prompts, mushra_trials
from instrumentgen.listening.table4 import KitSpec

VARIANTS = ["baseline", "random", "fixed", "magnet"]
RATE = 24000

# webMUSHRA's documented keys per page type (doc/experimenter.md); "random" lists are randomised groups.
TOP_KEYS = {
    "testname", "testId", "bufferSize", "stopOnErrors", "showButtonPreviousPage", "remoteService", "pages"
}
PAGE_KEYS = {
    "generic": ({"type", "id", "name", "content"}, set()),
    "mushra": (
        {"type", "id", "name", "content", "reference", "stimuli"},
        {"showWaveform", "enableLooping", "strict", "createAnchor35", "createAnchor70", "randomize",
         "switchBack"},
    ),
    "likert_single_stimulus": (
        {"type", "id", "name", "content", "stimuli", "response"},
        {"showWaveform", "mustRate", "mustPlayback", "maxStimuli", "randomize"},
    ),
    "finish": ({"type", "name", "content"}, {"showResults", "writeResults", "questionnaire"}),
}
BUFFER_SIZES = {256, 512, 1024, 2048, 4096, 8192, 16384}


def tone(freq: float, seconds: float, amplitude: float, rate: int = RATE) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def cells(instruments: int, pitches=range(36, 96, 6), velocities=(25, 100)) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"inst_{i}", p, v) for i in range(instruments) for p in pitches for v in velocities],
        columns=["instrument", "pitch", "velocity"],
    )


def test_mushra_trials_are_seeded_balanced_and_leave_the_queries_out():
    pool = cells(4)
    queries = pool.groupby("instrument").head(1)
    trials = mushra_trials(pool, queries, 12, seed=3)
    assert list(trials["trial"]) == [f"s2i_{i:02d}" for i in range(12)]
    assert trials["instrument"].value_counts().tolist() == [3, 3, 3, 3]  # round robin
    assert trials["band"].value_counts().tolist() == [4, 4, 4]  # low / mid / high in turn
    assert not trials.merge(queries, on=["instrument", "pitch", "velocity"]).shape[0]
    assert not trials.duplicated(["instrument", "pitch", "velocity"]).any()
    assert trials.equals(mushra_trials(pool, queries, 12, seed=3))
    assert not trials.equals(mushra_trials(pool, queries, 12, seed=4))
    small = cells(1, pitches=[40, 60], velocities=[25, 100])
    with pytest.raises(ValueError, match="only 3 generated non-query cells"):
        mushra_trials(small, small.iloc[:1], 4, seed=0)


def test_mos_prompts_are_a_seeded_subset():
    prompts = [f"p{i}" for i in range(10)]
    chosen = mos_prompts(prompts, 4, seed=1)
    assert len(set(chosen)) == 4 and set(chosen) <= set(prompts) and chosen == mos_prompts(prompts, 4, seed=1)
    assert sorted(mos_prompts(prompts, 50, seed=1)) == sorted(prompts)


def test_normalise_reaches_the_target_loudness_without_clipping():
    meter = pyloudnorm.Meter(RATE)
    quiet, lufs = normalise(tone(440, 1.0, 0.01), -23.0)
    assert lufs == pytest.approx(-23.0, abs=0.01)
    assert meter.integrated_loudness(quiet.astype(np.float64)) == pytest.approx(-23.0, abs=0.1)
    loud, lufs = normalise(tone(440, 1.0, 0.01), -3.0)  # would clip: held to a 0.99 peak
    assert np.abs(loud).max() == pytest.approx(0.99, abs=1e-3) and lufs < -3.0
    silent, lufs = normalise(Audio(np.zeros(RATE, np.float32), RATE), -23.0)
    assert lufs == float("-inf") and not silent.any()


@pytest.fixture
def kit(tmp_path: Path) -> tuple[Path, dict]:
    mushra = {
        f"s2i_{i:02d}": {
            "reference": tone(220 * (i + 1), 1.0, 0.5),
            **{v: tone(220 * (i + 1), 0.96 + 0.02 * j, 0.05 * (j + 1)) for j, v in enumerate(VARIANTS)},
            "anchor": tone(3000, 1.0, 0.3),
        }
        for i in range(3)
    }
    mos = {p: {v: tone(330, 2.0, 0.2) for v in VARIANTS} for p in ("bright_guitar", "dark_bass")}
    notes = {t: {"instrument": "inst_0", "pitch": 60, "velocity": 100} for t in mushra}
    out = tmp_path / "kit"
    return out, build_kit(out, "instrumentgen_test", mushra, mos, VARIANTS, "anchor", -23.0, notes)


def test_kit_config_uses_only_webmushras_documented_pages_and_keys(kit):
    out, manifest = kit
    config = yaml.safe_load((out / manifest["config"]).read_text())
    assert set(config) == TOP_KEYS and config["bufferSize"] in BUFFER_SIZES
    pages = []
    for entry in config["pages"]:
        if isinstance(entry, list):
            assert entry[0] == "random"
            pages += entry[1:]
        else:
            pages.append(entry)
    assert pages[-1]["type"] == "finish" and [p["type"] for p in pages].count("finish") == 1
    # webMUSHRA's write.php sizes lss.csv's rating columns from the first stored trial's response: the
    # first rated page must be a likert_single_stimulus one (see listening/kit.py)
    rated = [p["type"] for p in pages if p["type"] in ("mushra", "likert_single_stimulus")]
    assert rated[0] == "likert_single_stimulus" and set(rated[: len(manifest["mos"]["trials"])]) == {rated[0]}
    for page in pages:
        required, optional = PAGE_KEYS[page["type"]]
        assert required <= set(page) <= required | optional, page["type"]
    mushra = [p for p in pages if p["type"] == "mushra"]
    lss = [p for p in pages if p["type"] == "likert_single_stimulus"]
    assert [p["id"] for p in mushra] == manifest["mushra"]["trials"]
    assert [p["id"] for p in lss] == manifest["mos"]["trials"]
    for page in mushra:
        assert set(page["stimuli"]) == {*VARIANTS, "anchor"} and "reference" not in page["stimuli"]
        assert not page["createAnchor35"] and not page["createAnchor70"]
    for page in lss:
        assert set(page["stimuli"]) == set(VARIANTS)
        assert [[r["value"] for r in scale] for scale in page["response"]] == [["1", "2", "3", "4", "5"]] * 2
    questionnaire = pages[-1]["questionnaire"]
    assert {"participant"} <= {q["name"] for q in questionnaire} and pages[-1]["writeResults"]


def test_kit_files_exist_match_in_length_and_loudness(kit):
    out, manifest = kit
    config = yaml.safe_load((out / manifest["config"]).read_text())
    mushra_pages = [p for p in config["pages"][2][1:] if p["type"] == "mushra"]
    assert len(mushra_pages) == 3
    for page in mushra_pages:
        infos = [sf.info(out / path) for path in [page["reference"], *page["stimuli"].values()]]
        assert {(i.samplerate, i.frames, i.channels) for i in infos} == {(RATE, RATE, 1)}  # one shape a page
    meter = pyloudnorm.Meter(RATE)
    for rel, lufs in manifest["loudness_lufs"].items():
        audio, rate = sf.read(out / rel)
        assert lufs == pytest.approx(-23.0, abs=0.05)
        assert meter.integrated_loudness(audio) == pytest.approx(-23.0, abs=0.3)  # after 16-bit PCM
    spec = KitSpec.read(out / "kit.json")  # what Table 4's analysis reads
    assert spec.mushra_conditions == VARIANTS and spec.anchor == "anchor" and len(spec.mos_trials) == 2
    assert "webMUSHRA" in (out / "README.md").read_text()
    assert json.loads((out / "kit.json").read_text())["mushra"]["notes"]["s2i_00"]["pitch"] == 60


def test_kit_refuses_a_trial_that_lacks_a_condition(tmp_path: Path):
    mushra = {"s2i_00": {"reference": tone(220, 1, 0.5), **{v: tone(220, 1, 0.1) for v in VARIANTS[:3]}}}
    with pytest.raises(ValueError, match="MUSHRA trial s2i_00 lacks anchor, magnet"):
        mos = {"p": {v: tone(1, 1, 1) for v in VARIANTS}}
        build_kit(tmp_path, "t", mushra, mos, VARIANTS, "anchor", -23.0)
