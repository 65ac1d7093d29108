"""Pipeline files for the companion page, made up: a resampled test store, two variants' S2I and T2I
manifests with their export indexes, and a prompt file.

Every note is a tone at its cell's pitch (fundamental and two harmonics), loudness by velocity, so a
test can tell from the audio which sample played. Ground truth and variants differ in their decay,
so their spectrograms differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from instrumentgen.data.store import quantize

RATE = 16000
SECONDS = 1.0
VARIANTS = ("baseline", "magnet")
S2I_CELLS = {
    "keys_acoustic_001": [(p, v) for v in (50, 100) for p in (48, 55, 60, 67, 72)],
    "bass_synthetic_002": [(p, v) for v in (75, 127) for p in (40, 52, 64)],
}
T2I_CELLS = {"bright_flute": [(p, v) for v in (25, 100) for p in (48, 60, 72)]}
PROMPTS = {"bright_flute": "a bright <b>flute</b> & friends", "unused_prompt": "never generated"}
DECAY = {"ground truth": 2.0, "baseline": 6.0, "magnet": 12.0}


def hz(pitch: int) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    """The frequency of the strongest spectral peak of ``samples`` (Hann window, 8× zero padding)."""
    samples = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), n=8 * len(samples)))
    return float(np.fft.rfftfreq(8 * len(samples), 1 / rate)[np.argmax(spectrum)])


def tone(pitch: int, velocity: int, decay: float) -> np.ndarray:
    """``[T]`` float32: a decaying tone at ``pitch`` (three harmonics), peak ``0.8 * velocity / 127``."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * k * hz(pitch) * t) / k for k in (1, 2, 3))
    return (0.8 * velocity / 127 * wave / 1.84 * np.exp(-decay * t)).astype(np.float32)


def write_store(prefix: Path) -> Path:
    rows, audio = [], []
    for instrument, cells in S2I_CELLS.items():
        for pitch, velocity in cells:
            rows.append({"note_str": f"{instrument}-{pitch:03d}-{velocity:03d}", "instrument_str": instrument,
                         "pitch": pitch, "velocity": velocity})
            audio.append(tone(pitch, velocity, DECAY["ground truth"]))
    # a note of another instrument, not shown on the page
    rows.append({"note_str": "other-060-100", "instrument_str": "other", "pitch": 60, "velocity": 100})
    audio.append(tone(60, 100, 1.0))
    q, gains = zip(*(quantize(a) for a in audio), strict=True)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    np.save(prefix.with_suffix(".npy"), np.stack(q))
    pd.DataFrame(rows).assign(row=np.arange(len(rows)), gain=gains, sample_rate=RATE).to_parquet(
        prefix.with_suffix(".parquet"))
    return prefix


def write_generation(root: Path, variant: str, task: str, cells: dict[str, list]) -> tuple[Path, Path]:
    """A variant's manifest (paths relative to it, as the pipeline writes them) and export index."""
    folder = root / "generated" / variant / task
    rows, index = [], {}
    for instrument, pairs in cells.items():
        for pitch, velocity in pairs:
            rel = f"audio/{instrument}/{instrument}-{pitch:03d}-{velocity:03d}.wav"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / rel, tone(pitch, velocity, DECAY[variant]), RATE, subtype="PCM_16")
            rows.append({"instrument": instrument, "pitch": pitch, "velocity": velocity, "path": rel})
        demo = root / "instruments" / variant / task / "instruments" / instrument / "demo.wav"
        demo.parent.mkdir(parents=True, exist_ok=True)
        sf.write(demo, np.concatenate([tone(p, 100, DECAY[variant]) for p in (60, 64, 67)]), RATE)
        index[instrument] = {"demo_wav": str(demo), "n_samples": len(pairs)}
    manifest = folder / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    export = root / "instruments" / variant / task / "index.json"
    export.write_text(json.dumps({"instruments": index}))
    return manifest, export


def pipeline_files(root: Path) -> list[str]:
    """Write everything under ``root``; returns the companion command line's arguments (without --out)."""
    args = {"s2i": [], "s2i-exports": [], "t2i": [], "t2i-exports": []}
    for variant in VARIANTS:
        for task, cells in (("s2i", S2I_CELLS), ("t2i", T2I_CELLS)):
            manifest, export = write_generation(root, variant, task, cells)
            args[task].append(f"{variant}={manifest}")
            args[f"{task}-exports"].append(f"{variant}={export}")
    prompts = root / "prompts.yaml"
    prompts.write_text(yaml.safe_dump({"version": 1, "prompts": [
        {"id": k, "text": v, "source": "ours"} for k, v in PROMPTS.items()]}))
    argv = ["--title", "companion test", "--test-store", str(write_store(root / "resampled" / "test")),
            "--prompts", str(prompts)]
    for flag, values in args.items():
        argv += [f"--{flag}", *values]
    return argv
