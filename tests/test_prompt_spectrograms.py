"""The T2I spectrogram figure: which notes it draws (nearest cells, real notes of the named family),
the spectrogram itself (a sine's energy at its frequency), and the files the CLI writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from instrumentgen.metrics.prompt_spectrograms import log_spectrogram, main, nearest_cell, plan_panels

RATE = 16000


def write_note(path: Path, freq: float, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t), RATE)
    return path


def test_nearest_cell_prefers_pitch_then_velocity():
    cells = pd.DataFrame({"pitch": [48, 48, 50, 60], "velocity": [25, 127, 100, 127]})
    assert tuple(nearest_cell(cells, 49, 127)[["pitch", "velocity"]]) == (48, 127)
    assert tuple(nearest_cell(cells, 59, 25)[["pitch", "velocity"]]) == (60, 127)


def test_a_sine_lights_its_own_frequency_band():
    t = np.arange(RATE) / RATE
    db, freqs, times = log_spectrogram(np.sin(2 * np.pi * 440 * t), RATE)
    assert db.shape == (len(freqs), len(times)) and db.max() == 0 and db.min() >= -80
    assert abs(freqs[int(np.argmax(db.mean(axis=1)))] - 440) < RATE / 1024
    assert freqs.max() <= 8000 and times[-1] <= 1.0


@pytest.fixture
def notes(tmp_path: Path):
    generated = pd.DataFrame(
        [
            {"instrument": pid, "pitch": p, "velocity": 127,
             "path": str(write_note(tmp_path / f"{pid}-{p}.wav", f))}
            for pid, f in (("flute_prompt", 300.0), ("pad_prompt", 500.0))
            for p in (48, 72)
        ]
    )
    real = pd.DataFrame(
        [
            {"instrument_str": name, "instrument_family_str": family, "pitch": p, "velocity": v,
             "path": str(write_note(tmp_path / f"{name}-{p}-{v}.wav", 700.0))}
            for name, family in (("flute_b", "flute"), ("flute_a", "flute"), ("bass_a", "bass"))
            for p, v in ((47, 100), (71, 127))
        ]
    )
    prompts = {"flute_prompt": "an airy flute", "pad_prompt": "a warm pad"}
    return generated, real, prompts


def test_rows_are_the_prompts_that_name_a_family_with_the_real_notes_of_that_family(notes):
    generated, real, prompts = notes
    titles, columns, rows = plan_panels({"baseline": generated}, prompts, real, [48, 72], 127)
    assert titles == ["“an airy flute” → flute"]  # the pad names no family: not drawn
    assert columns == ["baseline · MIDI 48", "real · MIDI 48", "baseline · MIDI 72", "real · MIDI 72"]
    (row,) = rows
    assert [p.path.name for p in row] == [
        "flute_prompt-48.wav", "flute_a-47-100.wav", "flute_prompt-72.wav", "flute_a-71-127.wav"
    ]


def test_nothing_to_draw_and_a_missing_prompt_are_errors(notes):
    generated, real, prompts = notes
    with pytest.raises(ValueError, match="nothing to draw"):
        plan_panels({"baseline": generated}, {"pad_prompt": "a warm pad"}, real, [48], 127)
    with pytest.raises(ValueError, match="no generated notes for prompt 'flute_prompt'"):
        plan_panels({"baseline": generated[generated.instrument != "flute_prompt"]}, prompts, real, [48], 127)


def test_cli_writes_png_and_svg(notes, tmp_path: Path):
    generated, real, _ = notes
    manifest = tmp_path / "gen" / "manifest.parquet"
    manifest.parent.mkdir()
    generated.assign(path=[str(Path(p).resolve()) for p in generated["path"]]).to_parquet(manifest)
    real_path = tmp_path / "test.parquet"
    real.to_parquet(real_path)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(
        "version: 1\nprompts:\n"
        "  - {id: flute_prompt, source: ours, text: an airy flute}\n"
        "  - {id: pad_prompt, source: ours, text: a warm pad}\n"
    )
    out = tmp_path / "fig" / "t2i_spectrograms.png"
    main(["--generated", f"baseline={manifest}", "--prompts", str(prompts), "--real", str(real_path),
          "--out", str(out)])
    assert out.stat().st_size > 1000 and out.with_suffix(".svg").stat().st_size > 1000
