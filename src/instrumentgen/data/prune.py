"""Prune an NSynth-format split to the paper's 88 keys and write its manifest.

Keeps notes with ``pitch_min <= pitch <= pitch_max`` (paper: MIDI 21..108) and a velocity in
``velocities``; every kept note's WAV is checked (present, readable, mono, rate, length)
before anything is written, so bad data stops the pipeline here with the file named.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path


from instrumentgen.data.audio_io import AudioFileError, check_wav, expected_frames
from instrumentgen.data.manifest import to_table, write_table
from instrumentgen.progress import progress_bar
from instrumentgen.nsynth.metadata import (
    FIELDS,
    PIANO_MAX,
    PIANO_MIN,
    VELOCITIES,
    MetadataError,
    load_examples,
)

log = logging.getLogger(__name__)
MAX_REPORTED = 10


class PruneError(ValueError):
    """Bad parameters or bad source data; the message names the value or files."""


def check_range(pitch_min: int, pitch_max: int, velocities: list[int]) -> None:
    """Reject a pitch range outside the 88 keys or velocities outside NSynth's five layers."""
    for name, p in (("pitch_min", pitch_min), ("pitch_max", pitch_max)):
        if not PIANO_MIN <= p <= PIANO_MAX:
            raise PruneError(f"{name} = {p} is outside the 88 keys, MIDI {PIANO_MIN}..{PIANO_MAX}")
    if pitch_min > pitch_max:
        raise PruneError(f"pitch_min = {pitch_min} is above pitch_max = {pitch_max}")
    bad = [v for v in velocities if v not in VELOCITIES]
    if bad or not velocities:
        raise PruneError(f"velocities {velocities}: each must be one of {list(VELOCITIES)}")


def prune_split(
    split_dir: str | Path, *, pitch_min: int = PIANO_MIN, pitch_max: int = PIANO_MAX,
    velocities: tuple[int, ...] | list[int] = VELOCITIES, sample_rate: int = 16000, note_seconds: float = 4.0,
    progress: bool = True,
):
    """Select and check the notes of one split.

    Returns:
        ``(table, counts)``: the manifest as an Arrow table and a dict of counts
        (``total``, ``kept``, ``dropped_pitch``, ``dropped_velocity``, ``instruments``).

    Raises:
        PruneError: bad range, or WAV problems (up to ten files named, with the total count).
    """
    velocities = list(velocities)
    check_range(pitch_min, pitch_max, velocities)
    split_dir = Path(split_dir)
    try:
        examples = load_examples(split_dir)
    except MetadataError as e:
        raise PruneError(str(e)) from e
    frames = expected_frames(sample_rate, note_seconds)
    rows, problems = [], []
    counts = Counter(total=len(examples))
    for key, ex in progress_bar(sorted(examples.items()), desc=f"prune {split_dir.name}", disable=not progress):
        if not pitch_min <= ex["pitch"] <= pitch_max:
            counts["dropped_pitch"] += 1
            continue
        if ex["velocity"] not in velocities:
            counts["dropped_velocity"] += 1
            continue
        wav = split_dir / "audio" / f"{key}.wav"
        if ex["sample_rate"] != sample_rate:
            problems.append(f"{split_dir / 'examples.json'}: note {key!r} has sample_rate "
                            f"{ex['sample_rate']}, expected {sample_rate}")
            continue
        try:
            check_wav(wav, sample_rate, frames)
        except AudioFileError as e:
            problems.append(str(e))
            continue
        rows.append({**{k: ex[k] for k in FIELDS}, "path": str(wav), "num_frames": frames,
                     "duration_s": frames / sample_rate})
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise PruneError(f"{len(problems)} bad note(s) in {split_dir}:\n  {shown}{more}")
    if not rows:
        raise PruneError(f"{split_dir}: no notes left in MIDI {pitch_min}..{pitch_max} "
                         f"with velocities {velocities}")
    counts["kept"] = len(rows)
    counts["instruments"] = len({r["instrument_str"] for r in rows})
    return to_table(rows), dict(counts)



def main(argv: list[str] | None = None) -> None:
    """CLI used by the ``prune`` rule."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--pitch-min", type=int, default=PIANO_MIN)
    ap.add_argument("--pitch-max", type=int, default=PIANO_MAX)
    ap.add_argument("--velocities", type=int, nargs="+", default=list(VELOCITIES))
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--note-seconds", type=float, default=4.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        table, counts = prune_split(
            args.split_dir, pitch_min=args.pitch_min, pitch_max=args.pitch_max,
            velocities=args.velocities, sample_rate=args.sample_rate, note_seconds=args.note_seconds,
        )
    except PruneError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    families = Counter(table.column("instrument_family_str").to_pylist())
    log.info("%s: kept %d of %d notes (dropped %d outside MIDI %d..%d, %d with other velocities); "
             "%d instruments; per family: %s", args.split_dir.name, counts["kept"], counts["total"],
             counts.get("dropped_pitch", 0), args.pitch_min, args.pitch_max,
             counts.get("dropped_velocity", 0), counts["instruments"], dict(sorted(families.items())))
    write_table(table, args.out)


if __name__ == "__main__":
    main()
