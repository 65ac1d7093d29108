"""S2I and T2I plans: the cells generated, the seeded query note, the grid checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instrumentgen.generate.protocols import check_grid, s2i_plan, s2i_queries, t2i_plan


def notes_table(seed: int = 0) -> pd.DataFrame:
    """Three instruments with different, incomplete sets of cells, rows interleaved."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in ("keys_acoustic_001", "bass_synthetic_002", "flute_acoustic_003"):
        cells = {
            (int(p), int(v))
            for p, v in zip(rng.integers(30, 90, 25), rng.choice([25, 50, 75, 100, 127], 25), strict=True)
        }
        rows += [
            {"instrument_str": name, "pitch": p, "velocity": v, "note_str": f"{name}-{p:03d}-{v:03d}"}
            for p, v in sorted(cells)
        ]
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order])


def test_s2i_generates_exactly_the_cells_present_in_each_instrument():
    notes = notes_table()
    plan = s2i_plan(notes, seed=3)
    for instrument, group in notes.groupby("instrument_str"):
        planned = set(map(tuple, plan[plan["instrument"] == instrument][["pitch", "velocity"]].to_numpy()))
        assert planned == set(map(tuple, group[["pitch", "velocity"]].to_numpy()))
    assert len(plan) == len(notes)
    assert plan["drop_family"].all() and plan["drop_source"].all()
    assert (plan["clap_source"] == "audio").all()


def test_s2i_uses_one_seeded_query_note_of_the_instrument_itself():
    notes = notes_table()
    plan = s2i_plan(notes, seed=3)
    for instrument, group in plan.groupby("instrument"):
        assert group["clap_row"].nunique() == 1
        row = int(group["clap_row"].iloc[0])
        assert notes.at[row, "instrument_str"] == instrument
        assert group["query_note"].iloc[0] == notes.at[row, "note_str"]
    assert plan.equals(s2i_plan(notes, seed=3))
    queries = {s: tuple(s2i_plan(notes, seed=s).groupby("instrument")["clap_row"].first()) for s in range(8)}
    assert len(set(queries.values())) > 1  # the seed matters
    # a query depends on (seed, instrument) only: dropping another instrument does not change it
    fewer = notes[notes["instrument_str"] != "bass_synthetic_002"]
    a = plan.groupby("instrument")["clap_row"].first()
    b = s2i_plan(fewer, seed=3).groupby("instrument")["clap_row"].first()
    assert (a[b.index] == b).all()


def test_s2i_queries_are_the_notes_the_plan_conditions_on():
    """One definition of the query note, shared by generation (s2i_plan) and evaluation."""
    notes = notes_table()
    for seed in (0, 3, 1234):
        plan, queries = s2i_plan(notes, seed), s2i_queries(notes, seed)
        assert list(queries["instrument"]) == sorted(notes["instrument_str"].unique())
        for q in queries.itertuples():
            assert set(plan.loc[plan["instrument"] == q.instrument, "clap_row"]) == {q.row}
            assert (notes.at[q.row, "pitch"], notes.at[q.row, "velocity"]) == (q.pitch, q.velocity)
            assert notes.at[q.row, "instrument_str"] == q.instrument
    # the evaluation's note tables name the instrument column "instrument"
    renamed = notes.rename(columns={"instrument_str": "instrument"})
    assert s2i_queries(renamed, 3, instrument_column="instrument").equals(s2i_queries(notes, 3))
    with pytest.raises(ValueError, match=r"need the columns \['instrument_str'\]"):
        s2i_queries(renamed, 3)


def test_t2i_covers_the_full_grid_for_every_prompt():
    prompts = pd.DataFrame({"id": ["warm_cello", "bright_pad"], "text": ["warm cello", "bright pad"]})
    plan = t2i_plan(prompts, range(21, 109), [25, 50, 75, 100, 127])
    assert len(plan) == 2 * 88 * 5
    for i, pid in enumerate(prompts["id"]):
        cells = plan[plan["instrument"] == pid]
        assert len(cells.drop_duplicates(["pitch", "velocity"])) == 440 and (cells["clap_row"] == i).all()
    assert (plan["clap_source"] == "text").all()


@pytest.mark.parametrize(
    ("pitches", "velocities", "message"),
    [
        ([20, 60], [100], "pitch 20 is outside"),
        ([60, 109], [100], "pitch 109"),
        ([60], [60], "velocity 60"),
        ([], [100], "at least one pitch"),
    ],
)
def test_grids_outside_the_keyboard_or_the_velocity_layers_are_refused(pitches, velocities, message):
    with pytest.raises(ValueError, match=message):
        check_grid(pitches, velocities)


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        s2i_plan(notes_table().iloc[:0], seed=0)
    with pytest.raises(ValueError, match="empty"):
        t2i_plan(pd.DataFrame({"id": []}), [60], [100])
