"""codec.quality (pitch kept, mel distance) and the fit / evaluate command lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_codec_support import SR, render_notes, write_store

from instrumentgen.codec import evaluate, fit, quality
from instrumentgen.codec.fitted import FittedCodec


def _sines(pitches: list[int], cents: float = 0.0, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return np.stack([0.4 * np.sin(2 * np.pi * quality.midi_to_hz(p + cents / 100) * t) for p in pitches]
                    ).astype(np.float32)


def test_pitch_accuracy_on_tones() -> None:
    pitches = [36, 60, 96]
    exact, off = _sines(pitches), _sines(pitches, cents=100)
    report = quality.pitch_accuracy(exact, off, SR, pitches)
    assert report["original"]["share_within"] == 1.0 and report["original"]["n_within"] == 3
    assert report["reconstruction"]["share_within"] == 0.0
    assert all(abs(c - 100) < 20 for c in report["per_note_cents"]["reconstruction"])
    near = quality.pitch_accuracy(exact, _sines(pitches, cents=30), SR, pitches)
    assert near["reconstruction"]["share_within"] == 1.0


def test_silence_counts_as_unvoiced_miss() -> None:
    x = _sines([60, 72])
    y = x.copy()
    y[1] = 0.0
    report = quality.pitch_accuracy(x, y, SR, [60, 72])
    assert report["reconstruction"]["n_unvoiced"] == 1
    assert report["reconstruction"]["share_within"] == 0.5
    assert report["per_note_cents"]["reconstruction"][1] is None


def test_mel_distance() -> None:
    x = _sines([60, 64])
    same = quality.mel_distance(x, x, SR)
    assert same["mean"] == 0.0 and set(same) == {"mean", "n_fft_512", "n_fft_1024", "n_fft_2048"}
    other = quality.mel_distance(x, _sines([67, 71]), SR)["mean"]
    assert other > 0
    noise = np.random.default_rng(0).normal(0, 0.3, x.shape).astype(np.float32)
    quieter = quality.mel_distance(noise, 0.5 * noise, SR)["mean"]
    assert quieter == pytest.approx(math.log10(4), rel=1e-3)  # -6 dB of power in every band
    with pytest.raises(ValueError, match="differ in shape"):
        quality.mel_distance(x, x[:, :-1], SR)
    with pytest.raises(ValueError, match="differ in shape"):
        quality.pitch_accuracy(x, x[:1], SR, [60, 64])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small train store and a test store (with notes outside MIDI 36..96) in the store format."""
    root = tmp_path_factory.mktemp("stores")
    audio, pitches, families = render_notes(seed=5, per_family=10)
    train = write_store(root / "train", audio, pitches, families)
    audio, pitches, families = render_notes(seed=6, per_family=1, pitch_range=(30, 100))
    test = write_store(root / "test", audio, pitches, families)
    return train, test


def test_fit_and_evaluate_command_lines(stores: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = stores
    out = tmp_path / "codec.npz"
    fit.main(["--store", str(train), "--out", str(out), "--n-codebooks", "2", "--codebook-size", "16",
              "--seed", "1234", "--max-frames", "2000", "--max-epochs", "5"])
    codec = FittedCodec.load(out)
    assert (codec.n_codebooks, codec.codebook_size, codec.sample_rate, codec.phase_seed) == (2, 16, SR, 1234)

    report_path = tmp_path / "results" / "codec_quality.json"
    evaluate.main(["--codec", str(out), "--store", str(test), "--out", str(report_path), "--max-notes", "4",
                   "--n-codebooks", "2"])
    report = json.loads(report_path.read_text())
    assert report["pitch_range_midi"] == [36, 96] and "36..96" in report["selection"]
    assert report["n_notes_evaluated"] == 4 and report["target_share"] == 0.95
    for which in ("reconstruction", "original"):
        assert report[which]["n_notes"] == 4
        assert 0 <= report[which]["share_within"] <= 1
    assert report["mel_distance"]["mean"] > 0
    assert report["timing"]["encode_s_per_note"] > 0 and report["timing"]["decode_s_per_note"] > 0
    assert sum(f["n_notes"] for f in report["by_family"].values()) == 4
    assert report["meets_target"] == (report["reconstruction"]["share_within"] >= 0.95)


def test_select_notes_keeps_the_tracker_range(stores: tuple[Path, Path]) -> None:
    from instrumentgen.data.store import open_store

    store = open_store(stores[1])
    pitch = store.index["pitch"].to_numpy()
    assert (pitch < 36).any() or (pitch > 96).any()
    rows = evaluate.select_notes(store, (36, 96), None, 0)
    assert set(rows) == set(np.flatnonzero((pitch >= 36) & (pitch <= 96)))
    some = evaluate.select_notes(store, (36, 96), 3, 0)
    assert len(some) == 3 and set(some) <= set(rows)
    assert np.array_equal(some, evaluate.select_notes(store, (36, 96), 3, 0))


def test_command_line_errors(stores: tuple[Path, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        fit.main(["--store", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c.npz")])
    assert "nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--codec", str(tmp_path / "absent.npz"), "--store", str(stores[1]),
                       "--out", str(tmp_path / "q.json")])
    assert "absent.npz" in capsys.readouterr().err
    codec = tmp_path / "c16k.npz"
    FittedCodec(np.zeros((4, 2, 513), np.float32), sample_rate=16000).save(codec)
    with pytest.raises(SystemExit):
        evaluate.main(["--codec", str(codec), "--store", str(stores[1]), "--out", str(tmp_path / "q.json")])
    assert "16000 Hz" in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()
