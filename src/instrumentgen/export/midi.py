"""MIDI files for exported instruments: a short demo pattern, and any list of notes.

Times are in seconds; files are type 0 (one track, channel 0) at 120 BPM with 480 ticks per beat,
so one tick is 1/960 s. The track ends ``tail_s`` after the last note-off, so that players that
stop at the end of the track keep the release tails (FluidSynth's fast render adds ~2 s anyway).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mido

from instrumentgen.atomic import atomic_path

TICKS_PER_BEAT = 480
TEMPO = 500_000  # microseconds per beat (120 BPM)
TAIL_S = 1.0
DEMO_KEYS = 8  # keys in the demo's ascending run
DEMO_VELOCITIES = 3  # runs (one per velocity) in the demo


@dataclass(frozen=True)
class Note:
    """A note: MIDI ``key`` 0..127 and ``velocity`` 1..127, from ``start_s`` for ``duration_s``."""

    key: int
    velocity: int
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.key <= 127 or not 1 <= self.velocity <= 127:
            raise ValueError(f"MIDI note key {self.key} / velocity {self.velocity} outside 0..127 / 1..127")
        if self.start_s < 0 or not self.duration_s > 0:
            raise ValueError(f"MIDI note at {self.start_s} s for {self.duration_s} s: need start >= 0, "
                             "duration > 0")

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def _spread(values: Sequence[int], count: int) -> list[int]:
    """Up to ``count`` values spread evenly over sorted ``values`` (first and last included)."""
    values = sorted(set(int(v) for v in values))
    if len(values) <= count:
        return values
    return [values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)]


def demo_notes(pitches: Sequence[int], velocities: Sequence[int], *, n_keys: int = DEMO_KEYS,
               n_velocities: int = DEMO_VELOCITIES, note_s: float = 0.35, step_s: float = 0.4) -> list[Note]:
    """An ascending run over the instrument's pitch range, once per velocity (softest first).

    The run has ``n_keys`` keys evenly spaced from the lowest to the highest available pitch
    (rounded to whole keys, so it also plays keys between the sampled pitches); it is repeated at
    up to ``n_velocities`` of the instrument's velocities (spread from softest to loudest). Notes
    last ``note_s`` and start every ``step_s`` seconds: 8 × 3 notes take 9.6 s.
    """
    if not pitches or not velocities:
        raise ValueError("demo_notes needs at least one pitch and one velocity")
    lo, hi = min(pitches), max(pitches)
    keys = sorted({round(lo + i * (hi - lo) / max(n_keys - 1, 1)) for i in range(n_keys)})
    notes = []
    for velocity in _spread(velocities, n_velocities):
        for key in keys:
            notes.append(Note(int(key), int(velocity), len(notes) * step_s, note_s))
    return notes


def midi_file(notes: Sequence[Note], *, tail_s: float = TAIL_S, program: int = 0) -> mido.MidiFile:
    """A type-0 :class:`mido.MidiFile` playing ``notes`` on channel 0 with ``program``."""
    if not notes:
        raise ValueError("a MIDI file needs at least one note")
    events = []  # (tick, order, message): note-offs before note-ons at the same tick
    for note in notes:
        on = mido.Message("note_on", note=note.key, velocity=note.velocity)
        events.append((_ticks(note.start_s), 1, on))
        events.append((_ticks(note.end_s), 0, mido.Message("note_off", note=note.key, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO, time=0),
                            mido.Message("program_change", program=program, time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=_ticks(tail_s)))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    return midi


def _ticks(seconds: float) -> int:
    return round(mido.second2tick(seconds, TICKS_PER_BEAT, TEMPO))


def write_midi(path: str | os.PathLike, notes: Sequence[Note], *, tail_s: float = TAIL_S) -> Path:
    """Write :func:`midi_file` of ``notes`` to ``path`` atomically and return ``path``."""
    path = Path(path)
    midi = midi_file(notes, tail_s=tail_s)
    with atomic_path(path, suffix=".mid") as tmp:
        midi.save(tmp)
    return path
