"""Demo and test MIDI files: the notes written are the notes mido reads back, in seconds."""

from __future__ import annotations

import mido
import pytest

from instrumentgen.export.midi import TAIL_S, Note, demo_notes, write_midi


def read_notes(path) -> list[tuple[int, int, float, float]]:
    """(key, velocity, start s, end s) of every note in the MIDI file at ``path``."""
    now, open_notes, notes = 0.0, {}, []
    for msg in mido.MidiFile(path):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes[msg.note] = (msg.velocity, now)
        elif msg.type in ("note_off", "note_on"):
            velocity, start = open_notes.pop(msg.note)
            notes.append((msg.note, velocity, start, now))
    assert not open_notes, "every note must end"
    return sorted(notes, key=lambda n: n[2])


def test_demo_runs_up_the_available_range_at_a_few_velocities():
    notes = demo_notes([72, 40, 55, 41], [127, 25, 50, 75, 100])
    keys = [n.key for n in notes[:8]]
    assert keys == sorted(keys) and (keys[0], keys[-1]) == (40, 72) and len(set(keys)) == 8
    assert [n.velocity for n in notes[::8]] == [25, 75, 127]
    assert len(notes) == 24 and max(n.end_s for n in notes) == pytest.approx(23 * 0.4 + 0.35)
    assert all(a.end_s <= b.start_s for a, b in zip(notes, notes[1:], strict=False))


def test_demo_of_a_one_note_instrument():
    notes = demo_notes([60], [100])
    assert [(n.key, n.velocity) for n in notes] == [(60, 100)]


def test_written_notes_read_back(tmp_path):
    notes = [Note(60, 100, 0.0, 0.5), Note(64, 30, 0.5, 0.25), Note(60, 127, 1.0, 0.4), Note(67, 1, 1.1, 0.1)]
    path = write_midi(tmp_path / "a.mid", notes)
    got = read_notes(path)
    want = sorted(((n.key, n.velocity, n.start_s, n.end_s) for n in notes), key=lambda n: n[2])
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert [t for g in got for t in g[2:]] == pytest.approx([t for w in want for t in w[2:]], abs=1e-3)
    assert mido.MidiFile(path).length == pytest.approx(1.4 + TAIL_S, abs=1e-3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mid"]


@pytest.mark.parametrize("args", [(128, 100, 0, 1), (60, 0, 0, 1), (60, 100, -1, 1), (60, 100, 0, 0)])
def test_bad_notes(args):
    with pytest.raises(ValueError, match="MIDI note"):
        Note(*args)
