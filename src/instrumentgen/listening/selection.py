"""Which notes and prompts the listening tests play, chosen with a seed and balanced.

- S2I (MUSHRA): ``n`` trials, each one cell (instrument, pitch, velocity) of the test split that every
  variant generated and that is not its instrument's query note (the paper generates "all other
  samples" from the query). Instruments take turns (a shuffled round robin), and the trials cycle
  through three pitch bands of the test notes (low / mid / high thirds), so no instrument and no
  register dominates.
- T2I (MOS): ``n`` prompts, a shuffled order of all of them (each prompt once before any twice is
  impossible: at most every prompt once).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BANDS = ("low", "mid", "high")


def pitch_bands(pitches: pd.Series) -> pd.Series:
    """Low / mid / high third of the test notes' pitches (edges at their 1/3 and 2/3 quantiles)."""
    low, high = np.quantile(pitches.to_numpy(float), [1 / 3, 2 / 3])
    return pd.Series(
        np.where(pitches < low, "low", np.where(pitches < high, "mid", "high")), index=pitches.index
    )


def mushra_trials(cells: pd.DataFrame, queries: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` S2I trials from ``cells`` (columns ``instrument``, ``pitch``, ``velocity``: the cells every
    variant generated) without the ``queries`` cells (same columns, one per instrument). Returns
    ``trial`` (``s2i_00`` …), ``instrument``, ``pitch``, ``velocity``, ``band``, in trial order."""
    if n < 1:
        raise ValueError(f"the MUSHRA test needs at least 1 trial, got {n}")
    key = ["instrument", "pitch", "velocity"]
    cells = cells[key].drop_duplicates()
    left_out = cells.merge(queries[key], on=key, how="left", indicator=True)["_merge"] == "both"
    pool = cells[~left_out.to_numpy()].reset_index(drop=True)
    if len(pool) < n:
        raise ValueError(f"{n} MUSHRA trials asked, but only {len(pool)} generated non-query cells exist")
    pool["band"] = pitch_bands(pool["pitch"])
    rng = np.random.default_rng([seed, 15])
    instruments = list(rng.permutation(sorted(pool["instrument"].unique())))
    chosen: list[int] = []
    taken = np.zeros(len(pool), dtype=bool)
    turn = 0
    while len(chosen) < n:
        instrument = instruments[turn % len(instruments)]
        band = BANDS[turn % len(BANDS)]
        turn += 1
        mine = (pool["instrument"] == instrument).to_numpy() & ~taken
        if not mine.any():
            continue
        in_band = mine & (pool["band"] == band).to_numpy()
        options = np.flatnonzero(in_band if in_band.any() else mine)
        pick = int(options[rng.integers(len(options))])
        taken[pick] = True
        chosen.append(pick)
    trials = pool.iloc[chosen].reset_index(drop=True)
    trials.insert(0, "trial", [f"s2i_{i:02d}" for i in range(n)])
    return trials


def mos_prompts(prompts: list[str], n: int, seed: int) -> list[str]:
    """``n`` prompts (at most all of them), in a seeded order."""
    if n < 1:
        raise ValueError(f"the MOS test needs at least 1 prompt, got {n}")
    if not prompts:
        raise ValueError("the MOS test needs T2I prompts, got none")
    order = np.random.default_rng([seed, 16]).permutation(sorted(prompts))
    return [str(p) for p in order[: min(n, len(prompts))]]
