"""Average CLAP scores s_CLAP* (paper eqs. 9–11), float64.

S2I (eq. 10): ``s_CLAP* = 1/K sum_k Tr(A_12,k)``: per test instrument, the mean cosine similarity of
each generated note to the ground-truth note of the same (pitch, velocity) cell, averaged over
instruments.

T2I: one text embedding ``z`` must be compared with a whole generated instrument; the reference
ensemble ``Z_1,k`` is synthesised three ways (Section 3.3.2):

- **naive**: ``z`` replicated for every cell (covariance: all ones, "ideal TC").
- **translation** (eq. 11): ``M_1,*`` holds the re-normalised mean reference embedding of every cell;
  the cell whose template is closest to ``z`` (cosine) gives ``(rho_hat, nu_hat)`` and ``mu_hat``.
  The paper prints ``M_1,k = M_1,* + (mu_hat - z)``, which would put ``2 mu_hat - z`` at
  ``(rho_hat, nu_hat)``; its stated intent ("aligned to z at rho_hat/nu_hat") needs
  ``M_1,k = M_1,* + (z - mu_hat)``, which is what is computed (columns re-normalised), so that
  column equals ``z``.
- **coloration**: the ensemble with covariance exactly ``A_11,*`` (on the instrument's cells) closest
  to the translated one in Frobenius norm: with ``A_11,* N = V W V^T`` (eigh) and ``L = W^½ V^T``, every
  ``Z`` with ``Z^T Z = L^T L`` is ``U L`` for orthonormal ``U``; the closest is ``U = P R^T`` from the
  SVD ``Z_trans L^T = P S R^T`` (orthogonal Procrustes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from instrumentgen.metrics.affinity import (
    CELL_COLUMNS,
    Ensemble,
    Instrument,
    InstrumentScore,
    ReferenceAffinity,
    check_same_dim,
    normalise_rows,
)
from instrumentgen.metrics.frechet import MetricInputError, check_embeddings

T2I_METHODS = ("naive", "translation", "coloration")


def _mean_score(scores: list[InstrumentScore], label: str) -> float:
    if not scores:
        raise MetricInputError(f"{label}: no instruments to score")
    return float(np.mean([s.value for s in scores]))


def s2i_score(truth: Ensemble, generated: Ensemble) -> tuple[float, list[InstrumentScore]]:
    """s_CLAP* (eq. 10) of generated instruments against the ground truth of the same names and cells."""
    check_same_dim(truth, generated)
    truth_by_name = {inst.name: inst for inst in truth.instruments()}
    scores = []
    for inst in generated.instruments():
        if inst.name not in truth_by_name:
            raise MetricInputError(f"{generated.label}: instrument {inst.name} is not in {truth.label}")
        ref = truth_by_name[inst.name]
        ref_at = {tuple(c): i for i, c in enumerate(ref.cells)}
        pairs = [(i, ref_at[tuple(c)]) for i, c in enumerate(inst.cells) if tuple(c) in ref_at]
        if not pairs:
            raise MetricInputError(
                f"{generated.label}: instrument {inst.name} has no generated cell that {truth.label} has"
            )
        gen_rows, ref_rows = map(np.array, zip(*pairs, strict=True))
        cos = np.einsum("nd,nd->n", inst.z[gen_rows], ref.z[ref_rows])  # Tr(A_12,k) = mean cosine
        scores.append(InstrumentScore(inst.name, float(cos.mean()), len(pairs), len(inst.cells) - len(pairs)))
    return _mean_score(scores, generated.label), scores


@dataclass(frozen=True)
class Templates:
    """``M_1,*``: the re-normalised mean reference embedding ``[G, D]`` of each cell ``[G, 2]``."""

    cells: np.ndarray
    z: np.ndarray

    @classmethod
    def fit(cls, reference: Ensemble) -> Templates:
        table = reference.notes[CELL_COLUMNS].copy()
        table["row"] = np.arange(len(table))
        cells, means = [], []
        for cell, group in table.groupby(CELL_COLUMNS, sort=True):
            cells.append(cell)
            means.append(reference.z[group["row"].to_numpy()].mean(axis=0))
        return cls(np.array(cells, dtype=np.int64), normalise_rows(np.array(means)))

    def closest(self, z: np.ndarray) -> int:
        """Row of the template with the highest cosine to the unit ``z`` (``(rho_hat, nu_hat)``)."""
        return int(np.argmax(self.z @ z))

    def cosine_map(self, z: np.ndarray) -> np.ndarray:
        """Cosine of every template to ``z`` ``[G]`` (Figure 2d)."""
        return self.z @ z

    def rows_of(self, cells: np.ndarray) -> np.ndarray:
        index = {tuple(c): i for i, c in enumerate(self.cells)}
        return np.array([index.get(tuple(c), -1) for c in np.asarray(cells, np.int64)], dtype=np.int64)


def unit(z: np.ndarray, name: str) -> np.ndarray:
    z = check_embeddings(np.asarray(z, dtype=np.float64)[None], name)[0]
    return normalise_rows(z[None])[0]


def translated(templates: Templates, z: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Translated ensemble ``[n, D]`` on ``cells`` (each with a template):
    ``normalise(M_1,* + (z - mu_hat))``."""
    rows = templates.rows_of(cells)
    if (rows < 0).any():
        raise MetricInputError(f"cell {tuple(cells[int(np.argmax(rows < 0))])} has no reference template")
    mu_hat = templates.z[templates.closest(z)]
    return normalise_rows(templates.z[rows] + (z - mu_hat))


