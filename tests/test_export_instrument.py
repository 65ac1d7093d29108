"""export_instrument end to end: a sparse instrument of WAVs becomes a folder with sample copies, an
SFZ (sfzlint-clean), an SF2 (sf2utils reads it), a demo MIDI and its FluidSynth render; bad input
is refused with an error naming the culprit, before anything is written."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import mido
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import instrumentgen.export.instrument as instrument_module
from instrumentgen.codec.quality import midi_to_hz
from instrumentgen.export import ExportError, export_instrument, plan_zones
from instrumentgen.export.render import RenderError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # sf2utils: audioop; sfzlint's lark: sre_parse
    from sf2utils.sf2parse import Sf2File
    from sfzlint.parser import SFZValidatorConfig, validate

SR = 16000
# Some pitches have 3 of 5 velocities, one only 1.
CELLS = [(48, v) for v in (25, 100, 127)] + [(60, v) for v in (25, 50, 75, 100, 127)] + [(72, 100)]


def write_tone(path: Path, pitch: int, velocity: int, sr: int = SR, seconds: float = 0.3,
               channels: int = 1) -> Path:
    t = np.arange(round(seconds * sr)) / sr
    x = velocity / 127 * 0.8 * np.sin(2 * np.pi * midi_to_hz(pitch) * t) * np.exp(-3 * t)
    sf.write(path, np.repeat(x[:, None], channels, axis=1) if channels > 1 else x, sr, subtype="PCM_16")
    return path


def make_cells(root: Path, cells=CELLS, sr: int = SR) -> pd.DataFrame:
    root.mkdir(parents=True, exist_ok=True)
    rows = [{"pitch": p, "velocity": v, "path": str(write_tone(root / f"gen_{p}_{v}.wav", p, v, sr))}
            for p, v in cells]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    cells = make_cells(root / "generated")
    result = export_instrument(cells, "warm pad #1", root / "out")
    return cells, result, root / "out"


def test_folder_layout_and_result(exported):
    cells, result, out = exported
    stem = "warm_pad_1"
    names = {f"samples/{stem}-{p:03d}-{v:03d}.wav" for p, v in CELLS}
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == names | {f"{stem}.sfz", f"{stem}.sf2", "demo.mid", "demo.wav"}
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    json.dumps(result)  # JSON-ready
    assert result["sfz"] == str(out / f"{stem}.sfz") and result["sf2"] == str(out / f"{stem}.sf2")
    assert result["midi"] == str(out / "demo.mid") and result["demo_wav"] == str(out / "demo.wav")
    assert {str(Path(p).relative_to(out)) for p in result["samples"]} == names
    assert (result["n_samples"], result["n_zones"], result["n_pitches"]) == (9, 9, 3)
    assert (result["velocities"], result["sample_rate"]) == ([25, 50, 75, 100, 127], SR)
    for _, row in cells.iterrows():  # samples are byte-for-byte copies
        copy = out / f"samples/{stem}-{row.pitch:03d}-{row.velocity:03d}.wav"
        assert copy.read_bytes() == Path(row.path).read_bytes()


def test_sfz_is_clean_and_maps_every_cell(exported):
    _, result, _ = exported
    messages = []
    sfz_path = Path(result["sfz"])
    parsed = validate(sfz_path, err_cb=lambda sev, msg, tok, fp: messages.append(f"{sev}: {msg}"),
                      config=SFZValidatorConfig(file_path=sfz_path))
    assert messages == []
    zones = plan_zones(CELLS)
    keys = ("sample", "lokey", "hikey", "lovel", "hivel", "pitch_keycenter")
    want = [(f"samples/warm_pad_1-{z.pitch:03d}-{z.velocity:03d}.wav", z.lokey, z.hikey, z.lovel, z.hivel,
             z.pitch) for z in zones]
    assert [tuple(r[k].value for k in keys) for r in parsed.regions] == want


def test_sf2_holds_the_samples(exported):
    cells, result, _ = exported
    sf2 = Sf2File(io.BytesIO(Path(result["sf2"]).read_bytes()))
    assert sf2.info.bank_name == "warm pad #1"
    bags = sf2.presets[0].bags[0].instrument.bags
    assert len(bags) == len(CELLS)
    paths = {(r.pitch, r.velocity): r.path for r in cells.itertuples()}
    for bag, zone in zip(bags, plan_zones(CELLS), strict=True):
        assert (bag.key_range, bag.velocity_range) == ([zone.lokey, zone.hikey], [zone.lovel, zone.hivel])
        pcm, _ = sf.read(paths[zone.cell], dtype="int16")
        assert bag.sample.sample_rate == SR
        assert np.array_equal(np.frombuffer(bag.sample.raw_sample_data, "<i2"), pcm)


def test_demo_midi_and_render(exported):
    _, result, _ = exported
    midi = mido.MidiFile(result["midi"])
    ons = [m for m in midi if m.type == "note_on" and m.velocity > 0]
    assert len(ons) == result["demo_notes"] == 24
    assert {m.velocity for m in ons} == {25, 75, 127} and {m.note for m in ons} >= {48, 72}
    audio, sr = sf.read(result["demo_wav"])
    assert sr == SR and audio.shape[1] == 2
    assert audio.shape[0] / sr >= result["demo_seconds"] + 1.0
    assert 0.01 < np.abs(audio).max() < 1.0


def test_existing_folder_is_refused_unless_overwrite(tmp_path):
    cells = make_cells(tmp_path / "gen", [(60, 100)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_instrument(cells, "x", out)
    assert (out / "keep.txt").read_text() == "mine"
    result = export_instrument(cells, "x", out, overwrite=True)
    assert not (out / "keep.txt").exists() and Path(result["sf2"]).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    export_instrument(cells, "x", empty)  # an empty folder is fine


def test_a_failing_render_leaves_nothing(tmp_path, monkeypatch):
    cells = make_cells(tmp_path / "gen", [(60, 100)])

    def fail(*args, **kwargs):
        raise RenderError("boom")

    monkeypatch.setattr(instrument_module, "render_midi", fail)
    with pytest.raises(RenderError, match="boom"):
        export_instrument(cells, "x", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]


def bad_cells(tmp_path: Path, case: str) -> tuple[pd.DataFrame, str]:
    """Cells with one defect, and a regex the error must match (it names the bad file or value)."""
    cells = make_cells(tmp_path / "gen", [(60, 100), (64, 100)])
    if case == "empty":
        return cells.iloc[:0], "no cells"
    if case == "missing column":
        return cells.drop(columns="path"), r"missing \['path'\]"
    if case == "missing wav":
        Path(cells.path[1]).unlink()
        return cells, "not found: .*gen_64_100.wav"
    if case == "unreadable wav":
        Path(cells.path[1]).write_bytes(b"RIFF garbage")
        return cells, "cannot be read: .*gen_64_100.wav"
    if case == "stereo wav":
        write_tone(Path(cells.path[1]), 64, 100, channels=2)
        return cells, "gen_64_100.wav must be mono"
    if case == "mixed rates":
        write_tone(Path(cells.path[1]), 64, 100, sr=22050)
        return cells, "mixed sample rates: 16000 Hz .*gen_60_100.wav.*22050 Hz .*gen_64_100.wav"
    if case == "pitch":
        cells.loc[1, "pitch"] = 110
        return cells, "gen_64_100.wav: pitch 110"
    if case == "velocity":
        cells.loc[1, "velocity"] = 64
        return cells, "gen_64_100.wav: velocity 64 is not one of"
    if case == "no path":
        cells.loc[1, "path"] = None
        return cells, r"cell \(pitch 64, velocity 100\) has no sample path"
    if case == "duplicate":
        cells.loc[1, "pitch"] = 60
        return cells, "appears twice"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["empty", "missing column", "missing wav", "unreadable wav", "stereo wav",
                                  "mixed rates", "pitch", "velocity", "no path", "duplicate"])
def test_bad_cells_are_refused_before_writing(tmp_path, case):
    cells, message = bad_cells(tmp_path, case)
    with pytest.raises(ExportError, match=message):
        export_instrument(cells, "x", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_name(tmp_path):
    cells = make_cells(tmp_path / "gen", [(60, 100)])
    with pytest.raises(ExportError, match="name"):
        export_instrument(cells, "///", tmp_path / "out")
