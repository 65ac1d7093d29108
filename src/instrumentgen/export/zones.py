"""The key/velocity map of an exported instrument: one pure function shared by SFZ and SF2.

An instrument is a set of cells ``(pitch, velocity)`` (MIDI pitch in 21..108, velocity one of
NSynth's five layers), possibly with holes. :func:`plan_zones` assigns every (key, velocity) of
the 88-key keyboard × MIDI velocity 1..127 to exactly one cell:

- velocity: the layers present in the instrument split 1..127 at the midpoints between
  neighbouring layers (the lowest layer reaches down to 1, the highest up to 127), so a played
  velocity goes to the nearest layer (a tie goes to the lower one);
- key: within a layer, the pitches that have that velocity split 21..108 at the midpoints between
  neighbouring pitches (the first reaches down to 21, the last up to 108), so a played key goes
  to the nearest pitch of its layer (a tie goes to the lower one), which the sampler transposes
  from ``keycenter`` (the sample's own pitch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from instrumentgen.nsynth.metadata import PIANO_MAX, PIANO_MIN, VELOCITIES

KEY_RANGE = (PIANO_MIN, PIANO_MAX)  # MIDI keys the exported instruments cover
VELOCITY_RANGE = (1, 127)  # MIDI note-on velocities (0 is a note-off)


class ZoneError(ValueError):
    """A cell that cannot be mapped (pitch or velocity out of range, duplicate, none at all)."""


@dataclass(frozen=True, order=True)
class Zone:
    """One region of the map: the sample of cell ``(pitch, velocity)`` plays keys
    ``lokey..hikey`` at velocities ``lovel..hivel`` (all inclusive), transposed from ``pitch``."""

    pitch: int
    velocity: int
    lokey: int
    hikey: int
    lovel: int
    hivel: int

    @property
    def cell(self) -> tuple[int, int]:
        """The ``(pitch, velocity)`` cell whose sample this zone plays."""
        return (self.pitch, self.velocity)

    @property
    def keycenter(self) -> int:
        """The key at which the sample plays untransposed (its own pitch)."""
        return self.pitch


def check_cell(pitch: int, velocity: int) -> tuple[int, int]:
    """Return ``(pitch, velocity)`` as ints, or raise :class:`ZoneError` naming the bad value."""
    if not _is_int(pitch) or not KEY_RANGE[0] <= pitch <= KEY_RANGE[1]:
        raise ZoneError(f"pitch {pitch!r} is not a MIDI key in {KEY_RANGE[0]}..{KEY_RANGE[1]}")
    if not _is_int(velocity) or velocity not in VELOCITIES:
        raise ZoneError(f"velocity {velocity!r} is not one of {list(VELOCITIES)}")
    return int(pitch), int(velocity)


def _is_int(value: object) -> bool:
    """True for integers and integral floats (e.g. from a Parquet float column), False for NaN."""
    try:
        return int(value) == value  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return False


def split_ranges(points: list[int], lo: int, hi: int) -> list[tuple[int, int]]:
    """Inclusive ranges tiling ``lo..hi``, one per sorted distinct point, split at midpoints.

    Point ``i`` gets ``(lo or midpoint(i-1, i) + 1, midpoint(i, i+1) or hi)`` with
    ``midpoint(a, b) = (a + b) // 2``: every value goes to its nearest point, a tie to the lower.
    """
    bounds = [(a + b) // 2 for a, b in zip(points, points[1:], strict=False)]
    starts = [lo] + [m + 1 for m in bounds]
    ends = bounds + [hi]
    return list(zip(starts, ends, strict=True))


def plan_zones(cells: Iterable[tuple[int, int]]) -> list[Zone]:
    """Zones tiling keys ``KEY_RANGE`` × velocities ``VELOCITY_RANGE`` exactly once.

    ``cells``: the ``(pitch, velocity)`` pairs that have a sample (no duplicates). Returns one
    :class:`Zone` per cell, sorted by velocity then pitch.
    """
    checked = [check_cell(p, v) for p, v in cells]
    if not checked:
        raise ZoneError("no cells: an instrument needs at least one (pitch, velocity) sample")
    if len(set(checked)) != len(checked):
        dupes = sorted({c for c in checked if checked.count(c) > 1})
        raise ZoneError(f"duplicate cells (pitch, velocity): {dupes}")
    layers = sorted({v for _, v in checked})
    zones = []
    for velocity, (lovel, hivel) in zip(layers, split_ranges(layers, *VELOCITY_RANGE), strict=True):
        pitches = sorted(p for p, v in checked if v == velocity)
        for pitch, (lokey, hikey) in zip(pitches, split_ranges(pitches, *KEY_RANGE), strict=True):
            zones.append(Zone(pitch, velocity, lokey, hikey, lovel, hivel))
    return zones
