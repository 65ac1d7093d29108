"""Shared fixtures: small NSynth-format splits written on the fly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from nsynth_fixtures import make_example

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SR = 16000


def write_nsynth_split(root: Path, notes: list[tuple[str, str, int, int, int]], *, split: str = "train",
                       seconds: float = 0.25, amplitude: float = 0.5) -> Path:
    """Write ``root/nsynth-{split}`` with one sine note per (family, source, index, pitch, velocity)."""
    split_dir = root / f"nsynth-{split}"
    (split_dir / "audio").mkdir(parents=True)
    t = np.arange(round(SR * seconds)) / SR
    examples = {}
    for i, (family, source, index, pitch, velocity) in enumerate(notes):
        ex = make_example(family, source, index, pitch, velocity, note=i)
        examples[ex["note_str"]] = ex
        f0 = min(440.0 * 2 ** ((pitch - 69) / 12), 7000.0)
        sf.write(split_dir / "audio" / f"{ex['note_str']}.wav", amplitude * np.sin(2 * np.pi * f0 * t), SR,
                 subtype="PCM_16")
    (split_dir / "examples.json").write_text(json.dumps(examples))
    return split_dir


@pytest.fixture
def small_split(tmp_path: Path) -> Path:
    """A split with notes inside and outside the 88 keys, two instruments, several velocities."""
    notes = [("guitar", "acoustic", 1, p, v) for p in (15, 21, 60, 108, 115) for v in (50, 100)]
    notes += [("bass", "synthetic", 2, p, v) for p in (30, 45) for v in (25, 127)]
    return write_nsynth_split(tmp_path, notes)
