"""SFZ export: sfzlint (an independent SFZ parser/validator) reads the file without errors, finds
every sample, and its regions are exactly the zones."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from instrumentgen.export.sfz import sfz_text, write_sfz
from instrumentgen.export.zones import plan_zones

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # lark-parser (sfzlint's parser) imports sre_parse
    from sfzlint.parser import SFZValidatorConfig, validate

CELLS = [(40, 25), (40, 100), (52, 50), (64, 100), (64, 127), (76, 25), (90, 127)]


def lint(path: Path) -> tuple[list[str], object]:
    """sfzlint's messages for the SFZ file at ``path`` (sample paths checked) and the parsed SFZ."""
    messages = []

    def on_message(severity, message, token, file_path):
        messages.append(f"{severity} line {token.line}: {message}")

    parsed = validate(path, err_cb=on_message, config=SFZValidatorConfig(file_path=path))
    return messages, parsed


def write_instrument(root: Path, cells=CELLS) -> tuple[Path, list, dict]:
    (root / "samples").mkdir(parents=True)
    samples = {}
    for pitch, velocity in cells:
        rel = f"samples/inst-{pitch:03d}-{velocity:03d}.wav"
        sf.write(root / rel, np.zeros(160), 16000, subtype="PCM_16")
        samples[(pitch, velocity)] = rel
    zones = plan_zones(cells)
    path = write_sfz(root / "inst.sfz", zones, samples, name="test\ninstrument")
    return path, zones, samples


def test_sfzlint_reads_the_file_cleanly_and_regions_match_zones(tmp_path):
    path, zones, samples = write_instrument(tmp_path)
    messages, parsed = lint(path)
    assert messages == []
    regions = parsed.regions
    assert len(regions) == len(zones)
    got = [{k: str(v) for k, v in region.items()} for region in regions]
    want = [{"sample": samples[z.cell], "lokey": str(z.lokey), "hikey": str(z.hikey), "lovel": str(z.lovel),
             "hivel": str(z.hivel), "pitch_keycenter": str(z.keycenter)} for z in zones]
    assert got == want
    (glob,) = [h for h in parsed.headers if h.token == "global"]
    assert float(glob["ampeg_release"]) == pytest.approx(0.3)
    assert str(glob["loop_mode"]) == "no_loop"


def test_sfzlint_catches_a_missing_sample(tmp_path):
    """The oracle checks sample paths: a region whose sample is missing is reported."""
    path, _, samples = write_instrument(tmp_path)
    (tmp_path / samples[(64, 100)]).unlink()
    messages, _ = lint(path)
    assert len(messages) == 1 and "file not found" in messages[0] and "inst-064-100.wav" in messages[0]


def test_text_layout():
    zones = plan_zones([(60, 100)])
    text = sfz_text(zones, {(60, 100): "samples/a.wav"}, name="a", release_s=0.25)
    assert text.splitlines()[-1] == ("<region> sample=samples/a.wav lokey=21 hikey=108 lovel=1 hivel=127 "
                                     "pitch_keycenter=60")
    assert "ampeg_release=0.25" in text


def test_bad_arguments():
    zones = plan_zones([(60, 100)])
    with pytest.raises(KeyError, match=r"\(60, 100\)"):
        sfz_text(zones, {}, name="a")
    with pytest.raises(ValueError, match="relative"):
        sfz_text(zones, {(60, 100): "/abs/a.wav"}, name="a")
    with pytest.raises(ValueError, match="release_s"):
        sfz_text(zones, {(60, 100): "a.wav"}, name="a", release_s=0)
