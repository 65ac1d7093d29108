"""NSynth metadata conventions (magenta.tensorflow.org/datasets/nsynth).

A split folder ``nsynth-{split}/`` holds ``examples.json`` — a dict keyed by ``note_str``
(``{family}_{source}_{NNN}-{pitch:03d}-{velocity:03d}``) — and ``audio/<note_str>.wav``
(16 kHz mono 16-bit PCM). This module names the vocabularies and validates entries, so the
real dataset and the synthetic one are read by the same code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SPLITS = ("train", "valid", "test")
FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)
VELOCITIES = (25, 50, 75, 100, 127)
PIANO_MIN, PIANO_MAX = 21, 108  # MIDI A0..C8, the 88 keys of the paper
NSYNTH_SAMPLE_RATE = 16000

FIELDS = (
    "note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
    "qualities", "qualities_str", "instrument_family", "instrument_family_str",
    "instrument_source", "instrument_source_str",
)

_NOTE_STR = re.compile(
    r"^(?P<instrument_str>[a-z_]+_(?:acoustic|electronic|synthetic)_\d{3})-(?P<pitch>\d{3})-(?P<velocity>\d{3})$"
)


class MetadataError(ValueError):
    """An ``examples.json`` entry that does not follow the NSynth conventions."""


def instrument_str(family: str, source: str, index: int) -> str:
    """``bass_synthetic_033`` for (``bass``, ``synthetic``, 33)."""
    return f"{family}_{source}_{index:03d}"


def note_str(instrument: str, pitch: int, velocity: int) -> str:
    """``bass_synthetic_033-022-050`` for (``bass_synthetic_033``, 22, 50)."""
    return f"{instrument}-{pitch:03d}-{velocity:03d}"


def parse_note_str(name: str) -> tuple[str, int, int]:
    """Inverse of :func:`note_str`: ``(instrument_str, pitch, velocity)``."""
    m = _NOTE_STR.match(name)
    if m is None:
        raise MetadataError(f"note_str {name!r} does not match '<family>_<source>_<NNN>-<pitch>-<velocity>'")
    return m["instrument_str"], int(m["pitch"]), int(m["velocity"])


def qualities_str(bits: list[int]) -> list[str]:
    """Names of the set quality bits, in NSynth's order."""
    return [name for name, bit in zip(QUALITIES, bits, strict=True) if bit]


def validate_example(key: str, ex: dict[str, Any], where: str = "examples.json") -> None:
    """Raise :class:`MetadataError` naming ``where``, the note and the field if ``ex`` is malformed."""

    def fail(msg: str) -> None:
        raise MetadataError(f"{where}: note {key!r}: {msg}")

    missing = [f for f in FIELDS if f not in ex]
    if missing:
        fail(f"missing field(s) {', '.join(missing)}")
    if ex["note_str"] != key:
        fail(f"note_str {ex['note_str']!r} differs from its key")
    try:
        inst, pitch, velocity = parse_note_str(key)
    except MetadataError as e:
        fail(str(e))
    if ex["instrument_str"] != inst or ex["pitch"] != pitch or ex["velocity"] != velocity:
        fail("instrument_str/pitch/velocity disagree with note_str")
    if ex["velocity"] not in VELOCITIES:
        fail(f"velocity {ex['velocity']} not in {list(VELOCITIES)}")
    if not 0 <= ex["pitch"] <= 127:
        fail(f"pitch {ex['pitch']} outside MIDI 0..127")
    fam, src = ex["instrument_family"], ex["instrument_source"]
    if not (0 <= fam < len(FAMILIES)) or FAMILIES[fam] != ex["instrument_family_str"]:
        fail(f"instrument_family {fam}/{ex['instrument_family_str']!r} is not an NSynth family")
    if not (0 <= src < len(SOURCES)) or SOURCES[src] != ex["instrument_source_str"]:
        fail(f"instrument_source {src}/{ex['instrument_source_str']!r} is not an NSynth source")
    if len(ex["qualities"]) != len(QUALITIES) or any(b not in (0, 1) for b in ex["qualities"]):
        fail(f"qualities must be {len(QUALITIES)} bits, got {ex['qualities']}")
    if sorted(ex["qualities_str"]) != sorted(qualities_str(ex["qualities"])):
        fail("qualities_str disagrees with the quality bits")


def load_examples(split_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Read and validate ``split_dir/examples.json``; returns it keyed by ``note_str``."""
    path = Path(split_dir) / "examples.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: NSynth examples.json not found")
    try:
        examples = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(examples, dict) or not examples:
        raise MetadataError(f"{path}: expected a non-empty JSON object keyed by note_str")
    for key, ex in examples.items():
        validate_example(key, ex, where=str(path))
    return examples
