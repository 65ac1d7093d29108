"""The generation CLI (what the generate rules run) and the pitch-accuracy report, on a small random LM,
a fitted codec and CLAP caches written in the pipeline's format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from lm_fixtures import CARD, tiny_model
from test_codec_support import SR, render_notes

from instrumentgen.codec.fitted import FittedCodec
from instrumentgen.features.cache import fixed_size_array
from instrumentgen.generate import cli
from instrumentgen.lm.checkpoint import FORMAT, save_atomic
from instrumentgen.metrics import pitch


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gen")
    torch.set_num_threads(1)
    audio, _, _ = render_notes(seed=3, per_family=4)
    codec = FittedCodec.fit(
        audio, SR, n_codebooks=4, codebook_size=CARD, max_frames=2000, max_epochs=5, seed=0
    )
    codec.save(root / "codec.npz")
    model = tiny_model()
    save_atomic(
        {
            "format": FORMAT,
            "config": model.config.to_dict(),
            "variant": "baseline",
            "model": model.state_dict(),
        },
        root / "lm.pt",
    )
    notes = pd.DataFrame(
        {
            "note_str": [
                f"{i}-{p:03d}-{v:03d}"
                for i, p, v in [("a", 60, 50), ("a", 62, 100), ("a", 64, 100), ("b", 48, 50), ("b", 50, 50)]
            ],
            "instrument_str": ["a", "a", "a", "b", "b"],
            "pitch": [60, 62, 64, 48, 50],
            "velocity": [50, 100, 100, 50, 50],
        }
    )
    clap = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    table = pa.Table.from_pandas(notes, preserve_index=False).append_column("feature", fixed_size_array(clap))
    pq.write_table(table, root / "clap_audio.parquet")
    prompts = pa.table(
        {
            "id": ["warm", "dark"],
            "text": ["a warm pad", "a dark bass"],
            "source": ["ours"] * 2,
            "feature": fixed_size_array(clap[:2]),
        }
    )
    pq.write_table(prompts, root / "prompts.parquet")
    return {
        "root": root,
        "codec": root / "codec.npz",
        "model": root / "lm.pt",
        "audio": root / "clap_audio.parquet",
        "prompts": root / "prompts.parquet",
    }


def args(files, task: str, out: str, *extra: str) -> list[str]:
    clap = files["audio"] if task == "s2i" else files["prompts"]
    return [
        "--task",
        task,
        "--model",
        str(files["model"]),
        "--codec",
        str(files["codec"]),
        "--clap-cache",
        str(clap),
        "--note-seconds",
        "0.3",
        "--seed",
        "7",
        "--batch-size",
        "2",
        "--decoding",
        json.dumps({"sampling": {"top_k": 5}}),
        "--out-dir",
        str(files["root"] / out / "audio"),
        "--manifest",
        str(files["root"] / out / "m.parquet"),
        *extra,
    ]


def test_s2i_generates_exactly_each_instruments_cells(files):
    manifest = cli.run(cli.parse_args(args(files, "s2i", "s2i")))
    saved = pd.read_parquet(files["root"] / "s2i" / "m.parquet")
    assert sorted(zip(saved["instrument"], saved["pitch"], saved["velocity"], strict=True)) == [
        ("a", 60, 50),
        ("a", 62, 100),
        ("a", 64, 100),
        ("b", 48, 50),
        ("b", 50, 50),
    ]
    assert len(manifest) == 5 and set(saved["task"]) == {"s2i"} and set(saved["variant"]) == {"baseline"}
    assert saved.groupby("instrument")["query_note"].nunique().eq(1).all()
    for rel in saved["path"]:
        assert not Path(rel).is_absolute()
        audio, sr = sf.read(files["root"] / "s2i" / rel)
        assert sr == SR and len(audio) >= 0.3 * SR - 480  # 15 frames of 480 samples at 24 kHz
    assert set(saved["decoding_steps"]) == {15 + 3}  # ceil(0.3 s * 24000 / 480) frames + K - 1


def test_t2i_covers_the_grid_for_every_prompt(files):
    grid = json.dumps({"pitches": [48, 60], "velocities": [100]})
    saved = cli.run(cli.parse_args(args(files, "t2i", "t2i", "--grid", grid)))
    assert sorted(saved["instrument"].unique()) == ["dark", "warm"]
    assert saved.groupby("instrument").size().eq(2).all() and set(saved["pitch"]) == {48, 60}


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ("t2i", [], "needs --grid"),
        ("t2i", ["--grid", '{"pitches": [60]}'], "pitches and velocities"),
        ("t2i", ["--grid", '{"pitches": [10], "velocities": [100]}'], "pitch 10 is outside"),
        ("t2i", ["--grid", '{"pitches": [60], "velocities": [60]}'], "velocity 60"),
        ("s2i", ["--decoding", '{"sampling": {"topk": 3}}'], "unknown sampling setting 'topk'"),
        ("s2i", ["--decoding", "[1]"], "must be a JSON object"),
    ],
)
def test_bad_requests_are_named(files, task, extra, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(args(files, task, f"bad-{task}", *extra))
    assert err.value.code == 2 and message in capsys.readouterr().err


def test_missing_model_and_mismatched_clap_are_named(files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(
            [*args(files, "s2i", "x")[:2], "--model", str(tmp_path / "none.pt"), *args(files, "s2i", "x")[4:]]
        )
    assert "none.pt does not exist" in capsys.readouterr().err
    wide = np.zeros((1, 16), np.float32)
    pq.write_table(
        pa.table(
            {
                "note_str": ["a-060-050"],
                "instrument_str": ["a"],
                "pitch": [60],
                "velocity": [50],
                "feature": fixed_size_array(wide),
            }
        ),
        tmp_path / "wide.parquet",
    )
    with pytest.raises(SystemExit):
        cli.main(
            [
                *args(files, "s2i", "y")[:6],
                "--clap-cache",
                str(tmp_path / "wide.parquet"),
                *args(files, "s2i", "y")[8:],
            ]
        )
    assert "16-d CLAP embeddings" in capsys.readouterr().err


def tone(midi: float, seconds: float = 0.5, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return (0.3 * sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3))).astype(np.float32)


def test_pitch_report_counts_hits_misses_and_unvoiced(tmp_path):
    cells = [(60, 60.0), (64, 64.2), (67, 68.0), (72, None), (100, 100.0)]  # requested, played (None: silent)
    rows = []
    for i, (requested, played) in enumerate(cells):
        audio = np.zeros(8000, np.float32) if played is None else tone(played)
        sf.write(tmp_path / f"n{i}.wav", audio, 16000)
        rows.append(
            {
                "instrument": "x",
                "pitch": requested,
                "velocity": 100,
                "path": f"n{i}.wav",
                "variant": "random",
                "task": "t2i",
            }
        )
    pd.DataFrame(rows).to_parquet(tmp_path / "m.parquet")
    report = pitch.pitch_report(tmp_path / "m.parquet", workers=1)
    assert report["n_generated"] == 5 and report["n_outside_range"] == 1  # MIDI 100 is above 96
    assert (report["n_notes"], report["n_within"], report["n_unvoiced"]) == (4, 2, 1)
    assert report["share_within"] == 0.5 and report["variant"] == "random"
    assert abs(report["per_note_cents"][2] - 100) < 30  # a semitone sharp


def test_pitch_report_subset_is_seeded_and_errors_are_named(tmp_path):
    manifest = pd.DataFrame(
        {
            "instrument": ["x"] * 10,
            "pitch": range(50, 60),
            "velocity": 100,
            "path": [f"{i}.wav" for i in range(10)],
        }
    )
    a = pitch.select_notes(manifest, 4, seed=1)
    assert len(a) == 4 and a.equals(pitch.select_notes(manifest, 4, seed=1))
    assert not a.equals(pitch.select_notes(manifest, 4, seed=2))
    manifest.to_parquet(tmp_path / "m.parquet")
    with pytest.raises(pitch.PitchReportError, match="0.wav cannot be read"):
        pitch.pitch_report(tmp_path / "m.parquet")
    with pytest.raises(ValueError, match="does not exist"):
        pitch.pitch_report(tmp_path / "none.parquet")
