"""prune: keep the 88 keys, check every WAV, write the manifest; bad input is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from instrumentgen.data.manifest import SCHEMA, read_manifest
from instrumentgen.data.prune import PruneError, main, prune_split

SECONDS = 0.25


def prune(split_dir: Path, **kw):
    return prune_split(split_dir, note_seconds=SECONDS, progress=False, **kw)


def test_keeps_88_keys_and_counts(small_split: Path):
    table, counts = prune(small_split)
    pitches = table.column("pitch").to_pylist()
    assert min(pitches) >= 21 and max(pitches) <= 108
    assert sorted(set(pitches)) == [21, 30, 45, 60, 108]
    assert counts == {"total": 14, "kept": 10, "dropped_pitch": 4, "instruments": 2}
    assert table.schema == SCHEMA
    assert table.column("num_frames").to_pylist() == [round(16000 * SECONDS)] * 10
    keys = list(zip(table.column("instrument_str").to_pylist(), pitches, table.column("velocity").to_pylist(),
                    strict=True))
    assert keys == sorted(keys)
    for path in table.column("path").to_pylist():
        assert Path(path).is_file()


def test_velocity_and_range_filters(small_split: Path):
    table, counts = prune(small_split, pitch_min=40, pitch_max=100, velocities=[100, 127])
    assert set(table.column("velocity").to_pylist()) == {100, 127}
    assert set(table.column("pitch").to_pylist()) == {45, 60}
    assert counts["dropped_pitch"] == 10 and counts["dropped_velocity"] == 2


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"pitch_max": 120}, "pitch_max = 120 is outside the 88 keys"),
        ({"pitch_min": 9}, "pitch_min = 9 is outside the 88 keys"),
        ({"pitch_min": 70, "pitch_max": 60}, "pitch_min = 70 is above pitch_max = 60"),
        ({"velocities": [25, 64]}, r"velocities \[25, 64\]"),
    ],
)
def test_bad_range_named(small_split: Path, kw, pattern):
    with pytest.raises(PruneError, match=pattern):
        prune(small_split, **kw)


def _wav(split_dir: Path, name: str) -> Path:
    return split_dir / "audio" / f"{name}.wav"


def test_missing_wav_named(small_split: Path):
    _wav(small_split, "guitar_acoustic_001-060-100").unlink()
    with pytest.raises(PruneError, match=r"guitar_acoustic_001-060-100\.wav: WAV file is missing"):
        prune(small_split)


def test_missing_wav_outside_range_is_ignored(small_split: Path):
    _wav(small_split, "guitar_acoustic_001-115-100").unlink()
    assert prune(small_split)[1]["kept"] == 10


def test_truncated_wav_named(small_split: Path):
    wav = _wav(small_split, "bass_synthetic_002-030-025")
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2])
    pattern = r"bass_synthetic_002-030-025\.wav: \d+ frames, expected 4000 \(truncated\?\)"
    with pytest.raises(PruneError, match=pattern):
        prune(small_split)


def test_wrong_rate_named(small_split: Path):
    wav = _wav(small_split, "guitar_acoustic_001-021-050")
    sf.write(wav, np.zeros(round(22050 * SECONDS)), 22050, subtype="PCM_16")
    pattern = r"guitar_acoustic_001-021-050\.wav: sample rate 22050 Hz, expected 16000"
    with pytest.raises(PruneError, match=pattern):
        prune(small_split)


def test_corrupt_wav_named(small_split: Path):
    _wav(small_split, "guitar_acoustic_001-060-050").write_bytes(b"RIFF....garbage" * 10)
    with pytest.raises(PruneError, match=r"guitar_acoustic_001-060-050\.wav: not a readable WAV"):
        prune(small_split)


def test_many_problems_summarised(small_split: Path):
    for wav in (small_split / "audio").glob("guitar*"):
        wav.unlink()
    with pytest.raises(PruneError, match=r"6 bad note\(s\)"):
        prune(small_split)


def test_bad_metadata_named(small_split: Path):
    path = small_split / "examples.json"
    examples = json.loads(path.read_text())
    examples["bass_synthetic_002-030-025"]["velocity"] = 30
    path.write_text(json.dumps(examples))
    with pytest.raises(PruneError, match=r"note 'bass_synthetic_002-030-025'.*velocity"):
        prune(small_split)


def test_cli_writes_manifest_and_fails_cleanly(small_split: Path, tmp_path: Path, capsys):
    out = tmp_path / "manifest" / "train.parquet"
    main(["--split-dir", str(small_split), "--out", str(out), "--note-seconds", str(SECONDS)])
    df = read_manifest(out)
    assert len(df) == 10 and pq.read_schema(out).names == SCHEMA.names
    out.unlink()
    _wav(small_split, "guitar_acoustic_001-060-100").unlink()
    with pytest.raises(SystemExit) as exc:
        main(["--split-dir", str(small_split), "--out", str(out), "--note-seconds", str(SECONDS)])
    assert exc.value.code == 1
    assert "guitar_acoustic_001-060-100.wav" in capsys.readouterr().err
    assert not out.exists() and not list(out.parent.iterdir())
