"""Per-instrument CLAP affinities and the timbral-consistency score TC_CLAP* (paper eqs. 6–8), float64.

An :class:`Ensemble` holds L2-normalised CLAP audio embeddings of notes, grouped by instrument and
keyed by their (pitch, velocity) cell. For an instrument ``k`` with ``N_k`` cells (ordered by pitch,
then velocity), ``A_ij,k = Z_i,k^T Z_j,k / N_k`` (eq. 6): its entries are cosine similarities over
``N_k``, so its trace is 1.

The ground-truth statistic ``A_11,*`` (eq. 8) averages the per-instrument affinities of a reference
set (valid + test instruments in range). Instruments do not all have every cell, so the average is
masked: the cosine similarity of cells ``(c, c')`` is averaged over the reference instruments that
have both (:class:`ReferenceAffinity`); restricted to the ``n`` cells of a generated instrument and
divided by ``n``, it is that instrument's ``A_11,*`` (with complete instruments this is exactly the
paper's mean of ``A_11,k``). Cells the reference never has, or pairs no reference instrument has
together, are left out of the comparison (the cell with most undefined pairs first) and counted.

A masked average is not a Gram matrix, so it need not be positive semi-definite (on the tiny profile,
restricted to one test instrument's cells, its cosines have eigenvalues down to -1.36, every instrument
below -0.15). :meth:`ReferenceAffinity.restricted`
therefore projects it (:func:`nearest_psd`): its negative eigenvalues are clipped to 0 (the
Frobenius-nearest PSD matrix) and it is rescaled to trace 1, as every ``A_11,k`` has; the share of the
matrix that this moves is recorded per instrument and logged. With both matrices PSD of trace 1,
``Tr((A B)^(1/2)) <= sqrt(Tr A Tr B) = 1``.

    TC_CLAP*(Z_1, Z_2) = 1/K sum_k Tr((A_11,* A_22,k)^(1/2))     (in [0, 1]; 1 when A_22,k = A_11,*)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from instrumentgen.metrics.frechet import MetricInputError, check_embeddings, trace_sqrt_product

log = logging.getLogger(__name__)
CELL_COLUMNS = ["pitch", "velocity"]
PSD_TOLERANCE = 1e-10  # eigenvalues above -PSD_TOLERANCE * largest are round-off of a PSD matrix


def normalise_rows(z: np.ndarray) -> np.ndarray:
    """Rows of ``z`` ``[N, D]`` scaled to unit L2 norm (a zero row is an error: it has no direction)."""
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    if (norms == 0).any():
        raise MetricInputError(f"{int((norms == 0).sum())} embeddings are all zeros")
    return z / norms


@dataclass(frozen=True)
class Instrument:
    """One instrument's cells ``[N_k, 2]`` (pitch, velocity; sorted) and unit embeddings ``[N_k, D]``."""

    name: str
    cells: np.ndarray
    z: np.ndarray

    def affinity(self) -> np.ndarray:
        """``A_k = Z_k^T Z_k / N_k`` ``[N_k, N_k]`` (eq. 6, rows of ``z`` are the paper's columns)."""
        return self.z @ self.z.T / len(self.z)

    def subset(self, keep: np.ndarray) -> Instrument:
        return Instrument(self.name, self.cells[keep], self.z[keep])


@dataclass(frozen=True)
class Ensemble:
    """CLAP audio embeddings ``z`` ``[N, D]`` of notes, row-aligned with ``notes`` (columns
    ``instrument``, ``pitch``, ``velocity``); ``label`` names the set in errors."""

    notes: pd.DataFrame
    z: np.ndarray
    label: str

    def __post_init__(self) -> None:
        missing = {"instrument", *CELL_COLUMNS} - set(self.notes.columns)
        if missing:
            raise MetricInputError(f"{self.label}: note table lacks columns {sorted(missing)}")
        z = check_embeddings(self.z, self.label)
        if len(z) != len(self.notes):
            raise MetricInputError(f"{self.label}: {len(self.notes)} notes but {len(z)} embeddings")
        if self.notes.duplicated(["instrument", *CELL_COLUMNS]).any():
            first = self.notes[self.notes.duplicated(["instrument", *CELL_COLUMNS])].iloc[0]
            raise MetricInputError(
                f"{self.label}: instrument {first.instrument} has cell "
                f"({first.pitch}, {first.velocity}) twice"
            )
        object.__setattr__(self, "z", normalise_rows(z))
        object.__setattr__(self, "notes", self.notes.reset_index(drop=True))

    @property
    def dim(self) -> int:
        return self.z.shape[1]

    def instruments(self) -> Iterator[Instrument]:
        """Instruments in name order, cells sorted by pitch then velocity."""
        for name, group in self.notes.groupby("instrument", sort=True):
            group = group.sort_values(CELL_COLUMNS)
            cells = group[CELL_COLUMNS].to_numpy(np.int64)
            yield Instrument(str(name), cells, self.z[group.index.to_numpy()])

    def instrument_names(self) -> list[str]:
        return sorted(map(str, self.notes["instrument"].unique()))

    def without(self, cells: pd.DataFrame, label: str | None = None) -> Ensemble:
        """The notes of this set except those whose (``instrument``, ``pitch``, ``velocity``) is a row of
        ``cells`` (rows naming notes this set lacks are ignored)."""
        keep = ~cell_mask(self.notes, cells)
        return Ensemble(self.notes[keep], self.z[keep], label or self.label)


