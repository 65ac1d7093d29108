"""Write a procedural dataset in the exact NSynth layout.

``out_root/nsynth-{split}/examples.json`` + ``audio/<note_str>.wav`` per split and
``out_root/captions.json`` (``{instrument_str: caption}``), all built in a temporary directory
that is renamed onto ``out_root`` only when complete. Notes are rendered independently from
per-note seeds, so the bytes written do not depend on ``workers``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from instrumentgen.atomic import atomic_dir
from instrumentgen.checks import int_at_least, number_in_range, positive_int
from instrumentgen.nsynth import metadata
from instrumentgen.progress import progress_bar
from instrumentgen.synth.captions import captions
from instrumentgen.synth.instrument import Instrument, assign_sources, note_grid, sample_instrument
from instrumentgen.synth.render import render_note, to_pcm16

CHUNK_NOTES = 64  # notes per worker task
MIN_SAMPLE_RATE = 8000
MIN_FRAMES = 64


@dataclass(frozen=True)
class _Job:
    """Notes of one instrument for one worker task."""

    inst: Instrument
    cells: tuple[tuple[int, int], ...]
    audio_dir: str
    seed: int
    sample_rate: int
    note_seconds: float


def _render_job(job: _Job) -> int:
    """Render and write the WAVs of ``job``; returns the number of notes written."""
    for pitch, velocity in job.cells:
        audio = render_note(job.inst, pitch, velocity, seed=job.seed, sample_rate=job.sample_rate,
                            note_seconds=job.note_seconds)
        name = metadata.note_str(job.inst.name, pitch, velocity)
        sf.write(Path(job.audio_dir) / f"{name}.wav", to_pcm16(audio), job.sample_rate, subtype="PCM_16")
    return len(job.cells)


def _validate(seed: int, instruments_per_family: Mapping[str, int], sample_rate: int, note_seconds: float,
              pitch_step: int, velocities: Sequence[int], cell_dropout: float | Mapping[str, float],
              workers: int) -> None:
    int_at_least("seed", seed, 0)
    if not instruments_per_family:
        raise ValueError("instruments_per_family is empty; give a count for at least one of "
                         f"{', '.join(metadata.SPLITS)}")
    for split, count in instruments_per_family.items():
        if split not in metadata.SPLITS:
            raise ValueError(f"instruments_per_family: unknown split {split!r} (expected one of "
                             f"{', '.join(metadata.SPLITS)})")
        int_at_least(f"instruments_per_family[{split!r}]", count, 0)
    total = sum(instruments_per_family.values())
    if total == 0:
        raise ValueError(f"instruments_per_family has no positive count: {dict(instruments_per_family)}")
    if total > 1000:
        raise ValueError(f"instruments_per_family: {total} instruments per family exceed NSynth's 3-digit "
                         "instrument numbers (at most 1000)")
    int_at_least("sample_rate (Hz)", sample_rate, MIN_SAMPLE_RATE)
    if not (isinstance(note_seconds, int | float) and math.isfinite(note_seconds) and note_seconds > 0):
        raise ValueError(f"note_seconds must be > 0, got {note_seconds!r}")
    if round(note_seconds * sample_rate) < MIN_FRAMES:
        raise ValueError(f"note_seconds={note_seconds} gives fewer than {MIN_FRAMES} frames at "
                         f"sample_rate={sample_rate}")
    positive_int("pitch_step", pitch_step)
    bad = [v for v in velocities if v not in metadata.VELOCITIES]
    if not velocities or bad:
        raise ValueError(f"velocities must be a non-empty subset of {list(metadata.VELOCITIES)}, "
                         f"got {list(velocities)}")
    for split, rate in per_split_dropout(cell_dropout, instruments_per_family).items():
        number_in_range(f"cell_dropout[{split!r}]", rate, 0.0, 1.0, high_inclusive=False)
    positive_int("workers", workers)


def per_split_dropout(cell_dropout: float | Mapping[str, float], splits) -> dict[str, float]:
    """``cell_dropout`` per split: one probability for every split, or a mapping that gives each split of
    ``splits`` its own (e.g. many training instruments with few cells each, while the valid and test
    instruments keep nearly full grids for the metrics)."""
    if isinstance(cell_dropout, Mapping):
        unknown = sorted(set(cell_dropout) - set(metadata.SPLITS))
        if unknown:
            raise ValueError(f"cell_dropout: unknown split {unknown[0]!r} (expected one of "
                             f"{', '.join(metadata.SPLITS)})")
        missing = [s for s in splits if s not in cell_dropout]
        if missing:
            raise ValueError(f"cell_dropout gives no probability for split {missing[0]!r}")
        return {s: cell_dropout[s] for s in splits}
    return dict.fromkeys(splits, cell_dropout)


def plan_instruments(seed: int, instruments_per_family: Mapping[str, int]) -> dict[str, list[Instrument]]:
    """Instruments per split (splits in NSynth order, those with a positive count only).

    Instrument ids run over the whole dataset; the ``NNN`` of ``{family}_{source}_{NNN}`` runs per
    family across splits, so every instrument appears in exactly one split.
    """
    splits = [s for s in metadata.SPLITS if instruments_per_family.get(s, 0) > 0]
    total = sum(instruments_per_family[s] for s in splits)
    sources = {f: assign_sources(seed, f, total) for f in metadata.FAMILIES}
    next_index = dict.fromkeys(metadata.FAMILIES, 0)
    plan: dict[str, list[Instrument]] = {}
    inst_id = 0
    for split in splits:
        plan[split] = []
        for family in metadata.FAMILIES:
            for _ in range(instruments_per_family[split]):
                index = next_index[family]
                plan[split].append(sample_instrument(seed, inst_id, family, sources[family][index], index))
                next_index[family] += 1
                inst_id += 1
    return plan


def _example(inst: Instrument, pitch: int, velocity: int, note_id: int, sample_rate: int) -> dict[str, Any]:
    bits = inst.qualities()
    return {
        "note": note_id,
        "note_str": metadata.note_str(inst.name, pitch, velocity),
        "instrument": inst.inst_id,
        "instrument_str": inst.name,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": sample_rate,
        "qualities": bits,
        "qualities_str": metadata.qualities_str(bits),
        "instrument_family": metadata.FAMILIES.index(inst.family),
        "instrument_family_str": inst.family,
        "instrument_source": metadata.SOURCES.index(inst.source),
        "instrument_source_str": inst.source,
    }


def synthesize_dataset(
    out_root: Path, *, seed: int, instruments_per_family: dict[str, int],
    sample_rate: int = 16000, note_seconds: float = 4.0, pitch_step: int = 1,
    velocities: Sequence[int] = (25, 50, 75, 100, 127), cell_dropout: float | Mapping[str, float] = 0.05,
    workers: int = 1, progress: bool = True,
) -> dict[str, int]:
    """Write a deterministic procedural dataset in NSynth format under ``out_root``.

    ``instruments_per_family`` maps splits (a subset of train/valid/test) to the number of
    instruments of each of the 11 families in that split. Each instrument plays every
    ``pitch_step`` semitones of its range at each of ``velocities``, each cell dropped with
    probability ``cell_dropout`` (one value, or one per split). ``out_root`` is replaced atomically.
    Returns notes per split.
    """
    velocities = tuple(velocities)
    _validate(seed, instruments_per_family, sample_rate, note_seconds, pitch_step, velocities, cell_dropout,
              workers)
    velocities = tuple(sorted(set(velocities)))
    plan = plan_instruments(seed, instruments_per_family)
    dropout = per_split_dropout(cell_dropout, instruments_per_family)
    counts = dict.fromkeys(instruments_per_family, 0)
    out_root = Path(out_root)
    with atomic_dir(out_root) as tmp:
        jobs: list[_Job] = []
        examples: dict[str, dict[str, dict[str, Any]]] = {}
        note_id = 0
        for split, instruments in plan.items():
            audio_dir = tmp / f"nsynth-{split}" / "audio"
            audio_dir.mkdir(parents=True)
            examples[split] = {}
            for inst in instruments:
                cells = note_grid(inst, seed, sample_rate, pitch_step, velocities, dropout[split])
                for pitch, velocity in cells:
                    ex = _example(inst, pitch, velocity, note_id, sample_rate)
                    examples[split][ex["note_str"]] = ex
                    note_id += 1
                for start in range(0, len(cells), CHUNK_NOTES):
                    jobs.append(_Job(inst, tuple(cells[start:start + CHUNK_NOTES]), str(audio_dir), seed,
                                     sample_rate, float(note_seconds)))
            counts[split] = len(examples[split])
        bar = progress_bar(total=note_id, desc="synthesize", unit="note", disable=not progress)
        with bar:
            if workers == 1:
                for job in jobs:
                    bar.update(_render_job(job))
            else:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    for future in as_completed([pool.submit(_render_job, job) for job in jobs]):
                        bar.update(future.result())
        for split, split_examples in examples.items():
            for key, ex in split_examples.items():
                metadata.validate_example(key, ex, where=f"nsynth-{split}/examples.json")
            text = json.dumps(split_examples, indent=2) + "\n"
            (tmp / f"nsynth-{split}" / "examples.json").write_text(text)
        all_instruments = [inst for instruments in plan.values() for inst in instruments]
        (tmp / "captions.json").write_text(
            json.dumps(captions(all_instruments, seed), indent=2, sort_keys=True) + "\n")
    return counts
