"""The key/velocity map: every (key, velocity) of 21..108 × 1..127 maps to exactly one zone, whose
sample is the nearest available velocity layer and, within it, the nearest available pitch."""

from __future__ import annotations

import numpy as np
import pytest

from instrumentgen.export.zones import KEY_RANGE, VELOCITY_RANGE, Zone, ZoneError, plan_zones, split_ranges
from instrumentgen.nsynth.metadata import VELOCITIES

KEYS = np.arange(KEY_RANGE[0], KEY_RANGE[1] + 1)
VELS = np.arange(VELOCITY_RANGE[0], VELOCITY_RANGE[1] + 1)


def coverage(zones: list[Zone]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How many zones cover each (key, vel) ``[88, 127]``, and the pitch and velocity of the last one."""
    count = np.zeros((len(KEYS), len(VELS)), dtype=int)
    pitch = np.full(count.shape, -1)
    velocity = np.full(count.shape, -1)
    for z in zones:
        k = slice(z.lokey - KEY_RANGE[0], z.hikey - KEY_RANGE[0] + 1)
        v = slice(z.lovel - VELOCITY_RANGE[0], z.hivel - VELOCITY_RANGE[0] + 1)
        count[k, v] += 1
        pitch[k, v] = z.pitch
        velocity[k, v] = z.velocity
    return count, pitch, velocity


def nearest(values: np.ndarray, points: list[int]) -> np.ndarray:
    """The nearest of sorted ``points`` to each value (a tie goes to the lower point)."""
    points = np.asarray(sorted(points))
    return points[np.argmin(np.abs(values[:, None] - points[None, :]), axis=1)]


def expected_map(cells: set[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force oracle: (pitch, velocity) of the cell each (key, vel) should play ``[88, 127]``."""
    layer = nearest(VELS, sorted({v for _, v in cells}))
    pitch = np.empty((len(KEYS), len(VELS)), dtype=int)
    for j, v in enumerate(layer):
        pitch[:, j] = nearest(KEYS, [p for p, vv in cells if vv == v])
    return pitch, np.broadcast_to(layer, pitch.shape)


def check_map(cells: set[tuple[int, int]]) -> list[Zone]:
    zones = plan_zones(cells)
    assert sorted(z.cell for z in zones) == sorted(cells)
    assert all(z.keycenter == z.pitch and z.lokey <= z.hikey and z.lovel <= z.hivel for z in zones)
    count, pitch, velocity = coverage(zones)
    assert (count == 1).all(), "every (key, velocity) must be covered exactly once"
    want_pitch, want_velocity = expected_map(cells)
    np.testing.assert_array_equal(velocity, want_velocity)
    np.testing.assert_array_equal(pitch, want_pitch)
    return zones


def random_cells(rng: np.random.Generator) -> set[tuple[int, int]]:
    """A random instrument: a random density of cells, sometimes only a few layers or pitches."""
    layers = rng.choice(VELOCITIES, size=rng.integers(1, 6), replace=False)
    pitches = rng.choice(KEYS, size=rng.integers(1, 89), replace=False)
    keep = rng.random((len(pitches), len(layers))) < rng.uniform(0.2, 1.0)
    cells = {(int(p), int(v)) for i, p in enumerate(pitches) for j, v in enumerate(layers) if keep[i, j]}
    return cells or {(int(pitches[0]), int(layers[0]))}


def test_random_instruments_tile_the_keyboard_with_nearest_cells():
    rng = np.random.default_rng(0)
    for _ in range(200):
        check_map(random_cells(rng))


@pytest.mark.parametrize("cells", [
    {(60, 100)},
    {(21, 25)},
    {(108, 127)},
    {(21, 25), (108, 127)},
    {(p, v) for p in range(21, 109) for v in VELOCITIES},  # the full grid
    {(p, v) for p in range(21, 109) for v in VELOCITIES if not (p % 3 == 0 and v in (25, 75))},  # 3 of 5
    {(p, 127) for p in range(21, 109)} | {(60, 25)},  # one soft sample serves the whole soft layer
])
def test_edge_instruments(cells):
    check_map(cells)


def test_full_grid_ranges():
    zones = {z.cell: z for z in plan_zones((p, v) for p in range(21, 109) for v in VELOCITIES)}
    assert len(zones) == 88 * 5
    assert [(zones[(60, v)].lovel, zones[(60, v)].hivel) for v in VELOCITIES] == [
        (1, 37), (38, 62), (63, 87), (88, 113), (114, 127)]
    assert (zones[(60, 100)].lokey, zones[(60, 100)].hikey) == (60, 60)
    assert (zones[(21, 25)].lokey, zones[(108, 25)].hikey) == (21, 108)


def test_single_cell_covers_everything():
    assert plan_zones([(60, 75)]) == [Zone(60, 75, 21, 108, 1, 127)]


def test_split_ranges_midpoints():
    assert split_ranges([40, 50, 51, 70], 21, 108) == [(21, 45), (46, 50), (51, 60), (61, 108)]
    assert split_ranges([64], 1, 127) == [(1, 127)]


def test_integral_floats_are_accepted():
    assert plan_zones([(60.0, 100.0)]) == [Zone(60, 100, 21, 108, 1, 127)]


@pytest.mark.parametrize("cells, message", [
    ([], "no cells"),
    ([(20, 100)], "pitch 20"),
    ([(109, 100)], "pitch 109"),
    ([(60.5, 100)], "pitch 60.5"),
    ([(float("nan"), 100)], "pitch nan"),
    ([(60, 64)], "velocity 64"),
    ([(60, 100), (60, 100)], "duplicate"),
])
def test_bad_cells_are_refused(cells, message):
    with pytest.raises(ZoneError, match=message):
        plan_zones(cells)
