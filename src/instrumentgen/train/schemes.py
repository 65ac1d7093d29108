"""CLAP conditioning schemes (paper Section 2.4): which note's CLAP audio embedding conditions a target note.

- ``baseline`` (eq. 2): z = E_a(x_k(p, v)), the target note's own embedding.
- ``random`` (eq. 3): z = E_a(x_k(rho~, nu~)), a note of the same instrument k drawn uniformly with
  replacement, every draw independent (the target itself can be drawn). Eq. 3 draws pitch and velocity
  uniformly from the full 88-key x 5-velocity grid, but NSynth instruments do not have every cell; we draw
  uniformly among the notes of the instrument that exist in the data, which is the paper's intent
  ("neighbors" = samples from the same instrument).
- ``fixed`` (eq. 4): z = E_a(x_k(rho_{0,f}, nu_0)), the instrument's reference note, given by a reference
  table computed elsewhere (nearest available pitch to a per-family pitch, then nearest velocity to 100).

Indices are rows of the notes table, which is row-aligned with the CLAP embedding array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SCHEMES: tuple[str, ...] = ("baseline", "random", "fixed")


@dataclass(frozen=True, eq=False)
class ClapPairing:
    """Maps target-note rows to the rows whose CLAP embeddings condition them."""

    scheme: str
    group: np.ndarray  # [N] instrument index of each row
    offsets: np.ndarray  # [G + 1] CSR offsets into ``members``
    members: np.ndarray  # [N] rows grouped by instrument
    reference_row: np.ndarray  # [G] reference row per instrument (fixed scheme), else empty

    @property
    def n_notes(self) -> int:
        return len(self.group)

    def sample(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"rows must be integer indices, got dtype {rows.dtype}")
        rows = rows.astype(np.int64, copy=False)
        bad = rows[(rows < 0) | (rows >= self.n_notes)]
        if bad.size:
            raise ValueError(f"row {int(bad[0])} out of range for {self.n_notes} notes")
        if self.scheme == "baseline":
            return rows.copy()
        g = self.group[rows]
        if self.scheme == "fixed":
            return self.reference_row[g]
        size = self.offsets[g + 1] - self.offsets[g]
        pick = np.minimum(np.floor(rng.random(rows.shape) * size).astype(np.int64), size - 1)
        return self.members[self.offsets[g] + pick]


def make_pairing(scheme: str, notes: pd.DataFrame, reference: pd.DataFrame | None = None) -> ClapPairing:
    """Build the pairing for ``scheme`` over ``notes`` (columns ``note_str``, ``instrument_str``)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown CLAP scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if len(notes) == 0:
        raise ValueError("empty notes table")
    note_str = notes["note_str"].to_numpy()
    dup = pd.Index(note_str)[pd.Index(note_str).duplicated()]
    if len(dup):
        raise ValueError(f"duplicate note_str in notes: {dup[0]!r}")
    codes, instruments = pd.factorize(notes["instrument_str"].to_numpy())
    if (codes < 0).any():
        raise ValueError(f"missing instrument_str for note {note_str[np.argmax(codes < 0)]!r}")
    group = codes.astype(np.int64)
    members = np.argsort(group, kind="stable").astype(np.int64)
    offsets = np.zeros(len(instruments) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(group, minlength=len(instruments)))
    reference_row = np.empty(0, dtype=np.int64)
    if scheme == "fixed":
        if reference is None:
            raise ValueError("scheme 'fixed' needs a reference table")
        ref_in = reference[reference["instrument_str"].isin(instruments)]
        twice = ref_in["instrument_str"][ref_in["instrument_str"].duplicated()]
        if len(twice):
            raise ValueError(f"instrument {twice.iloc[0]!r} has several reference notes")
        ref = dict(zip(ref_in["instrument_str"], ref_in["note_str"], strict=True))
        row_of = {n: i for i, n in enumerate(note_str)}
        reference_row = np.empty(len(instruments), dtype=np.int64)
        for gi, inst in enumerate(instruments):
            if inst not in ref:
                raise ValueError(f"instrument {inst!r} has no reference note")
            r = row_of.get(ref[inst])
            if r is None:
                raise ValueError(f"reference note {ref[inst]!r} of instrument {inst!r} is not in notes")
            if group[r] != gi:
                raise ValueError(
                    f"reference note {ref[inst]!r} belongs to {instruments[group[r]]!r}, not to {inst!r}"
                )
            reference_row[gi] = r
    return ClapPairing(scheme, group, offsets, members, reference_row)
