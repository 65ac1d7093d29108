"""FAD (eq. 5, standard form) against a straightforward scipy ``sqrtm`` reference."""

import numpy as np
import pytest
from scipy import linalg

from instrumentgen.metrics.frechet import MetricInputError, fad, trace_sqrt_product


def reference_fad(z1: np.ndarray, z2: np.ndarray) -> float:
    mu1, mu2 = z1.mean(0), z2.mean(0)
    a1, a2 = np.cov(z1, rowvar=False), np.cov(z2, rowvar=False)
    root = linalg.sqrtm(a1 @ a2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(a1) + np.trace(a2) - 2 * np.trace(root).real)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fad_matches_scipy_sqrtm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z1 = rng.normal(size=(80, 6)) @ rng.normal(size=(6, 6))
    z2 = rng.normal(loc=0.3, size=(60, 6)) @ rng.normal(size=(6, 6))
    assert fad(z1, z2) == pytest.approx(reference_fad(z1, z2), rel=1e-9, abs=1e-9)


def test_fad_zero_for_identical_sets_and_symmetric() -> None:
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(40, 5)), rng.normal(size=(50, 5)) * 2
    assert fad(z1, z1) == pytest.approx(0.0, abs=1e-10)
    assert fad(z1, z2) == pytest.approx(fad(z2, z1), rel=1e-12)
    assert fad(z1, z2) > 1.0


def test_trace_sqrt_product_of_singular_matrices() -> None:
    # fewer samples than dimensions: singular covariances, still the reference value
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3, 8)), rng.normal(size=(4, 8))
    a, b = x.T @ x, y.T @ y
    expected = np.trace(linalg.sqrtm(a @ b)).real
    assert trace_sqrt_product(a, b) == pytest.approx(expected, rel=1e-6)


def test_fad_bad_input_is_named() -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(MetricInputError, match="dimensions differ: reference has 4, generated has 5"):
        fad(rng.normal(size=(10, 4)), rng.normal(size=(10, 5)))
    with pytest.raises(MetricInputError, match="generated: 1 embeddings, at least 2 are needed"):
        fad(rng.normal(size=(10, 4)), rng.normal(size=(1, 4)))
    bad = rng.normal(size=(10, 4))
    bad[7, 2] = np.nan
    with pytest.raises(MetricInputError, match="reference: 1 embeddings have NaN.*row 7"):
        fad(bad, rng.normal(size=(10, 4)))
