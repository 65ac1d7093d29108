"""A real FluidSynth render through an exported SF2: every note sounds at the key played — also keys
between and beyond the sampled pitches, which the sampler must transpose, and with the samples at
another rate than the render — and comes from the velocity layer the zones give it.

FluidSynth must be installed (``make setup`` does it); these tests fail, not skip, without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from instrumentgen.codec.quality import cents_error, median_f0, midi_to_hz
from instrumentgen.export.midi import Note, write_midi
from instrumentgen.export.render import RenderError, render_command, render_midi
from instrumentgen.export.sf2 import Sf2Sample, to_pcm16, write_sf2
from instrumentgen.export.zones import plan_zones

SAMPLE_SR = 16000  # the samples' rate: the render at RENDER_SR must honour the SF2 sample rate
RENDER_SR = 22050
DULL = (1.0, 0.3, 0.0)  # harmonic amplitudes of the loud layer's samples
BRIGHT = (1.0, 0.3, 0.8)  # ... and of the soft layer's: a strong third harmonic tells them apart
LOUD, SOFT = 100, 25
CELLS = {(p, LOUD): DULL for p in (45, 57, 69, 81)} | {(p, SOFT): BRIGHT for p in (50, 74)}
# (key, velocity): sampled keys, keys between samples, beyond the last sample; both layers.
PLAYED = [(k, 110) for k in (45, 48, 52, 57, 63, 69, 75, 81, 86)] + [(k, 30) for k in (47, 55, 62, 70, 79)]


def harmonic_tone(pitch: int, amps: tuple[float, ...], sr: int, seconds: float = 1.0) -> np.ndarray:
    """A decaying harmonic tone ``[T]`` at MIDI ``pitch`` with partial amplitudes ``amps``, peak 0.9."""
    t = np.arange(round(seconds * sr)) / sr
    f0 = midi_to_hz(pitch)
    x = sum(a * np.sin(2 * np.pi * (k + 1) * f0 * t) for k, a in enumerate(amps))
    x = x * np.minimum(1.0, t / 0.005) * np.exp(-1.5 * t)
    return 0.9 * x / np.abs(x).max()


def third_harmonic_ratio(segment: np.ndarray, sr: int, key: int) -> float:
    """Spectral peak near 3·f(key) over the peak near f(key) of ``segment`` ``[T]``."""
    spec = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    freqs = np.fft.rfftfreq(len(segment), 1 / sr)

    def peak(f: float) -> float:
        return float(spec[(freqs > f * 0.97) & (freqs < f * 1.03)].max())

    return peak(3 * midi_to_hz(key)) / peak(midi_to_hz(key))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    zones = plan_zones(CELLS)
    samples = {c: Sf2Sample(to_pcm16(harmonic_tone(c[0], amps, SAMPLE_SR)), SAMPLE_SR)
               for c, amps in CELLS.items()}
    write_sf2(root / "tones.sf2", zones, samples, name="tones")
    notes = [Note(key, vel, 0.6 * i, 0.5) for i, (key, vel) in enumerate(PLAYED)]
    write_midi(root / "notes.mid", notes)
    out = render_midi(root / "tones.sf2", root / "notes.mid", root / "out.wav", sample_rate=RENDER_SR)
    audio, sr = sf.read(out, dtype="float64")
    return notes, audio, sr


def test_render_is_a_stereo_wav_of_the_whole_file(rendered):
    notes, audio, sr = rendered
    assert sr == RENDER_SR and audio.ndim == 2 and audio.shape[1] == 2
    # the MIDI file's 1 s tail, then FluidSynth's own ~2 s
    assert notes[-1].end_s + 1.0 <= audio.shape[0] / sr < notes[-1].end_s + 4.0
    assert 0.05 < np.abs(audio).max() < 1.0


def test_every_note_sounds_at_the_key_played(rendered):
    notes, audio, sr = rendered
    mono = audio.mean(axis=1)
    f0 = [median_f0(mono[round((n.start_s + 0.03) * sr):round(n.end_s * sr)], sr, n.key) for n in notes]
    cents = cents_error(np.array(f0), np.array([n.key for n in notes]))
    bad = [(n.key, n.velocity, c) for n, c in zip(notes, cents, strict=True) if not abs(c) <= 50]
    assert bad == [], f"notes off pitch (key, velocity, cents): {bad}"


def test_velocity_picks_the_layer(rendered):
    notes, audio, sr = rendered
    mono = audio.mean(axis=1)
    for n in notes:
        ratio = third_harmonic_ratio(mono[round((n.start_s + 0.03) * sr):round(n.end_s * sr)], sr, n.key)
        if n.velocity >= 63:  # zones: layer 25 plays velocities 1..62, layer 100 plays 63..127
            assert ratio < 0.1, f"key {n.key} velocity {n.velocity} should play the dull loud layer"
        else:
            assert ratio > 0.4, f"key {n.key} velocity {n.velocity} should play the bright soft layer"


def test_command_matches_the_fluidsynth_cli(tmp_path):
    cmd = render_command(tmp_path / "a.sf2", tmp_path / "a.mid", tmp_path / "o.wav", sample_rate=44100,
                         gain=0.5)
    assert cmd[:4] == ["fluidsynth", "-n", "-i", "-q"]
    assert cmd[cmd.index("-r") + 1] == "44100" and cmd[cmd.index("-g") + 1] == "0.5"
    assert cmd[-3:] == [str(tmp_path / "o.wav"), str(tmp_path / "a.sf2"), str(tmp_path / "a.mid")]


def test_missing_fluidsynth_names_the_debian_package(tmp_path, monkeypatch):
    (tmp_path / "a.sf2").write_bytes(b"x")
    write_midi(tmp_path / "a.mid", [Note(60, 100, 0, 0.1)])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError, match="Debian package 'fluidsynth'"):
        render_midi(tmp_path / "a.sf2", tmp_path / "a.mid", tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()


def test_unreadable_bank_is_an_error_not_silence(tmp_path):
    (tmp_path / "bad.sf2").write_bytes(b"not a soundfont")
    write_midi(tmp_path / "a.mid", [Note(60, 100, 0, 0.1)])
    with pytest.raises(RenderError, match="bad.sf2"):
        render_midi(tmp_path / "bad.sf2", tmp_path / "a.mid", tmp_path / "o.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid", "bad.sf2"]


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="SF2 bank"):
        render_midi(tmp_path / "none.sf2", tmp_path / "none.mid", tmp_path / "o.wav")
    (tmp_path / "a.sf2").write_bytes(b"x")
    (tmp_path / "a.mid").write_bytes(b"x")
    with pytest.raises(ValueError, match="sample_rate"):
        render_midi(tmp_path / "a.sf2", tmp_path / "a.mid", tmp_path / "o.wav", sample_rate=4000)
    with pytest.raises(ValueError, match="gain"):
        render_midi(tmp_path / "a.sf2", tmp_path / "a.mid", tmp_path / "o.wav", gain=0)
