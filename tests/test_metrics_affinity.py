"""TC_CLAP* (eqs. 6-8) against explicit loops over instruments and cells, with absent cells masked."""

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity, tc_score
from instrumentgen.metrics.frechet import MetricInputError

CELLS = [(p, v) for p in (40, 41, 42) for v in (25, 75)]


def ensemble(rng, n_instruments: int, dim: int = 8, drop: dict | None = None, label: str = "set") -> Ensemble:
    rows, z = [], []
    for k in range(n_instruments):
        base = rng.normal(size=dim)
        for cell in CELLS:
            if drop and cell in drop.get(k, ()):
                continue
            rows.append({"instrument": f"i{k}", "pitch": cell[0], "velocity": cell[1]})
            z.append(base + 0.7 * rng.normal(size=dim))
    return Ensemble(pd.DataFrame(rows), np.array(z), label)


def unit(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_reference_is_the_mean_of_per_instrument_affinities_when_complete() -> None:
    ref = ensemble(np.random.default_rng(0), 4, label="reference")
    fitted = ReferenceAffinity.fit(ref)
    n = len(CELLS)
    explicit = np.zeros((n, n))
    for k in range(4):
        zk = unit(ref.z[ref.notes["instrument"].to_numpy() == f"i{k}"])  # cells in CELLS order
        explicit += zk @ zk.T / n / 4  # A_11,k = Z^T Z / N_k, averaged over K
    np.testing.assert_allclose(fitted.restricted(np.array(CELLS)), explicit, atol=1e-12)
    assert np.trace(fitted.restricted(np.array(CELLS))) == pytest.approx(1.0)


def test_tc_matches_scipy_loop_and_lies_in_unit_interval() -> None:
    rng = np.random.default_rng(1)
    ref, gen = ensemble(rng, 5, label="reference"), ensemble(rng, 3, label="generated")
    fitted = ReferenceAffinity.fit(ref)
    value, per = tc_score(fitted, gen)
    a11 = fitted.restricted(np.array(CELLS))
    explicit = []
    for k in range(3):
        zk = unit(gen.z[gen.notes["instrument"].to_numpy() == f"i{k}"])
        explicit.append(np.trace(linalg.sqrtm(a11 @ (zk @ zk.T / len(CELLS)))).real)
    assert value == pytest.approx(np.mean(explicit), rel=1e-7)
    assert [s.value for s in per] == pytest.approx(explicit, rel=1e-7)
    assert all(0.0 <= s.value <= 1.0 + 1e-12 for s in per)


def test_tc_is_one_when_the_generated_affinity_equals_the_reference() -> None:
    ref = ensemble(np.random.default_rng(2), 1, label="reference")
    value, per = tc_score(ReferenceAffinity.fit(ref), ref)
    assert value == pytest.approx(1.0, abs=1e-9)
    other = ensemble(np.random.default_rng(3), 1, label="generated")
    assert tc_score(ReferenceAffinity.fit(ref), other)[0] < 0.999


def test_absent_cells_are_masked_in_the_reference_and_the_comparison() -> None:
    rng = np.random.default_rng(4)
    # instrument 0 lacks (42, 75), instrument 1 lacks (40, 25): their pair is covered by instrument 2 only
    ref = ensemble(rng, 3, drop={0: [(42, 75)], 1: [(40, 25)]}, label="reference")
    fitted = ReferenceAffinity.fit(ref)
    i, j = CELLS.index((40, 25)), CELLS.index((42, 75))
    z2 = unit(ref.z[ref.notes["instrument"].to_numpy() == "i2"])
    assert fitted.support[i, j] == 1 and fitted.cosine[i, j] == pytest.approx(z2[i] @ z2[j])
    k = CELLS.index((41, 75))
    pairs = []
    for name in ("i0", "i1", "i2"):
        sub = ref.notes[ref.notes["instrument"] == name]
        zz = unit(ref.z[sub.index.to_numpy()])
        cells = list(zip(sub.pitch, sub.velocity, strict=True))
        if (40, 25) in cells:
            pairs.append(zz[cells.index((40, 25))] @ zz[cells.index((41, 75))])
    assert fitted.support[i, k] == 2 and fitted.cosine[i, k] == pytest.approx(np.mean(pairs))
    # a generated cell the reference lacks is left out (and counted); the score equals the one without it
    gen = ensemble(rng, 1, label="generated")
    extra = pd.concat([gen.notes, pd.DataFrame([{"instrument": "i0", "pitch": 60, "velocity": 100}])])
    with_extra = Ensemble(extra, np.vstack([gen.z, rng.normal(size=(1, 8))]), "generated")
    (v0, [s0]), (v1, [s1]) = tc_score(fitted, gen), tc_score(fitted, with_extra)
    assert v1 == pytest.approx(v0) and (s1.n_cells, s1.n_excluded) == (6, 1) and s0.n_excluded == 0


def test_bad_inputs_name_the_instrument_or_set() -> None:
    rng = np.random.default_rng(5)
    fitted = ReferenceAffinity.fit(ensemble(rng, 2, label="reference"))
    lonely = Ensemble(
        pd.DataFrame([{"instrument": "far", "pitch": 100, "velocity": 127}]),
        rng.normal(size=(1, 8)),
        "generated",
    )
    with pytest.raises(MetricInputError, match="instrument far has no cell in common"):
        tc_score(fitted, lonely)
    with pytest.raises(MetricInputError, match="dimensions differ: reference has 8, generated has 4"):
        tc_score(fitted, ensemble(rng, 1, dim=4, label="generated"))
    z = rng.normal(size=(6, 8))
    z[2] = np.nan
    with pytest.raises(MetricInputError, match="generated: 1 embeddings have NaN"):
        Ensemble(ensemble(rng, 1).notes, z, "generated")
    with pytest.raises(MetricInputError, match="6 notes but 5 embeddings"):
        Ensemble(ensemble(rng, 1).notes, rng.normal(size=(5, 8)), "generated")


def crafted_non_psd_reference() -> ReferenceAffinity:
    """Three cells a, b, c; each pair seen by one instrument only: a = b (i0), b = c (i1), a = -c (i2).
    The masked mean cosine [[1, 1, -1], [1, 1, 1], [-1, 1, 1]] has eigenvalues -1, 2, 2: not PSD."""
    rng = np.random.default_rng(6)
    x, y, w = rng.normal(size=(3, 8))
    cells = [(40, 25), (41, 25), (42, 25)]
    rows = [("i0", cells[0], x), ("i0", cells[1], x), ("i1", cells[1], y), ("i1", cells[2], y),
            ("i2", cells[0], w), ("i2", cells[2], -w)]
    notes = pd.DataFrame([{"instrument": i, "pitch": c[0], "velocity": c[1]} for i, c, _ in rows])
    return ReferenceAffinity.fit(Ensemble(notes, np.array([z for *_, z in rows]), "reference"))


def test_a_non_psd_reference_is_projected_to_the_nearest_psd_matrix_and_tc_stays_in_unit_interval() -> None:
    fitted = crafted_non_psd_reference()
    cells = fitted.cells
    raw = fitted.masked_mean(cells)
    np.testing.assert_allclose(raw * 3, [[1, 1, -1], [1, 1, 1], [-1, 1, 1]], atol=1e-12)
    # explicitly: clip the eigenvalues at 0 (Frobenius-nearest PSD matrix), rescale to trace 1
    w, v = np.linalg.eigh(raw)
    clipped = (v * np.clip(w, 0, None)) @ v.T
    explicit = clipped / np.trace(clipped)
    projection = fitted.projection(cells)
    np.testing.assert_allclose(fitted.restricted(cells), explicit, atol=1e-12)
    assert projection.min_eigenvalue == pytest.approx(-1 / 3)
    assert projection.change == pytest.approx(np.linalg.norm(explicit - raw) / np.linalg.norm(raw))
    assert np.linalg.eigvalsh(fitted.restricted(cells)).min() >= -1e-12
    # a generated instrument whose affinity is the positive part: unit rows Z with Z Z^T = 3 * explicit
    u = v[:, w > 0]
    z = np.hstack([np.sqrt(1.5) * u, np.zeros((3, 6))])
    gen = Ensemble(pd.DataFrame({"instrument": "g", "pitch": cells[:, 0], "velocity": cells[:, 1]}), z, "gen")
    value, [score] = tc_score(fitted, gen)
    unprojected = np.trace(linalg.sqrtm(raw @ (unit(z) @ unit(z).T / 3))).real
    assert unprojected > 1.1  # what clipping inside the square root alone gave: TC above 1
    assert value == pytest.approx(1.0) and score.projected == pytest.approx(projection.change)
    # any generated instrument: in [0, 1] and equal to TC computed with the explicitly projected matrix
    rng = np.random.default_rng(7)
    for _ in range(20):
        z = rng.normal(size=(3, 8))
        other = Ensemble(gen.notes, z, "gen")
        value, _ = tc_score(fitted, other)
        eig = np.linalg.eigvals(explicit @ (unit(z) @ unit(z).T / 3)).real  # of a product of PSD: >= 0
        expected = np.sqrt(np.clip(eig, 0, None)).sum()
        assert 0.0 <= value <= 1.0 + 1e-12 and value == pytest.approx(expected, rel=1e-6)


def test_a_psd_reference_is_left_as_it_is() -> None:
    fitted = ReferenceAffinity.fit(ensemble(np.random.default_rng(8), 4, label="reference"))
    projection = fitted.projection(np.array(CELLS))
    assert projection.change == 0.0
    np.testing.assert_allclose(projection.matrix, fitted.masked_mean(np.array(CELLS)), atol=1e-15)
