"""Fixed-CLAP reference notes: data-driven pitches, nearest-pitch-then-velocity fallback."""

from __future__ import annotations

import pandas as pd
import pytest

from instrumentgen.features.reference import (
    ReferenceError,
    family_reference_pitches,
    nearest_note,
    reference_table,
)
from instrumentgen.nsynth.metadata import FAMILIES


def notes(inst: str, family: str, cells: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame({"instrument_str": inst, "instrument_family_str": family,
                         "note_str": [f"{inst}-{p:03d}-{v:03d}" for p, v in cells],
                         "pitch": [p for p, _ in cells], "velocity": [v for _, v in cells]})


def test_exact_reference_note():
    df = notes("a", "bass", [(40, 100), (40, 50), (45, 100)])
    assert nearest_note(df, 40, 100)["note_str"] == "a-040-100"


def test_nearest_pitch_then_nearest_velocity():
    df = notes("a", "bass", [(38, 25), (43, 127), (43, 50), (43, 100), (50, 100)])
    # pitch 41: 43 (2 away) beats 38 (3 away); at 43 the exact velocity 100 exists
    assert nearest_note(df, 41, 100)["note_str"] == "a-043-100"
    # velocity 75 at pitch 43: 50 and 100 are both 25 away -> the louder one
    assert nearest_note(df, 43, 75)["note_str"] == "a-043-100"
    # pitch 40: 38 (2 away) beats 43 (3 away), whatever the velocities there
    assert nearest_note(df, 40, 100)["note_str"] == "a-038-025"


def test_pitch_tie_goes_lower():
    df = notes("a", "bass", [(38, 100), (42, 100)])
    assert nearest_note(df, 40, 100)["pitch"] == 38


def test_family_pitches_are_training_medians_with_overrides():
    train = pd.concat([notes("a", "bass", [(30, 100), (40, 100), (41, 100)]),
                       notes("b", "flute", [(70, 100), (80, 100)])])
    pitches = family_reference_pitches(train, {"flute": 72})
    assert pitches["bass"] == 40 and pitches["flute"] == 72
    assert set(pitches) == set(FAMILIES)
    assert pitches["organ"] == 41  # absent family: median of all training notes
    with pytest.raises(ReferenceError, match="unknown family 'tuba'"):
        family_reference_pitches(train, {"tuba": 50})
    with pytest.raises(ReferenceError, match="pitch.bass = 12 is outside"):
        family_reference_pitches(train, {"bass": 12})


def test_reference_table_one_row_per_instrument():
    manifest = pd.concat([notes("a", "bass", [(30, 100), (40, 50)]), notes("b", "bass", [(40, 100)])])
    table = reference_table(manifest, dict.fromkeys(FAMILIES, 40), velocity=100)
    assert table["instrument_str"].tolist() == ["a", "b"]
    assert table["note_str"].tolist() == ["a-040-050", "b-040-100"]
    assert table["n_notes"].tolist() == [2, 1]
    with pytest.raises(ReferenceError, match="velocity = 90"):
        reference_table(manifest, dict.fromkeys(FAMILIES, 40), velocity=90)