def colored(z_translated: np.ndarray, a11: np.ndarray) -> np.ndarray:
    """The ensemble ``[n, D]`` closest to ``z_translated`` ``[n, D]`` whose affinity ``Z Z^T / n`` equals
    ``a11`` ``[n, n]``. ``a11`` must have rank at most D. :meth:`ReferenceAffinity.restricted` gives it
    already projected to PSD; any negative eigenvalue left (round-off) is clipped to 0 here."""
    n, d = z_translated.shape
    w, v = np.linalg.eigh(n * (a11 + a11.T) / 2)
    positive = w > 1e-12 * max(1.0, float(w.max()))
    if positive.sum() > d:
        raise MetricInputError(
            f"A_11,* on these {n} cells has rank {int(positive.sum())} > the embedding dimension {d}: no "
            f"{d}-dimensional ensemble has that covariance"
        )
    lift = np.sqrt(w[positive])[:, None] * v[:, positive].T  # L [r, n], L^T L = n A_11,*
    p, _, rt = np.linalg.svd(z_translated.T @ lift.T, full_matrices=False)  # [D, r] = P S R^T
    return (p @ rt @ lift).T  # (U L)^T, U = P R^T


@dataclass(frozen=True)
class T2IScores:
    """s_CLAP* for each method, with per-instrument scores."""

    naive: tuple[float, list[InstrumentScore]]
    translation: tuple[float, list[InstrumentScore]]
    coloration: tuple[float, list[InstrumentScore]]

    def as_dict(self) -> dict[str, float]:
        return {m: getattr(self, m)[0] for m in T2I_METHODS}


def t2i_reference(
    method: str,
    z_text: np.ndarray,
    inst: Instrument,
    templates: Templates,
    affinity: ReferenceAffinity,
) -> tuple[np.ndarray, np.ndarray]:
    """The synthesised ``Z_1,k`` ``[n, D]`` of one prompt's instrument and the mask ``[N_k]`` of its cells
    used (naive uses every cell; translation and coloration the cells the reference covers)."""
    z = unit(z_text, f"text embedding of {inst.name}")
    if method == "naive":
        return np.repeat(z[None], len(inst.cells), axis=0), np.ones(len(inst.cells), dtype=bool)
    keep = affinity.usable(inst.cells) & (templates.rows_of(inst.cells) >= 0)
    if not keep.any():
        raise MetricInputError(f"instrument {inst.name} has no generated cell the reference covers")
    moved = translated(templates, z, inst.cells[keep])
    if method == "translation":
        return moved, keep
    if method == "coloration":
        return colored(moved, affinity.restricted(inst.cells[keep])), keep
    raise MetricInputError(f"unknown T2I method {method!r}; known: {', '.join(T2I_METHODS)}")


def t2i_scores(
    text: dict[str, np.ndarray], generated: Ensemble, templates: Templates, affinity: ReferenceAffinity
) -> T2IScores:
    """s_CLAP* of each generated instrument (named by its prompt id) against its prompt's text embedding
    ``text[name]`` ``[D]``, by each method of :data:`T2I_METHODS`."""
    if templates.z.shape[1] != generated.dim:
        raise MetricInputError(
            f"embedding dimensions differ: reference templates have {templates.z.shape[1]}, "
            f"{generated.label} has {generated.dim}"
        )
    out: dict[str, list[InstrumentScore]] = {m: [] for m in T2I_METHODS}
    for inst in generated.instruments():
        if inst.name not in text:
            raise MetricInputError(f"{generated.label}: instrument {inst.name} has no prompt text embedding")
        if np.asarray(text[inst.name]).shape != (generated.dim,):
            raise MetricInputError(
                f"text embedding of {inst.name} has shape {np.asarray(text[inst.name]).shape}, "
                f"the audio embeddings {generated.dim} dimensions"
            )
        for method in T2I_METHODS:
            try:
                z1, keep = t2i_reference(method, text[inst.name], inst, templates, affinity)
            except MetricInputError as err:
                raise MetricInputError(f"{generated.label}: {err}") from None
            cos = np.einsum("nd,nd->n", z1, inst.z[keep])
            out[method].append(
                InstrumentScore(inst.name, float(cos.mean()), int(keep.sum()), int((~keep).sum()))
            )
    return T2IScores(*((_mean_score(out[m], generated.label), out[m]) for m in T2I_METHODS))
