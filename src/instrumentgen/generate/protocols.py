"""The two generation protocols of the paper (Section 4) as plans: one row per note to generate.

- **S2I** (sample to instrument): for each test instrument, one query note drawn with a seeded
  generator; its CLAP *audio* embedding conditions the generation of every (pitch, velocity) cell the
  instrument has (the query cell included), so generated and ground-truth instruments have the same
  cells. The paper generates "all other samples" from the query: evaluation leaves the query cell
  (:func:`s2i_queries`) out of the scores.
- **T2I** (text to instrument): each prompt's CLAP *text* embedding conditions the full grid of pitches
  x velocities.

Family and source are not known at inference (paper Section 2.3), so both protocols leave them to
their null embeddings (``drop_family``/``drop_source``).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from instrumentgen.nsynth.metadata import PIANO_MAX, PIANO_MIN, VELOCITIES

PLAN_COLUMNS = ["instrument", "pitch", "velocity", "clap_source", "clap_row", "query_note"]


def check_grid(pitches, velocities) -> tuple[list[int], list[int]]:
    """Validated, sorted, de-duplicated grid; errors name a value outside 21..108 x {25, 50, 75, 100, 127}."""
    pitches = sorted({int(p) for p in pitches})
    velocities = sorted({int(v) for v in velocities})
    if not pitches or not velocities:
        raise ValueError(f"the grid needs at least one pitch and one velocity, got {pitches} x {velocities}")
    bad = [p for p in pitches if not PIANO_MIN <= p <= PIANO_MAX]
    if bad:
        raise ValueError(f"pitch {bad[0]} is outside the 88 keys (MIDI {PIANO_MIN}..{PIANO_MAX})")
    bad = [v for v in velocities if v not in VELOCITIES]
    if bad:
        raise ValueError(f"velocity {bad[0]} is not one of {list(VELOCITIES)}")
    return pitches, velocities


def query_row(instrument: str, rows: np.ndarray, seed: int) -> int:
    """The seeded query note of ``instrument`` among its ``rows``: depends only on (seed, instrument name),
    so adding or removing other instruments does not change it."""
    rng = np.random.default_rng([seed, zlib.crc32(instrument.encode())])
    return int(rows[rng.integers(len(rows))])


def s2i_queries(notes: pd.DataFrame, seed: int, instrument_column: str = "instrument_str") -> pd.DataFrame:
    """The S2I query note of every instrument of ``notes`` (columns ``instrument_column``, ``pitch``,
    ``velocity``; index and row order = the CLAP audio cache's, as generation reads it): a frame with
    one row per instrument (sorted), columns ``instrument``, ``pitch``, ``velocity`` (the query cell) and
    ``row`` (its index label in ``notes``). Generation conditions on these notes; evaluation leaves
    their cells out of the S2I scores. The single definition of which note is the query."""
    missing = {instrument_column, "pitch", "velocity"} - set(notes.columns)
    if missing:
        raise ValueError(f"S2I queries need the columns {sorted(missing)} in the note table")
    rows = []
    for instrument, group in notes.groupby(instrument_column, sort=True):
        query = query_row(str(instrument), group.index.to_numpy(), seed)
        rows.append((instrument, int(notes.at[query, "pitch"]), int(notes.at[query, "velocity"]), query))
    return pd.DataFrame(rows, columns=["instrument", "pitch", "velocity", "row"])


def s2i_plan(notes: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per note of every instrument in ``notes`` (columns ``instrument_str``, ``pitch``,
    ``velocity``, ``note_str``; row order = the CLAP audio cache's), conditioned on that instrument's
    query note (:func:`s2i_queries`; ``clap_row`` indexes the CLAP audio cache)."""
    if notes.empty:
        raise ValueError("S2I needs test notes, got an empty table")
    queries = s2i_queries(notes, seed).set_index("instrument")["row"]
    frames = []
    for instrument, group in notes.groupby("instrument_str", sort=True):
        query = int(queries[instrument])
        cells = group[["pitch", "velocity"]].drop_duplicates().sort_values(["pitch", "velocity"])
        frames.append(
            cells.assign(
                instrument=instrument,
                clap_source="audio",
                clap_row=query,
                query_note=notes.at[query, "note_str"],
            )
        )
    plan = pd.concat(frames, ignore_index=True)[PLAN_COLUMNS]
    return plan.assign(drop_family=True, drop_source=True)


def instrument_plan(
    name: str, pitches, velocities, clap_source: str, clap_row: int = 0, query_note: str = ""
) -> pd.DataFrame:
    """One instrument's plan: a row per (pitch, velocity) of the checked grid, all conditioned on the
    CLAP embedding ``clap_row`` (from ``clap_source``: ``"audio"`` or ``"text"``), family and source
    left to their null embeddings."""
    pitches, velocities = check_grid(pitches, velocities)
    grid = pd.MultiIndex.from_product([pitches, velocities], names=["pitch", "velocity"]).to_frame(
        index=False
    )
    plan = grid.assign(instrument=name, clap_source=clap_source, clap_row=clap_row, query_note=query_note)
    return plan[PLAN_COLUMNS].assign(drop_family=True, drop_source=True)


def t2i_plan(prompts: pd.DataFrame, pitches, velocities) -> pd.DataFrame:
    """One row per (prompt, pitch, velocity); ``clap_row`` indexes the prompts' CLAP text cache."""
    if prompts.empty:
        raise ValueError("T2I needs prompts, got an empty table")
    frames = [
        instrument_plan(str(prompt_id), pitches, velocities, "text", clap_row=int(i))
        for i, prompt_id in enumerate(prompts["id"])
    ]
    return pd.concat(frames, ignore_index=True)