def cell_mask(notes: pd.DataFrame, cells: pd.DataFrame) -> np.ndarray:
    """Boolean mask ``[len(notes)]``: the notes whose (``instrument``, ``pitch``, ``velocity``) is a row of
    ``cells``."""
    key = ["instrument", *CELL_COLUMNS]
    types = {"instrument": str, "pitch": np.int64, "velocity": np.int64}
    wanted = cells[key].astype(types).drop_duplicates()
    merged = notes[key].astype(types).merge(wanted, on=key, how="left", indicator=True)
    return (merged["_merge"] == "both").to_numpy()


def check_same_dim(a: Ensemble, b: Ensemble) -> None:
    if a.dim != b.dim:
        raise MetricInputError(f"embedding dimensions differ: {a.label} has {a.dim}, {b.label} has {b.dim}")


@dataclass(frozen=True)
class Projection:
    """A symmetric matrix ``[n, n]`` projected to PSD (:func:`nearest_psd`): the ``matrix``, the smallest
    eigenvalue of the input and ``change``, ``||projected - input||_F / ||input||_F`` (0: unchanged)."""

    matrix: np.ndarray
    min_eigenvalue: float
    change: float


def nearest_psd(a: np.ndarray) -> Projection:
    """``a`` ``[n, n]`` (symmetrised) with its negative eigenvalues clipped to 0, the Frobenius-nearest
    PSD matrix, rescaled to the trace ``a`` had. A matrix already PSD up to round-off
    (:data:`PSD_TOLERANCE`) is returned as it is."""
    sym = (a + a.T) / 2
    w, v = np.linalg.eigh(sym)
    scale = max(1.0, float(np.abs(w).max())) if len(w) else 1.0
    if not len(w) or w.min() >= -PSD_TOLERANCE * scale:
        return Projection(sym, float(w.min()) if len(w) else 0.0, 0.0)
    clipped = (v * np.clip(w, 0.0, None)) @ v.T
    total = float(np.trace(clipped))
    if total <= 0:
        raise MetricInputError(f"a {len(a)}x{len(a)} affinity has no positive eigenvalue to project onto")
    projected = clipped * (float(np.trace(sym)) / total)
    change = float(np.linalg.norm(projected - sym) / np.linalg.norm(sym))
    return Projection(projected, float(w.min()), change)


