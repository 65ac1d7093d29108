"""s_CLAP* for S2I (eq. 10) and T2I (naive, translation per eq. 11's stated intent, coloration)."""

import numpy as np
import pandas as pd
import pytest

from instrumentgen.metrics.affinity import Ensemble, ReferenceAffinity
from instrumentgen.metrics.clap_score import (
    Templates,
    colored,
    s2i_score,
    t2i_reference,
    t2i_scores,
    translated,
)
from instrumentgen.metrics.frechet import MetricInputError

CELLS = [(p, v) for p in (40, 44, 48, 52) for v in (25, 75, 127)]
DIM = 16


def ensemble(rng, names, label, cells=CELLS, noise=0.6) -> Ensemble:
    rows, z = [], []
    for name in names:
        base = rng.normal(size=DIM)
        for p, v in cells:
            rows.append({"instrument": name, "pitch": p, "velocity": v})
            z.append(base + noise * rng.normal(size=DIM) + 0.05 * p * np.eye(DIM)[p % DIM])
    return Ensemble(pd.DataFrame(rows), np.array(z), label)


def unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def test_s2i_score_is_the_mean_over_instruments_of_mean_cell_cosines() -> None:
    rng = np.random.default_rng(0)
    truth = ensemble(rng, ["a", "b"], "test set")
    # the generated instrument "b" lacks two cells: it is scored on its own cells only
    gen = ensemble(rng, ["a", "b"], "generated")
    keep = ~((gen.notes.instrument == "b") & (gen.notes.pitch == 52) & (gen.notes.velocity > 25)).to_numpy()
    gen = Ensemble(gen.notes[keep], gen.z[keep], "generated")
    value, per = s2i_score(truth, gen)
    explicit = []
    for name in ("a", "b"):
        cos = []
        for _, row in gen.notes[gen.notes.instrument == name].iterrows():
            t = truth.notes[
                (truth.notes.instrument == name)
                & (truth.notes.pitch == row.pitch)
                & (truth.notes.velocity == row.velocity)
            ]
            cos.append(gen.z[row.name] @ truth.z[t.index[0]])
        explicit.append(np.mean(cos))
    assert value == pytest.approx(np.mean(explicit), rel=1e-12)
    assert [s.n_cells for s in per] == [12, 10]


def test_s2i_bad_inputs_are_named() -> None:
    rng = np.random.default_rng(1)
    truth = ensemble(rng, ["a"], "test set")
    with pytest.raises(MetricInputError, match="instrument zz is not in test set"):
        s2i_score(truth, ensemble(rng, ["zz"], "generated"))
    far = ensemble(rng, ["a"], "generated", cells=[(90, 100)])
    with pytest.raises(MetricInputError, match="instrument a has no generated cell that test set has"):
        s2i_score(truth, far)


def test_translation_puts_the_text_embedding_at_the_closest_template_cell() -> None:
    rng = np.random.default_rng(2)
    templates = Templates.fit(ensemble(rng, ["r1", "r2", "r3"], "reference"))
    z = unit(templates.z[5] + 0.3 * rng.normal(size=DIM))
    assert templates.closest(z) == int(np.argmax(templates.z @ z))
    moved = translated(templates, z, templates.cells)
    np.testing.assert_allclose(
        moved[templates.closest(z)], z, atol=1e-12
    )  # the (rho_hat, nu_hat) column is z
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0)
    # the printed eq. (11), M_1,* + (mu_hat - z), would put 2 mu_hat - z there instead
    mu = templates.z[templates.closest(z)]
    assert not np.allclose(unit(mu + (mu - z)), z, atol=1e-3)


def test_coloration_has_the_reference_covariance_and_is_the_closest_such_ensemble() -> None:
    rng = np.random.default_rng(3)
    reference = ensemble(rng, ["r1", "r2", "r3", "r4"], "reference")
    affinity, templates = ReferenceAffinity.fit(reference), Templates.fit(reference)
    z = unit(rng.normal(size=DIM))
    cells = np.array(CELLS)
    moved = translated(templates, z, cells)
    a11 = affinity.restricted(cells)
    out = colored(moved, a11)
    np.testing.assert_allclose(out @ out.T / len(cells), a11, atol=1e-8)  # covariance exactly A_11,*
    # any other ensemble with that covariance (a rotation of it) is farther from the translated one
    for seed in range(5):
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(DIM, DIM)))
        assert np.linalg.norm(out - moved) <= np.linalg.norm(out @ q - moved) + 1e-12
    with pytest.raises(MetricInputError, match="rank .* > the embedding dimension 2"):
        colored(moved[:, :2], a11)


def test_t2i_scores_by_method_against_explicit_formulas() -> None:
    rng = np.random.default_rng(4)
    reference = ensemble(rng, ["r1", "r2", "r3"], "reference")
    affinity, templates = ReferenceAffinity.fit(reference), Templates.fit(reference)
    gen = ensemble(rng, ["p1", "p2"], "generated")
    text = {"p1": rng.normal(size=DIM), "p2": rng.normal(size=DIM)}
    scores = t2i_scores(text, gen, templates, affinity)
    insts = list(gen.instruments())
    naive = np.mean([np.mean(inst.z @ unit(text[inst.name])) for inst in insts])
    assert scores.naive[0] == pytest.approx(naive, rel=1e-12)
    for method in ("translation", "coloration"):
        explicit = np.mean(
            [
                np.mean(np.sum(t2i_reference(method, text[i.name], i, templates, affinity)[0] * i.z, axis=1))
                for i in insts
            ]
        )
        assert getattr(scores, method)[0] == pytest.approx(explicit, rel=1e-12)
    assert set(scores.as_dict()) == {"naive", "translation", "coloration"}
    with pytest.raises(MetricInputError, match="instrument p2 has no prompt text embedding"):
        t2i_scores({"p1": text["p1"]}, gen, templates, affinity)
    with pytest.raises(MetricInputError, match="text embedding of p1 has shape"):
        t2i_scores({"p1": np.ones(3), "p2": text["p2"]}, gen, templates, affinity)
    with pytest.raises(MetricInputError, match="unknown T2I method 'best'"):
        t2i_reference("best", text["p1"], insts[0], templates, affinity)
