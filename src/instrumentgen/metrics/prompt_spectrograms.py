"""Look before you trust a table: spectrograms of generated T2I notes beside real notes of the family
their prompt names.

    python -m instrumentgen.metrics.prompt_spectrograms \\
        --generated baseline=data/<p>/generated/baseline/t2i/manifest.parquet [random=...] \\
        --prompts workflow/prompts/offline.yaml --real data/<p>/manifest/test.parquet \\
        --pitches 48 72 --velocity 127 --out results/<p>/evaluate/t2i_spectrograms.png

One row per prompt that names one NSynth family (:func:`instrumentgen.prompts.named_family`); for each
of ``--pitches`` one column per variant's generated note (the nearest generated cell) and one for a real
test note of that family (the family's first test instrument, its nearest cell). Each panel is a
log-magnitude STFT (dB, 0 to −80 below the note's peak, log frequency up to 8 kHz) of the note at its
own sample rate, so envelopes (a mallet that stops, an organ that sustains) and spectra (a breathy flute,
a dark bass) can be compared by eye. Written atomically (PNG; SVG beside it when ``--out`` ends in .png).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from instrumentgen.atomic import atomic_path
from instrumentgen.generate.manifest import read_manifest
from instrumentgen.prompts import load_prompts, named_family

log = logging.getLogger(__name__)
N_FFT, HOP, FLOOR_DB, MAX_HZ = 1024, 256, 80.0, 8000.0


@dataclass(frozen=True)
class Panel:
    """One note to draw: its file and a label."""

    path: Path
    label: str


def nearest_cell(cells: pd.DataFrame, pitch: int, velocity: int) -> pd.Series:
    """The row of ``cells`` (columns pitch, velocity) nearest to ``(pitch, velocity)``: pitch first."""
    order = cells.assign(_dp=(cells["pitch"] - pitch).abs(), _dv=(cells["velocity"] - velocity).abs())
    return order.sort_values(["_dp", "_dv", "pitch", "velocity"]).iloc[0]


def log_spectrogram(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dB magnitude ``[F, T]`` relative to the peak (clipped at −``FLOOR_DB``), frequencies ``[F]`` (Hz, up to
    ``MAX_HZ``) and frame times ``[T]`` (s) of mono ``audio`` ``[N]``."""
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    window = np.hanning(N_FFT)
    starts = np.arange(0, len(audio) - N_FFT + 1, HOP)
    frames = np.stack([audio[s : s + N_FFT] * window for s in starts])  # [T, N_FFT]
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T  # [F, T]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    keep = (freqs > 0) & (freqs <= MAX_HZ)
    db = 20 * np.log10(np.maximum(magnitude[keep], 1e-10))
    db = np.maximum(db - db.max(), -FLOOR_DB)
    return db, freqs[keep], (starts + N_FFT / 2) / rate


def plan_panels(
    generated: dict[str, pd.DataFrame], prompts: dict[str, str], real: pd.DataFrame,
    pitches: list[int], velocity: int,
) -> tuple[list[str], list[str], list[list[Panel]]]:
    """Row titles, column titles and panels ``[rows][columns]``.

    ``generated``: per variant, a T2I manifest (instrument = prompt id, pitch, velocity, path);
    ``prompts``: prompt id → text; ``real``: pruned test notes (instrument_str, instrument_family_str,
    pitch, velocity, path). Prompts naming no family, or a family without test notes, are left out
    (logged)."""
    columns = [f"{v} · MIDI {p}" for p in pitches for v in [*generated, "real"]]
    titles, rows = [], []
    for prompt_id, text in prompts.items():
        family = named_family(text)
        if family is None:
            log.info("prompt %s names no single family: not drawn", prompt_id)
            continue
        of_family = real[real["instrument_family_str"] == family]
        if of_family.empty:
            log.info("prompt %s: no real test notes of family %s: not drawn", prompt_id, family)
            continue
        instrument = sorted(of_family["instrument_str"].unique())[0]
        real_cells = of_family[of_family["instrument_str"] == instrument]
        row = []
        for pitch in pitches:
            for variant, manifest in generated.items():
                notes = manifest[manifest["instrument"] == prompt_id]
                if notes.empty:
                    raise ValueError(f"{variant} T2I has no generated notes for prompt {prompt_id!r}")
                note = nearest_cell(notes, pitch, velocity)
                row.append(Panel(Path(note["path"]), f"{variant} {int(note.pitch)}/{int(note.velocity)}"))
            note = nearest_cell(real_cells, pitch, velocity)
            row.append(Panel(Path(note["path"]), f"{instrument} {int(note.pitch)}/{int(note.velocity)}"))
        titles.append(f"“{text}” → {family}")
        rows.append(row)
    if not rows:
        raise ValueError("no prompt names a family that the test split has: nothing to draw")
    return titles, columns, rows


def plot(titles: list[str], columns: list[str], rows: list[list[Panel]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(1.9 * len(columns), 1.45 * len(rows) + 0.6), squeeze=False
    )
    for r, (title, row) in enumerate(zip(titles, rows, strict=True)):
        for c, panel in enumerate(row):
            ax = axes[r, c]
            audio, rate = sf.read(panel.path, dtype="float64", always_2d=True)
            db, freqs, times = log_spectrogram(audio.mean(axis=1), rate)
            ax.pcolormesh(times, freqs, db, shading="auto", cmap="magma", vmin=-FLOOR_DB, vmax=0,
                          rasterized=True)
            ax.set_yscale("log")
            ax.set_ylim(40, MAX_HZ)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(panel.label, fontsize=6, pad=2)
            if c == 0:
                ax.set_ylabel(title, fontsize=6, rotation=0, ha="right", va="center")
            if r == 0:
                ax.text(0.5, 1.35, columns[c], transform=ax.transAxes, ha="center", fontsize=7,
                        fontweight="bold")
    fig.suptitle("T2I notes (log-frequency spectrograms, 40 Hz–8 kHz, 80 dB) beside real notes of the "
                 "named family", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    for suffix in (out.suffix, ".svg") if out.suffix == ".png" else (out.suffix,):
        target = out.with_suffix(suffix)
        with atomic_path(target, suffix=suffix) as tmp:
            fig.savefig(tmp, dpi=110, format=suffix.lstrip("."))
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m instrumentgen.metrics.prompt_spectrograms",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generated", nargs="+", required=True, help="VARIANT=T2I manifest")
    p.add_argument("--prompts", type=Path, required=True, help="the profile's prompt file (YAML)")
    p.add_argument("--real", type=Path, required=True, help="pruned test-split manifest (Parquet)")
    p.add_argument("--pitches", type=int, nargs="+", default=[48, 72])
    p.add_argument("--velocity", type=int, default=127)
    p.add_argument("--out", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        generated = {}
        for item in args.generated:
            variant, sep, path = item.partition("=")
            if not sep or not variant or not path:
                raise ValueError(f"--generated takes VARIANT=MANIFEST, got {item!r}")
            generated[variant] = read_manifest(Path(path))
        prompts = {p.id: p.text for p in load_prompts(args.prompts)}
        real = pd.read_parquet(args.real)
        plot(*plan_panels(generated, prompts, real, args.pitches, args.velocity), args.out)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
