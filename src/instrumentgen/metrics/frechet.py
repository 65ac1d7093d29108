"""Fréchet audio distance (paper eq. 5, in its standard form) in float64.

    FAD(Z_1, Z_2) = ||mu_1 - mu_2||^2 + Tr(A_1 + A_2 - 2 (A_1 A_2)^(1/2))

over two sets of embeddings ``[N_i, D]`` (rows are frames: VGGish gives T = 4 rows per 4 s note, CLAP
one). Our copy of the paper prints the trace term without the ``- 2`` (see FACTS); the standard form is
used, so the FAD of a set with itself is 0.

The trace of the matrix square root is taken through symmetric eigendecompositions only: with
``S = A_1^(1/2)`` (from ``eigh``), ``A_1 A_2`` is similar to the symmetric PSD ``S A_2 S``, so
``Tr (A_1 A_2)^(1/2) = sum sqrt(eig(S A_2 S))``. No complex ``sqrtm`` and no cast that could hide an
imaginary part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SAMPLES = 2  # an unbiased covariance needs two rows


class MetricInputError(ValueError):
    """Embeddings that a metric cannot use (wrong shape, too few rows, NaN); the message names them."""


def check_embeddings(z: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """``z`` as a float64 ``[N, D]`` array with ``N >= min_rows`` finite rows, or a clear error."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] == 0:
        raise MetricInputError(f"{name}: expected embeddings [N, D], got shape {z.shape}")
    if len(z) < min_rows:
        raise MetricInputError(f"{name}: {len(z)} embeddings, at least {min_rows} are needed")
    bad = ~np.isfinite(z).all(axis=1)
    if bad.any():
        raise MetricInputError(
            f"{name}: {int(bad.sum())} embeddings have NaN/inf values (first: row {int(np.argmax(bad))})"
        )
    return z


def psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root of the symmetric ``a`` ``[D, D]`` (negative eigenvalues, round-off of a
    PSD matrix, are clipped to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(a: np.ndarray, b: np.ndarray) -> float:
    """``Tr (A B)^(1/2)`` for symmetric PSD ``A``, ``B`` ``[D, D]``: ``sum sqrt(eig(A^½ B A^½))``."""
    s = psd_sqrt(a)
    m = s @ b @ s
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


@dataclass(frozen=True)
class Gaussian:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of a set of ``n`` embeddings."""

    mean: np.ndarray
    cov: np.ndarray
    n: int

    @classmethod
    def fit(cls, z: np.ndarray, name: str = "embeddings") -> Gaussian:
        z = check_embeddings(z, name, MIN_SAMPLES)
        return cls(z.mean(axis=0), np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1]), len(z))


def frechet_distance(g1: Gaussian, g2: Gaussian) -> float:
    """Fréchet distance between two Gaussians of the same dimension."""
    if g1.mean.shape != g2.mean.shape:
        raise MetricInputError(
            f"embedding dimensions differ: {g1.mean.shape[0]} (set 1) vs {g2.mean.shape[0]} (set 2)"
        )
    diff = g1.mean - g2.mean
    value = diff @ diff + np.trace(g1.cov) + np.trace(g2.cov) - 2.0 * trace_sqrt_product(g1.cov, g2.cov)
    return float(max(value, 0.0))  # exact 0 for identical sets; round-off never makes it negative


def fad(z1: np.ndarray, z2: np.ndarray, names: tuple[str, str] = ("reference", "generated")) -> float:
    """FAD between embeddings ``z1`` ``[N_1, D]`` (ground truth) and ``z2`` ``[N_2, D]`` (generated)."""
    a, b = (check_embeddings(z, n, MIN_SAMPLES) for z, n in zip((z1, z2), names, strict=True))
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(
            f"embedding dimensions differ: {names[0]} has {a.shape[1]}, {names[1]} has {b.shape[1]}"
        )
    return frechet_distance(Gaussian.fit(a, names[0]), Gaussian.fit(b, names[1]))
