"""A summary of the pruned dataset for the report: counts per split and family, and coverage.

``summary.csv``: one row per (split, family) with notes, instruments, pitch range and the
number of (pitch, velocity) cells per instrument. ``coverage.png``: notes per (family, pitch),
one panel per split — where the 88 keys are covered and where they are not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from instrumentgen.atomic import atomic_path
from instrumentgen.data.manifest import read_manifest
from instrumentgen.nsynth.metadata import FAMILIES, PIANO_MAX, PIANO_MIN


def summarize(manifests: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Counts per (split, family) over manifests keyed by split name."""
    rows = []
    for split, df in manifests.items():
        for family, g in df.groupby("instrument_family_str", sort=True):
            cells = g.groupby("instrument_str").size()
            rows.append({"split": split, "family": family, "notes": len(g), "instruments": len(cells),
                         "pitch_min": int(g["pitch"].min()), "pitch_max": int(g["pitch"].max()),
                         "notes_per_instrument": round(float(cells.mean()), 1)})
    return pd.DataFrame(rows)


def plot_coverage(manifests: dict[str, pd.DataFrame], out: Path) -> None:
    """Heat maps of notes per (family, pitch), one panel per split, written atomically."""
    pitches = np.arange(PIANO_MIN, PIANO_MAX + 1)
    fig = Figure(figsize=(10, 2.6 * len(manifests)))
    axes = fig.subplots(len(manifests), 1, squeeze=False)
    for ax, (split, df) in zip(axes[:, 0], manifests.items(), strict=True):
        counts = np.zeros((len(FAMILIES), len(pitches)))
        fam = df["instrument_family"].to_numpy()
        col = df["pitch"].to_numpy() - PIANO_MIN
        np.add.at(counts, (fam, col), 1)
        im = ax.imshow(counts, aspect="auto", origin="lower", cmap="magma",
                       extent=(PIANO_MIN - 0.5, PIANO_MAX + 0.5, -0.5, len(FAMILIES) - 0.5))
        ax.set_yticks(range(len(FAMILIES)), FAMILIES, fontsize=7)
        ax.set_title(f"{split}: {len(df)} notes, {df['instrument_str'].nunique()} instruments", fontsize=9)
        fig.colorbar(im, ax=ax, label="notes")
    axes[-1, 0].set_xlabel("MIDI pitch")
    fig.tight_layout()
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip("."), dpi=100)


def main(argv: list[str] | None = None) -> None:
    """CLI used by the ``data_summary`` rule."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--manifests", nargs="+", type=Path, required=True, help="<split>.parquet files")
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--figure", type=Path, required=True)
    args = ap.parse_args(argv)
    manifests = {p.stem: read_manifest(p) for p in args.manifests}
    with atomic_path(args.table, suffix=".csv") as tmp:
        summarize(manifests).to_csv(tmp, index=False)
    plot_coverage(manifests, args.figure)


if __name__ == "__main__":
    main()
