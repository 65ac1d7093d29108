"""CLAP conditioning schemes (eqs. 2-4): baseline identity, random same-instrument draws, fixed reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from instrumentgen.train.schemes import SCHEMES, make_pairing

# Interleaved row order: instrument "a" has 7 notes, "b" 3, "c" 1 (a single note).
INSTS = ["a", "b", "a", "a", "c", "b", "a", "a", "b", "a", "a"]


def make_notes() -> pd.DataFrame:
    count: dict[str, int] = {}
    names = []
    for inst in INSTS:
        count[inst] = count.get(inst, 0) + 1
        names.append(f"{inst}-{20 + count[inst]:03d}-100")
    return pd.DataFrame({"note_str": names, "instrument_str": INSTS})


def make_reference(notes: pd.DataFrame) -> pd.DataFrame:
    ref = {"a": "a-023-100", "b": "b-022-100", "c": "c-021-100", "zzz": "zzz-060-100"}  # zzz: not in notes
    return pd.DataFrame({"instrument_str": list(ref), "note_str": list(ref.values()), "pitch": 60})


ALL_ROWS = np.arange(len(INSTS))
ROWS_A = np.flatnonzero(np.array(INSTS) == "a")


def test_schemes_listed():
    assert SCHEMES == ("baseline", "random", "fixed")


def test_baseline_identity():
    pairing = make_pairing("baseline", make_notes())
    rows = np.array([5, 0, 10, 4, 4])
    np.testing.assert_array_equal(pairing.sample(rows, np.random.default_rng(0)), rows)


def test_fixed_returns_reference_row_for_all_targets():
    notes = make_notes()
    pairing = make_pairing("fixed", notes, make_reference(notes))
    out = pairing.sample(ALL_ROWS, np.random.default_rng(0))
    row_of = {n: i for i, n in enumerate(notes["note_str"])}
    expected = [row_of[{"a": "a-023-100", "b": "b-022-100", "c": "c-021-100"}[i]] for i in INSTS]
    np.testing.assert_array_equal(out, expected)
    assert notes["note_str"].iloc[out[0]] == "a-023-100" and out[0] == 3


def test_random_same_instrument_uniform_with_replacement():
    pairing = make_pairing("random", make_notes())
    rng = np.random.default_rng(1234)
    n = 20000
    targets = np.full(n, ROWS_A[2])
    out = pairing.sample(targets, rng)
    assert set(out.tolist()) == set(ROWS_A.tolist())  # same instrument and every member drawn
    counts = np.array([(out == r).sum() for r in ROWS_A])
    assert chisquare(counts).pvalue > 0.001
    assert (out == ROWS_A[2]).any()  # the target itself is drawn sometimes

    mixed = pairing.sample(np.tile(ALL_ROWS, 2000), rng)
    assert (np.array(INSTS)[mixed] == np.tile(INSTS, 2000)).all()


def test_random_draws_independent_within_batch():
    pairing = make_pairing("random", make_notes())
    rng = np.random.default_rng(7)
    pairs = np.stack([pairing.sample(ROWS_A[:2], rng) for _ in range(2000)])
    assert (pairs[:, 0] != pairs[:, 1]).mean() > 0.7  # 6/7 expected if independent
    joint = np.bincount(np.searchsorted(ROWS_A, pairs[:, 0]) * 7 + np.searchsorted(ROWS_A, pairs[:, 1]),
                        minlength=49)
    assert chisquare(joint).pvalue > 0.001


def test_random_seeded_and_single_note():
    pairing = make_pairing("random", make_notes())
    a = pairing.sample(np.tile(ALL_ROWS, 50), np.random.default_rng(3))
    b = pairing.sample(np.tile(ALL_ROWS, 50), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert (pairing.sample(np.full(500, 4), np.random.default_rng(0)) == 4).all()


def test_errors():
    notes = make_notes()
    ref = make_reference(notes)
    with pytest.raises(ValueError, match="bogus.*baseline, random, fixed"):
        make_pairing("bogus", notes)
    with pytest.raises(ValueError, match="reference"):
        make_pairing("fixed", notes)
    with pytest.raises(ValueError, match="'b'"):
        make_pairing("fixed", notes, ref[ref["instrument_str"] != "b"])
    missing = ref.copy()
    missing.loc[missing["instrument_str"] == "b", "note_str"] = "b-099-100"
    with pytest.raises(ValueError, match="b-099-100"):
        make_pairing("fixed", notes, missing)
    other = ref.copy()
    other.loc[other["instrument_str"] == "b", "note_str"] = "a-021-100"
    with pytest.raises(ValueError, match="a-021-100"):
        make_pairing("fixed", notes, other)
    dup = notes.copy()
    dup.loc[1, "note_str"] = dup.loc[0, "note_str"]
    with pytest.raises(ValueError, match="a-021-100"):
        make_pairing("baseline", dup)
    with pytest.raises(ValueError, match="empty"):
        make_pairing("random", notes.iloc[:0])
    pairing = make_pairing("random", notes)
    with pytest.raises(ValueError, match="11"):
        pairing.sample(np.array([0, 11]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="-1"):
        pairing.sample(np.array([-1]), np.random.default_rng(0))
