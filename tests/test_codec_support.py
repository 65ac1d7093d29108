"""Helpers shared by the codec tests (no tests here): synthetic instrument notes at 24 kHz and a small
audio store in the resampled-store format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from instrumentgen.data.store import quantize
from instrumentgen.synth.instrument import FAMILY_SPECS, sample_instrument
from instrumentgen.synth.render import render_note

SR = 24000
SECONDS = 0.5


def render_notes(seed: int, per_family: int, pitch_range: tuple[int, int] = (40, 88),
                 velocity: int = 100) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Notes of one instrument per family (of the synthesizer), ``per_family`` pitches spread over
    ``pitch_range`` ∩ the instrument's range: audio float32 ``[N, T]``, MIDI pitches ``[N]``, families."""
    audio, pitches, families = [], [], []
    for i, family in enumerate(FAMILY_SPECS):
        inst = sample_instrument(seed, i, family, FAMILY_SPECS[family].sources[0], 0)
        lo, hi = max(inst.pitch_range[0], pitch_range[0]), min(inst.pitch_range[1], pitch_range[1])
        for p in np.unique(np.linspace(lo, hi, per_family).round().astype(int)):
            audio.append(render_note(inst, int(p), velocity, seed=seed, sample_rate=SR, note_seconds=SECONDS))
            pitches.append(int(p))
            families.append(family)
    return np.stack(audio).astype(np.float32), np.array(pitches), families


def write_store(prefix: Path, audio: np.ndarray, pitches: np.ndarray, families: list[str],
                sample_rate: int = SR) -> Path:
    """Write ``<prefix>.npy`` + ``<prefix>.parquet`` in the resampled-store format; return ``prefix``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    q, gains = zip(*(quantize(a) for a in audio), strict=True)
    np.save(prefix.with_suffix(".npy"), np.stack(q))
    pd.DataFrame({
        "note_str": [f"{f}_synthetic_000-{p:03d}-{i:03d}" for i, (f, p) in enumerate(zip(families, pitches,
                                                                                            strict=True))],
        "pitch": pitches.astype(np.int64), "instrument_family_str": families,
        "sample_rate": sample_rate, "row": np.arange(len(audio)), "gain": np.array(gains, dtype=np.float64),
    }).to_parquet(prefix.with_suffix(".parquet"))
    return prefix
