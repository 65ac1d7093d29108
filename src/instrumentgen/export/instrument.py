"""Export one instrument (a set of mono WAVs, one per (pitch, velocity) cell) as a playable folder.

``out_dir/`` after :func:`export_instrument`::

    samples/<name>-<pitch>-<velocity>.wav   copies of the cells' WAVs (pitch, velocity as 3 digits)
    <name>.sfz                              SFZ map of the samples (relative paths)
    <name>.sf2                              SoundFont 2.01 bank holding the samples (16-bit)
    demo.mid                                a short ascending demo pattern
    demo.wav                                the demo rendered through the SF2 by FluidSynth

``<name>`` is the instrument name with anything but letters, digits, ``.``, ``_`` and ``-``
replaced by ``_``. All inputs are checked before anything is written, and the folder is built
next to ``out_dir`` and moved into place at the end, so it is either complete or absent.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from instrumentgen.atomic import atomic_dir
from instrumentgen.export.midi import demo_notes, write_midi
from instrumentgen.export.render import GAIN, SAMPLE_RATE_RANGE, render_midi
from instrumentgen.export.sf2 import Sf2Sample, to_pcm16, write_sf2
from instrumentgen.export.sfz import RELEASE_S, write_sfz
from instrumentgen.export.zones import ZoneError, check_cell, plan_zones

log = logging.getLogger(__name__)

COLUMNS = ("pitch", "velocity", "path")
WAV_FORMATS = ("WAV", "WAVEX", "RF64")


class ExportError(ValueError):
    """The cells of an instrument, its name or its output folder cannot be exported."""


def file_stem(name: str) -> str:
    """``name`` made safe as a file name (letters, digits, ``._-``; others become ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    if not stem:
        raise ExportError(f"instrument name {name!r} has no letters or digits to name its files with")
    return stem


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"export folder {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"export folder {out_dir} exists and is not empty; pass overwrite=True "
                              "to replace it")


def _check_cells(cells: pd.DataFrame) -> tuple[list[tuple[int, int, Path]], int]:
    """Rows ``(pitch, velocity, path)`` and their common sample rate, or an :class:`ExportError`."""
    missing = [c for c in COLUMNS if c not in getattr(cells, "columns", ())]
    if missing:
        raise ExportError(f"instrument cells need columns {list(COLUMNS)}; missing {missing}")
    if len(cells) == 0:
        raise ExportError("instrument has no cells: nothing to export")
    rows, rates, seen = [], {}, {}
    for pitch, velocity, path in cells[list(COLUMNS)].itertuples(index=False):
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ExportError(f"cell (pitch {pitch}, velocity {velocity}) has no sample path: {path!r}")
        path = Path(path)
        try:
            pitch, velocity = check_cell(pitch, velocity)
        except ZoneError as exc:
            raise ExportError(f"{path}: {exc}") from None
        if (pitch, velocity) in seen:
            raise ExportError(f"cell (pitch {pitch}, velocity {velocity}) appears twice: "
                              f"{seen[(pitch, velocity)]} and {path}")
        seen[(pitch, velocity)] = path
        info = _wav_info(path)
        rates.setdefault(int(info.samplerate), path)
        rows.append((pitch, velocity, path))
    if len(rates) > 1:
        examples = ", ".join(f"{rate} Hz ({path})" for rate, path in sorted(rates.items()))
        raise ExportError(f"instrument samples have mixed sample rates: {examples}; "
                          "resample them to one rate")
    return rows, next(iter(rates))


def _wav_info(path: Path) -> Any:
    """``soundfile.info`` of a readable, non-empty, mono WAV at ``path``, or an :class:`ExportError`."""
    if not path.is_file():
        raise ExportError(f"sample WAV not found: {path}")
    try:
        info = sf.info(str(path))
    except RuntimeError as exc:  # soundfile.LibsndfileError
        raise ExportError(f"sample WAV cannot be read: {path} ({exc})") from None
    if info.format not in WAV_FORMATS:
        raise ExportError(f"sample {path} is {info.format}, not a WAV file")
    if info.channels != 1 or info.frames == 0:
        raise ExportError(f"sample WAV {path} must be mono and non-empty; it has {info.channels} channel(s) "
                          f"and {info.frames} frames")
    return info


