"""resample + store: exact lengths, pitch kept, no clipping, resumable, readable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import soxr
from conftest import write_nsynth_split

from instrumentgen.data import resample as resample_mod
from instrumentgen.data.manifest import write_table
from instrumentgen.data.prune import prune_split
from instrumentgen.data.resample import ResampleError, resample_note, resample_split, resampled_length
from instrumentgen.data.store import AudioStore, StoreError, open_store, quantize

SECONDS = 0.25


@pytest.fixture
def manifest(small_split: Path, tmp_path: Path) -> Path:
    table, _ = prune_split(small_split, note_seconds=SECONDS, progress=False)
    out = tmp_path / "manifest.parquet"
    write_table(table, out)
    return out


_REAL_PROCESS_CHUNK = resample_mod._process_chunk


def interrupt_at_row(monkeypatch, row: int) -> None:
    """Make resampling raise KeyboardInterrupt (a kill) when it reaches the chunk starting at ``row``."""
    real = _REAL_PROCESS_CHUNK

    def dies(*args):
        if args[1] >= row:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(resample_mod, "_process_chunk", dies)


def count_chunks(monkeypatch) -> list[int]:
    """Record the start row of every chunk resampled from now on."""
    calls: list[int] = []
    real = _REAL_PROCESS_CHUNK
    monkeypatch.setattr(resample_mod, "_process_chunk", lambda *a: calls.append(a[1]) or real(*a))
    return calls


def run(manifest: Path, out: Path, **kw) -> AudioStore:
    kw = {"target_rate": 24000, "note_seconds": SECONDS, "progress": False, **kw}
    resample_split(manifest, out / "train.npy", out / "train.parquet", **kw)
    return open_store(out / "train")


@pytest.mark.parametrize(("n", "rate_in", "rate_out"), [(64000, 16000, 44100), (16000, 16000, 24000),
                                                        (4000, 16000, 22050)])
def test_resample_note_length(n, rate_in, rate_out):
    expected = int(np.floor(n * rate_out / rate_in + 0.5))
    assert resampled_length(n, rate_in, rate_out) == expected
    assert len(resample_note(np.zeros(n, np.float32), rate_in, rate_out)) == expected


def test_store_layout_and_pitch(manifest: Path, tmp_path: Path):
    store = run(manifest, tmp_path / "out")
    assert len(store) == 10 and store.num_frames == 6000 and store.sample_rate == 24000
    assert store.audio.dtype == np.int16
    idx = store.index
    assert (idx["num_frames"] == 6000).all() and (idx["row"] == np.arange(10)).all()
    assert "source_path" in idx and "path" not in idx
    row = store.row_of("guitar_acoustic_001-060-100")
    spectrum = np.abs(np.fft.rfft(store[row] * np.hanning(6000)))
    f_peak = np.argmax(spectrum) * 24000 / 6000
    assert abs(f_peak - 261.63) < 24000 / 6000  # C4 within one FFT bin
    assert store.batch([0, row]).shape == (2, 6000)
    # The store holds soxr's output to 16-bit precision.
    source = sf.read(idx.loc[row, "source_path"], dtype="float32")[0]
    np.testing.assert_allclose(store[row], soxr.resample(source, 16000, 24000, "HQ"), atol=2 / 32768)


def test_no_clipping_for_overshooting_notes(tmp_path: Path):
    split = tmp_path / "raw"
    split_dir = write_nsynth_split(split, [("synth_lead", "synthetic", 1, 60, 127)], seconds=SECONDS)
    wav = next((split_dir / "audio").glob("*.wav"))
    square = np.sign(np.sin(2 * np.pi * 261.63 * np.arange(4000) / 16000)) * (32767 / 32768)
    sf.write(wav, square, 16000, subtype="PCM_16")  # full scale square: resampling overshoots
    table, _ = prune_split(split_dir, note_seconds=SECONDS, progress=False)
    write_table(table, tmp_path / "m.parquet")
    store = run(tmp_path / "m.parquet", tmp_path / "out", target_rate=44100)
    expected = soxr.resample(sf.read(wav, dtype="float32")[0], 16000, 44100, "HQ")
    assert np.abs(expected).max() > 1.0  # the case that would clip
    gain = store.index["gain"].iloc[0]
    assert gain > 1.0
    np.testing.assert_allclose(store[0], expected, atol=2 * gain / 32768)
    assert np.abs(np.asarray(store.audio[0])).max() <= 32767


def test_quantize_round_trip():
    x = np.linspace(-0.9, 0.9, 101, dtype=np.float32)
    q, gain = quantize(x)
    assert gain == 1.0 and np.abs(q / 32768 - x).max() <= 0.5 / 32768 + 1e-7


def test_resume_after_kill_matches_uninterrupted(manifest: Path, tmp_path: Path, monkeypatch):
    reference = run(manifest, tmp_path / "ref", chunk_notes=3)
    out = tmp_path / "out"
    interrupt_at_row(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        run(manifest, out, chunk_notes=3)
    assert not (out / "train.npy").exists() and not (out / "train.parquet").exists()
    assert (out / "train.npy.partial").exists()

    calls = count_chunks(monkeypatch)
    resumed = run(manifest, out, chunk_notes=3)
    assert calls == [6, 9]  # rows 0..5 were done before the kill
    np.testing.assert_array_equal(np.asarray(resumed.audio), np.asarray(reference.audio))
    assert resumed.index.equals(reference.index)
    assert sorted(p.name for p in out.iterdir()) == ["train.npy", "train.parquet"]


def test_changed_parameters_restart(manifest: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    interrupt_at_row(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(manifest, out, chunk_notes=3)
    calls = count_chunks(monkeypatch)
    store = run(manifest, out, chunk_notes=3, target_rate=22050)
    assert calls == [0, 3, 6, 9] and store.sample_rate == 22050


def test_parallel_workers_match_serial(manifest: Path, tmp_path: Path):
    serial = run(manifest, tmp_path / "a", chunk_notes=4)
    parallel = run(manifest, tmp_path / "b", chunk_notes=4, workers=2)
    np.testing.assert_array_equal(np.asarray(serial.audio), np.asarray(parallel.audio))


def test_bad_source_named(manifest: Path, tmp_path: Path):
    first = pq.read_table(manifest).column("path")[0].as_py()
    sf.write(first, np.zeros(100), 16000, subtype="PCM_16")
    with pytest.raises(ResampleError, match=rf"{Path(first).name}: 100 frames, expected 4000"):
        run(manifest, tmp_path / "out")
    assert not (tmp_path / "out" / "train.npy").exists()


def test_wrong_duration_parameter_named(manifest: Path, tmp_path: Path):
    with pytest.raises(ResampleError, match="are not 64000 frames at 16000 Hz"):
        run(manifest, tmp_path / "out", note_seconds=4.0)


def test_store_mismatch_detected(manifest: Path, tmp_path: Path):
    run(manifest, tmp_path / "out")
    np.save(tmp_path / "out" / "train.npy", np.zeros((3, 6000), np.int16))
    with pytest.raises(StoreError, match="index rows do not match"):
        open_store(tmp_path / "out" / "train")


def test_parallel_failure_keeps_finished_chunks(manifest: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    last = pq.read_table(manifest).column("path")[9].as_py()
    good = Path(last).read_bytes()
    Path(last).write_bytes(b"RIFF broken")
    with pytest.raises(ResampleError, match="not a readable WAV"):
        run(manifest, out, chunk_notes=3, workers=2)
    gains = np.load(out / "train.npy.partial.gains.npy")
    assert np.isfinite(gains[:9]).all() and np.isnan(gains[9])  # finished chunks were recorded
    calls = count_chunks(monkeypatch)
    with pytest.raises(ResampleError):
        run(manifest, out, chunk_notes=3)
    assert calls == [9]  # a restart redoes only the failed chunk
    Path(last).write_bytes(good)  # the fixed file differs from the one the partial run saw: start afresh
    calls.clear()
    assert len(run(manifest, out, chunk_notes=3)) == 10
    assert calls == [0, 3, 6, 9]


def test_changed_source_audio_is_not_resumed(manifest: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    interrupt_at_row(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(manifest, out, chunk_notes=3)
    first = pq.read_table(manifest).column("path")[0].as_py()
    sf.write(first, 0.1 * np.ones(4000), 16000, subtype="PCM_16")  # re-rendered behind the same manifest
    calls = count_chunks(monkeypatch)
    run(manifest, out, chunk_notes=3)
    assert calls == [0, 3, 6, 9]


def test_truncated_store_named(manifest: Path, tmp_path: Path):
    run(manifest, tmp_path / "out")
    npy = tmp_path / "out" / "train.npy"
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    with pytest.raises(StoreError, match=r"train\.npy: not a readable \.npy array \(truncated\?\)"):
        open_store(tmp_path / "out" / "train")
