"""Feature caches with random content in the pipeline's format, for tests and benchmarks of training.

Step time and the training machinery do not depend on the codes' values, so these stand in for the
encoders' output where only shapes matter. Never used by the pipeline itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instrumentgen.features.cache import fixed_size_array
from instrumentgen.nsynth.metadata import FAMILIES, SOURCES, VELOCITIES


def write_split(
    folder: Path,
    split: str,
    n_instruments: int,
    notes_per_instrument: int,
    n_frames: int,
    codebook_size: int,
    clap_dim: int,
    n_codebooks: int = 4,
    seed: int = 0,
    clap_spread: float = 0.1,
) -> dict[str, Path]:
    """Write ``<split>_{codes,clap,reference}.parquet`` under ``folder``; returns their paths by kind.

    Codes ``[N, K, T]`` int16 depend on the note's pitch (so a model can learn something), CLAP
    ``[N, D]`` float32 on its instrument (a standard normal centre per instrument plus ``clap_spread``
    times standard normal noise per note); notes of an instrument are interleaved with other instruments'.
    """
    rng = np.random.default_rng([seed, len(split)])
    folder.mkdir(parents=True, exist_ok=True)
    n = n_instruments * notes_per_instrument
    inst = np.arange(n) % n_instruments
    family = inst % len(FAMILIES)
    pitch = 21 + (np.arange(n) // n_instruments * 7 + inst) % 88
    velocity = np.asarray(VELOCITIES)[(np.arange(n) // n_instruments) % len(VELOCITIES)]
    meta = {
        "note_str": [
            f"{split}_inst{i:03d}-{p:03d}-{v:03d}-{j:05d}"
            for j, (i, p, v) in enumerate(zip(inst, pitch, velocity, strict=True))
        ],
        "instrument_str": [f"{split}_inst{i:03d}" for i in inst],
        "pitch": pitch.astype(np.int64),
        "velocity": velocity.astype(np.int64),
        "instrument_family": family.astype(np.int64),
        "instrument_source": (inst % len(SOURCES)).astype(np.int64),
    }
    base = (
        pitch[:, None, None] * 7
        + np.arange(n_codebooks)[None, :, None] * 3
        + np.arange(n_frames)[None, None, :]
    )
    noise = rng.integers(0, 3, (n, n_codebooks, n_frames))
    codes = ((base + noise) % codebook_size).astype(np.int16)
    centres = rng.standard_normal((n_instruments, clap_dim))
    clap = (centres[inst] + clap_spread * rng.standard_normal((n, clap_dim))).astype(np.float32)
    paths = {}
    for kind, feature in (("codes", codes), ("clap", clap)):
        paths[kind] = folder / f"{split}_{kind}.parquet"
        pq.write_table(pa.table({**meta, "feature": fixed_size_array(feature)}), paths[kind])
    first: dict[str, str] = {}
    for name, note in zip(meta["instrument_str"], meta["note_str"], strict=True):
        first.setdefault(name, note)
    paths["reference"] = folder / f"{split}_reference.parquet"
    pq.write_table(
        pa.table({"instrument_str": list(first), "note_str": list(first.values())}), paths["reference"]
    )
    return paths
