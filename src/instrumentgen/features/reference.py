"""Fixed-CLAP reference notes (paper Section 2.4.3).

Each instrument family f gets a reference pitch rho_0,f and all instruments share the reference
velocity nu_0 = 100; the "fixed" scheme conditions every note of an instrument on the CLAP
embedding of its note at (rho_0,f, nu_0), or — when that note does not exist — of its nearest
available pitch, then the nearest available velocity at that pitch (the paper's fallback).

The paper's per-family pitches (its Table 1) are not in our copy of the text, so the default is
data-driven: the median pitch of the family's notes in the training split (rounded down to a
MIDI note), overridable per family in ``params.yaml`` (``features.reference.pitch``).
Ties: equally near pitches resolve to the lower one, equally near velocities to the louder one.

The other two schemes need no cache: "baseline" conditions each note on its own embedding, and
"random" draws, at training time, a note of the same instrument uniformly with replacement
(paper eq. 3) from the instrument's notes listed in these tables (``n_notes``) and the manifests.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa

from instrumentgen.data.manifest import read_manifest, write_table
from instrumentgen.nsynth.metadata import FAMILIES, PIANO_MAX, PIANO_MIN, VELOCITIES

log = logging.getLogger(__name__)
REFERENCE_COLUMNS = ["instrument_str", "instrument_family_str", "ref_pitch", "ref_velocity", "note_str",
                     "pitch", "velocity", "n_notes"]


class ReferenceError(ValueError):
    """Bad reference parameters or an instrument without notes."""


def family_reference_pitches(train: pd.DataFrame,
                             overrides: dict[str, int | None] | None = None) -> dict[str, int]:
    """rho_0,f for every family: ``overrides[f]`` if given, else the median training pitch of f
    (the median over all training notes for a family absent from training)."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(FAMILIES))
    if unknown:
        raise ReferenceError(f"features.reference.pitch: unknown family {unknown[0]!r}; "
                             f"families: {list(FAMILIES)}")
    overall = int(math.floor(train["pitch"].median()))
    medians = train.groupby("instrument_family_str")["pitch"].median()
    pitches = {}
    for family in FAMILIES:
        value = overrides.get(family)
        if value is None:
            value = int(math.floor(medians[family])) if family in medians else overall
        if not PIANO_MIN <= value <= PIANO_MAX:
            raise ReferenceError(f"features.reference.pitch.{family} = {value} is outside MIDI "
                                 f"{PIANO_MIN}..{PIANO_MAX}")
        pitches[family] = int(value)
    return pitches


def nearest_note(notes: pd.DataFrame, pitch: int, velocity: int) -> pd.Series:
    """The row of ``notes`` (one instrument) nearest to (pitch, velocity): nearest pitch first
    (ties → lower pitch), then nearest velocity among that pitch's notes (ties → louder)."""
    if notes.empty:
        raise ReferenceError("instrument has no notes")
    pitches = notes["pitch"].to_numpy()
    best_pitch = min(set(pitches.tolist()), key=lambda p: (abs(p - pitch), p))
    at_pitch = notes[notes["pitch"] == best_pitch]
    best = min(range(len(at_pitch)), key=lambda i: (abs(int(at_pitch["velocity"].iloc[i]) - velocity),
                                                     -int(at_pitch["velocity"].iloc[i])))
    return at_pitch.iloc[best]


def reference_table(manifest: pd.DataFrame, pitches: dict[str, int], velocity: int = 100) -> pd.DataFrame:
    """One row per instrument: its reference (pitch, velocity) and the note the fixed scheme uses."""
    if velocity not in VELOCITIES:
        raise ReferenceError(f"features.reference.velocity = {velocity} is not one of {list(VELOCITIES)}")
    rows = []
    for inst, notes in manifest.groupby("instrument_str", sort=True):
        family = notes["instrument_family_str"].iloc[0]
        chosen = nearest_note(notes, pitches[family], velocity)
        rows.append({"instrument_str": inst, "instrument_family_str": family, "ref_pitch": pitches[family],
                     "ref_velocity": velocity, "note_str": chosen["note_str"], "pitch": int(chosen["pitch"]),
                     "velocity": int(chosen["velocity"]), "n_notes": len(notes)})
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    """CLI used by the ``reference_notes`` rule: one Parquet per split."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-manifest", type=Path, required=True)
    ap.add_argument("--manifests", type=Path, nargs="+", required=True, help="<split>.parquet files")
    ap.add_argument("--out", type=Path, nargs="+", required=True, help="one output per manifest")
    ap.add_argument("--pitch-overrides", default="{}", help="JSON {family: pitch or null}")
    ap.add_argument("--velocity", type=int, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(args.out) != len(args.manifests):
        ap.error("--out needs one path per --manifests entry")
    pitches = family_reference_pitches(read_manifest(args.train_manifest), json.loads(args.pitch_overrides))
    log.info("reference pitches rho_0,f: %s; velocity nu_0 = %d", pitches, args.velocity)
    for manifest, out in zip(args.manifests, args.out, strict=True):
        table = reference_table(read_manifest(manifest), pitches, args.velocity)
        exact = int(((table["pitch"] == table["ref_pitch"])
                     & (table["velocity"] == table["ref_velocity"])).sum())
        log.info("%s: %d instruments, %d at the exact reference note, %d by the nearest-note fallback",
                 manifest.stem, len(table), exact, len(table) - exact)
        write_table(pa.Table.from_pandas(table, preserve_index=False), out)


if __name__ == "__main__":
    main()
