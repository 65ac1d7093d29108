"""Timbre-following metrics on synthetic embeddings with known answers: a generator that follows its
condition scores perfectly, one that ignores it scores at chance (retrieval), 0 (family) and 1.0
(sensitivity)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from instrumentgen.config import REPO_ROOT
from instrumentgen.metrics.affinity import Ensemble
from instrumentgen.metrics.frechet import MetricInputError
from instrumentgen.metrics.references import FamilyReference
from instrumentgen.metrics.timbre import (
    FamilyClassifier,
    condition_sensitivity,
    family_accuracy,
    instrument_retrieval,
)
from instrumentgen.prompts import load_prompts, named_families, named_family

DIM = 16
CELLS = [(p, v) for p in (40, 52, 64, 76) for v in (50, 100)]


def timbres(rng, n: int) -> np.ndarray:
    """``[n, DIM]`` well-separated unit directions, one per instrument."""
    q, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    return q[:n]


def instrument_set(bases: np.ndarray, names: list[str], rng, noise: float = 0.1, label: str = "set"):
    """Every instrument ``names[k]`` plays every cell of CELLS with timbre ``bases[k]`` plus noise."""
    rows, z = [], []
    for name, base in zip(names, bases, strict=True):
        for p, v in CELLS:
            rows.append({"instrument": name, "pitch": p, "velocity": v})
            z.append(base + noise * rng.normal(size=DIM))
    return Ensemble(pd.DataFrame(rows), np.array(z), label)


NAMES = [f"inst{k}" for k in range(5)]


@pytest.fixture()
def truth() -> tuple[np.ndarray, Ensemble]:
    rng = np.random.default_rng(0)
    bases = timbres(rng, len(NAMES))
    return bases, instrument_set(bases, NAMES, rng, label="test set")


def test_a_generator_that_follows_its_condition_retrieves_every_instrument(truth):
    bases, test = truth
    generated = instrument_set(bases, NAMES, np.random.default_rng(1), noise=0.3, label="generated")
    found = instrument_retrieval(test, generated)
    assert found.value == 1.0 and found.chance == pytest.approx(1 / 5) and found.n_candidates == 5
    assert [h.rank for h in found.per_instrument] == [1] * 5
    assert all(h.nearest == h.instrument for h in found.per_instrument)
    swapped = instrument_set(np.roll(bases, 1, axis=0), NAMES, np.random.default_rng(2), label="swapped")
    found = instrument_retrieval(test, swapped)
    assert found.value == 0.0
    assert [h.nearest for h in found.per_instrument] == [NAMES[(k - 1) % 5] for k in range(5)]


def test_a_generator_that_ignores_its_condition_is_at_chance_and_insensitive(truth):
    bases, test = truth
    rng = np.random.default_rng(3)
    one_timbre = rng.normal(size=(len(CELLS), DIM))  # the same notes, whatever the query
    rows = [{"instrument": n, "pitch": p, "velocity": v} for n in NAMES for p, v in CELLS]
    ignoring = Ensemble(pd.DataFrame(rows), np.tile(one_timbre, (len(NAMES), 1)), "ignoring")
    found = instrument_retrieval(test, ignoring)
    assert found.value <= found.chance  # one nearest centroid for all: at most one hit
    assert len({h.nearest for h in found.per_instrument}) == 1
    sensitivity = condition_sensitivity(ignoring)
    assert sensitivity.value == pytest.approx(1.0) and sensitivity.n_cells == len(CELLS)
    following = condition_sensitivity(instrument_set(bases, NAMES, rng, noise=0.3))
    assert following.value < 0.2  # orthogonal timbres: near 0


def test_sensitivity_is_the_mean_over_shared_cells_of_the_mean_pairwise_cosine():
    rng = np.random.default_rng(4)
    rows = [
        {"instrument": n, "pitch": p, "velocity": v}
        for n in ("a", "b", "c")
        for p, v in CELLS
        if not (n == "c" and p == 40) and not (n != "a" and p == 76)  # (76, *) only in a: not shared
    ]
    ens = Ensemble(pd.DataFrame(rows), rng.normal(size=(len(rows), DIM)), "set")
    unit = ens.z
    per_cell = []
    for _, group in ens.notes.groupby(["pitch", "velocity"]):
        if len(group) < 2:
            continue
        pairs = itertools.combinations(group.index, 2)
        per_cell.append(np.mean([unit[i] @ unit[j] for i, j in pairs]))
    result = condition_sensitivity(ens)
    assert result.value == pytest.approx(np.mean(per_cell)) and result.n_cells == 6
    lonely = Ensemble(pd.DataFrame(rows[:3]), rng.normal(size=(3, DIM)), "one instrument")
    assert condition_sensitivity(lonely).value is None


def test_retrieval_needs_two_test_instruments_and_known_names(truth):
    bases, test = truth
    rng = np.random.default_rng(5)
    single = instrument_set(bases[:1], NAMES[:1], rng, label="test set")
    with pytest.raises(MetricInputError, match="test set: instrument retrieval needs at least 2 .* it has 1"):
        instrument_retrieval(single, instrument_set(bases[:1], NAMES[:1], rng))
    with pytest.raises(MetricInputError, match="generated: instrument stranger is not in test set"):
        instrument_retrieval(test, instrument_set(bases[:1], ["stranger"], rng, label="generated"))


FAMILY_NAMES = ["bass", "flute", "organ", "guitar", "string"]


@pytest.fixture()
def classifier() -> tuple[np.ndarray, FamilyClassifier]:
    """A classifier fitted on 4 'train instruments' per family around one direction per family."""
    rng = np.random.default_rng(6)
    bases = timbres(rng, len(FAMILY_NAMES))
    z = np.concatenate([b + 0.15 * rng.normal(size=(4 * len(CELLS), DIM)) for b in bases])
    labels = np.repeat(FAMILY_NAMES, 4 * len(CELLS))
    return bases, FamilyClassifier.fit(z, labels)


def prompt_set(bases: np.ndarray, prompts: list[str], rng, label: str = "T2I") -> Ensemble:
    return instrument_set(bases, prompts, rng, noise=0.1, label=label)


TEXTS = {"p_bass": "a dark electronic bass", "p_pad": "a warm pad", "p_two": "nylon string guitar",
         "p_organ": "hammond organ"}


def test_family_accuracy_scores_prompts_that_name_one_family_and_says_why_not_the_others(classifier):
    bases, model = classifier
    rng = np.random.default_rng(7)
    prompts = list(TEXTS)
    family_of = {"bass": 0, "flute": 1, "organ": 2, "guitar": 3}
    # follows its prompt: bass -> bass, organ -> organ; the unscored prompts get any timbre (flute)
    follows = prompt_set(bases[[family_of[f] for f in ("bass", "flute", "flute", "organ")]], prompts, rng)
    result = family_accuracy(model, follows, TEXTS)
    assert result.value == 1.0 and result.n_prompts == 2 and result.n_notes == 2 * len(CELLS)
    pad, two = result.per_prompt["p_pad"], result.per_prompt["p_two"]
    assert (pad.family, pad.status, pad.accuracy) == (None, "no family named", None)
    assert (two.family, two.accuracy, two.status) == (None, None, "names several families (guitar, string)")
    assert result.per_prompt["p_bass"].predicted == {"bass": len(CELLS)}
    # ignores its prompt: every prompt sounds like a flute
    ignores = prompt_set(np.repeat(bases[[1]], 4, axis=0), prompts, rng)
    result = family_accuracy(model, ignores, TEXTS)
    assert result.value == 0.0 and result.n_prompts == 2
    # no prompt names a family: no score at all (not 0)
    none = family_accuracy(model, prompt_set(bases[:1], ["p_pad"], rng), TEXTS)
    assert none.value is None and none.n_prompts == 0
    # a family the classifier never saw is not scored either
    vocal = family_accuracy(model, prompt_set(bases[:1], ["v"], rng), {"v": "a synthesized vocal"})
    assert vocal.value is None and "lack" in vocal.per_prompt["v"].status


def test_family_ceiling_is_measured_at_the_scored_cells_of_each_named_family(classifier):
    """The ceiling where generated notes were scored: the real test notes of the prompt's family at the
    generated cells, each cell once; cells of unscored prompts and of other families do not count."""
    bases, model = classifier
    rng = np.random.default_rng(8)
    result = family_accuracy(model, prompt_set(bases[[0, 1, 2, 3]], list(TEXTS), rng), TEXTS)
    scored = result.scored_cells
    assert sorted(set(scored["family"])) == ["bass", "organ"] and len(scored) == 2 * len(CELLS)
    assert set(map(tuple, scored[["pitch", "velocity"]].to_numpy())) == set(CELLS)
    # real test notes: bass right at (40, 50), wrong at (40, 100); organ right at (52, 50); a flute note
    # at a scored cell (no prompt names flute) and a bass note at an ungenerated cell do not count
    test_notes = pd.DataFrame(
        [("bass", 40, 50, True), ("bass", 40, 100, False), ("organ", 52, 50, True),
         ("flute", 40, 50, False), ("bass", 100, 127, False)],
        columns=["family", "pitch", "velocity", "correct"],
    )
    reference = FamilyReference(
        model, test_accuracy=0.4, chance=0.2, majority_share=0.6, test_notes=test_notes
    )
    assert reference.accuracy_at(scored) == (pytest.approx(2 / 3), 3)
    assert reference.accuracy_at(scored[scored["family"] == "organ"]) == (1.0, 1)
    assert reference.accuracy_at(scored.iloc[:0]) == (None, 0)
    nowhere = pd.DataFrame({"family": ["string"], "pitch": [40], "velocity": [50]})
    assert reference.accuracy_at(nowhere) == (None, 0)


def test_family_classifier_is_deterministic_and_refuses_bad_labels(classifier):
    bases, model = classifier
    rng = np.random.default_rng(8)
    z = bases[[0, 2]] + 0.1 * rng.normal(size=(2, DIM))
    assert list(model.predict(z)) == ["bass", "organ"]
    assert model.families == tuple(sorted(FAMILY_NAMES))
    with pytest.raises(MetricInputError, match="notes of 2 families"):
        FamilyClassifier.fit(rng.normal(size=(5, DIM)), ["bass"] * 5)
    with pytest.raises(MetricInputError, match="5 embeddings but 4 family labels"):
        FamilyClassifier.fit(rng.normal(size=(5, DIM)), ["bass", "flute"] * 2)


@pytest.mark.parametrize(
    ("text", "families"),
    [
        ("a distorted synthetic synth lead", ("synth_lead",)),
        ("distorted_synth_lead", ("synth_lead",)),
        ("Two BASSES and strings", ("bass", "string")),
        ("a bassoon", ()),
        ("reedy clarinet", ()),
        ("a synthesized organ", ("organ",)),
    ],
)
def test_family_words_are_whole_words(text, families):
    assert named_families(text) == families


def test_which_family_each_shipped_prompt_names():
    offline = {p.id: named_family(p.text) for p in load_prompts(REPO_ROOT / "workflow/prompts/offline.yaml")}
    assert offline == {
        "bright_acoustic_guitar": "guitar", "dark_electronic_bass": "bass",
        "percussive_mallet_reverb": "mallet", "synthetic_organ_long_release": "organ",
        "distorted_synth_lead": "synth_lead",
        "swelling_bowed_string": "string", "mellow_reed": "reed", "bright_brass": "brass",
        "acoustic_flute": "flute", "electronic_keyboard": "keyboard", "synthesized_vocal": "vocal",
    }
    paper = {p.id: named_families(p.text) for p in load_prompts(REPO_ROOT / "workflow/prompts/paper.yaml")}
    named = {k: v for k, v in paper.items() if v}
    assert named == {
        "deep_punchy_sub_bass": ("bass",), "distorted_synth_bass": ("bass",),
        "distorted_guitar_lead": ("guitar",), "bright_acoustic_guitar": ("guitar",),
        "aggressive_synth_lead": ("synth_lead",), "hammond_organ": ("organ",),
        "airy_string_ensemble": ("string",), "gritty_saw_bass": ("bass",),
        "breathy_bamboo_flute": ("flute",), "brass_section_stab": ("brass",),
        "plucked_nylon_guitar": ("guitar", "string"),  # two: not scored
    }
    assert len(paper) == 25 and named_family("soft plucked nylon string guitar") is None