def _read_pcm16(path: Path) -> np.ndarray:
    """The WAV at ``path`` as int16 ``[T]`` (clipped, with a warning, if its float data exceed ±1)."""
    audio, _ = sf.read(str(path), dtype="float64", always_2d=False)
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        log.warning("sample %s peaks at %.3f > 1: clipped in the 16-bit SF2 copy", path, peak)
    return to_pcm16(audio)


def export_instrument(cells: pd.DataFrame, name: str, out_dir: str | os.PathLike, overwrite: bool = False, *,
                      release_s: float = RELEASE_S, gain: float = GAIN) -> dict[str, Any]:
    """Export the instrument whose samples are ``cells`` into the folder ``out_dir``.

    ``cells``: one row per sample with columns ``pitch`` (MIDI 21..108), ``velocity`` (25, 50, 75,
    100 or 127) and ``path`` (a mono WAV; all at one sample rate); missing cells are fine, the
    key/velocity map (:func:`~instrumentgen.export.zones.plan_zones`) fills the keyboard from the
    nearest ones. ``name``: instrument name (files are named by :func:`file_stem` of it).
    ``overwrite``: replace an existing non-empty ``out_dir`` (refused otherwise). ``release_s``:
    note-off release in seconds (SFZ and SF2); ``gain``: FluidSynth gain of the demo render.

    Returns JSON-ready paths (str) and counts: ``out_dir``, ``sfz``, ``sf2``, ``midi``,
    ``demo_wav``, ``samples`` (list), ``n_samples``, ``n_zones``, ``n_pitches``, ``velocities``,
    ``sample_rate`` (Hz), ``demo_notes``, ``demo_seconds``.
    """
    out_dir = Path(out_dir)
    stem = file_stem(name)
    _check_out_dir(out_dir, overwrite)
    rows, sample_rate = _check_cells(cells)
    zones = plan_zones((p, v) for p, v, _ in rows)
    files = {(p, v): f"samples/{stem}-{p:03d}-{v:03d}.wav" for p, v, _ in rows}
    pitches = sorted({p for p, _, _ in rows})
    velocities = sorted({v for _, v, _ in rows})
    notes = demo_notes(pitches, velocities)
    render_rate = int(np.clip(sample_rate, *SAMPLE_RATE_RANGE))
    log.info("exporting %s: %d samples, %d pitches, velocities %s -> %s", name, len(rows), len(pitches),
             velocities, out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "samples").mkdir()
        sf2_samples = {}
        for pitch, velocity, path in rows:
            shutil.copyfile(path, tmp / files[(pitch, velocity)])
            sf2_samples[(pitch, velocity)] = Sf2Sample(_read_pcm16(path), sample_rate)
        write_sfz(tmp / f"{stem}.sfz", zones, files, name=name, release_s=release_s)
        write_sf2(tmp / f"{stem}.sf2", zones, sf2_samples, name=name, release_s=release_s,
                  comment=f"{name}: {len(rows)} samples exported by instrumentgen")
        write_midi(tmp / "demo.mid", notes)
        render_midi(tmp / f"{stem}.sf2", tmp / "demo.mid", tmp / "demo.wav", sample_rate=render_rate,
                    gain=gain)
    return {
        "out_dir": str(out_dir),
        "sfz": str(out_dir / f"{stem}.sfz"),
        "sf2": str(out_dir / f"{stem}.sf2"),
        "midi": str(out_dir / "demo.mid"),
        "demo_wav": str(out_dir / "demo.wav"),
        "samples": [str(out_dir / files[z.cell]) for z in zones],
        "n_samples": len(rows),
        "n_zones": len(zones),
        "n_pitches": len(pitches),
        "velocities": velocities,
        "sample_rate": sample_rate,
        "demo_notes": len(notes),
        "demo_seconds": max(n.end_s for n in notes),
    }