@dataclass(frozen=True)
class ReferenceAffinity:
    """Masked mean cosine similarity ``[G, G]`` over the reference instruments, on the ``G`` cells
    ``[G, 2]`` any of them has (NaN where no instrument has both cells); ``support`` counts them."""

    cells: np.ndarray
    cosine: np.ndarray
    support: np.ndarray
    n_instruments: int
    dim: int
    label: str

    @classmethod
    def fit(cls, reference: Ensemble) -> ReferenceAffinity:
        cells = np.unique(reference.notes[CELL_COLUMNS].to_numpy(np.int64), axis=0)  # sorted: pitch, velocity
        index = {tuple(c): i for i, c in enumerate(cells)}
        total = np.zeros((len(cells), len(cells)))
        support = np.zeros((len(cells), len(cells)), dtype=np.int64)
        n = 0
        for inst in reference.instruments():
            at = np.array([index[tuple(c)] for c in inst.cells])
            total[np.ix_(at, at)] += inst.z @ inst.z.T
            support[np.ix_(at, at)] += 1
            n += 1
        if n == 0:
            raise MetricInputError(f"{reference.label}: no reference instruments")
        with np.errstate(invalid="ignore", divide="ignore"):
            cosine = np.where(support > 0, total / np.maximum(support, 1), np.nan)
        return cls(cells, cosine, support, n, reference.dim, reference.label)

    def index_of(self, cells: np.ndarray) -> np.ndarray:
        """Positions ``[n]`` of ``cells`` ``[n, 2]`` in :attr:`cells` (-1 where the reference lacks one)."""
        index = {tuple(c): i for i, c in enumerate(self.cells)}
        return np.array([index.get(tuple(c), -1) for c in np.asarray(cells, np.int64)], dtype=np.int64)

    def usable(self, cells: np.ndarray) -> np.ndarray:
        """Boolean mask ``[n]`` of the ``cells`` compared: the reference has each of them and a cosine for
        every pair (cells causing undefined pairs are dropped, the one with most of them first)."""
        at = self.index_of(cells)
        keep = at >= 0
        while keep.any():
            sub = self.cosine[np.ix_(at[keep], at[keep])]
            undefined = np.isnan(sub).sum(axis=1)
            if not undefined.any():
                break
            keep[np.flatnonzero(keep)[int(np.argmax(undefined))]] = False
        return keep

    def restricted(self, cells: np.ndarray) -> np.ndarray:
        """``A_11,*`` on ``cells`` ``[n, 2]`` (all usable): cosines ``[n, n]`` divided by ``n``, projected
        to the nearest PSD matrix of trace 1 (:meth:`projection`)."""
        return self.projection(cells).matrix

    def projection(self, cells: np.ndarray) -> Projection:
        """``A_11,*`` on ``cells`` projected by :func:`nearest_psd`, with how much that moved it."""
        return nearest_psd(self.masked_mean(cells))

    def masked_mean(self, cells: np.ndarray) -> np.ndarray:
        """``A_11,*`` on ``cells`` ``[n, 2]`` (all usable) as averaged, unprojected ``[n, n]``."""
        at = self.index_of(cells)
        if (at < 0).any():
            raise MetricInputError(
                f"cell {tuple(np.asarray(cells)[int(np.argmax(at < 0))])} is not in the reference"
            )
        sub = self.cosine[np.ix_(at, at)]
        if np.isnan(sub).any():
            raise MetricInputError("some cell pairs have no reference statistics (use usable() first)")
        return sub / len(at)


@dataclass(frozen=True)
class InstrumentScore:
    """A per-instrument score and the number of its cells that were compared / left out."""

    instrument: str
    value: float
    n_cells: int
    n_excluded: int
    projected: float = 0.0  # TC: share of A_11,* moved by the PSD projection (Projection.change)


def tc_instrument(
    reference: ReferenceAffinity, inst: Instrument, label: str = "generated"
) -> InstrumentScore:
    """``Tr((A_11,* A_22,k)^(1/2))`` for one generated instrument over its usable cells."""
    keep = reference.usable(inst.cells)
    if not keep.any():
        raise MetricInputError(
            f"{label}: instrument {inst.name} has no cell in common with the reference "
            f"({len(inst.cells)} generated cells)"
        )
    used = inst.subset(keep)
    a11 = reference.projection(used.cells)
    # sqrt of the generated affinity (a Gram matrix, PSD by construction) on the outside of the product
    value = trace_sqrt_product(used.affinity(), a11.matrix)
    return InstrumentScore(inst.name, value, int(keep.sum()), int((~keep).sum()), a11.change)


def tc_score(reference: ReferenceAffinity, generated: Ensemble) -> tuple[float, list[InstrumentScore]]:
    """TC_CLAP* (eq. 8): the mean over the generated instruments, and the per-instrument scores."""
    if reference.dim != generated.dim:
        raise MetricInputError(
            f"embedding dimensions differ: {reference.label} has {reference.dim}, "
            f"{generated.label} has {generated.dim}"
        )
    scores = [tc_instrument(reference, inst, generated.label) for inst in generated.instruments()]
    if not scores:
        raise MetricInputError(f"{generated.label}: no generated instruments")
    projected = [s.projected for s in scores if s.projected > 0]
    if projected:
        log.info(
            "%s: A_11,* was not PSD on the cells of %d of %d instruments; projected to the nearest PSD "
            "matrix, moving it by up to %.3g of its Frobenius norm",
            generated.label, len(projected), len(scores), max(projected),
        )
    return float(np.mean([s.value for s in scores])), scores
