"""The companion page's audio files: Ogg Vorbis (played by every current browser's ``<audio>`` element
and Web Audio's ``decodeAudioData``; about a tenth of 16-bit WAV).

A card's samples go into one file per velocity layer (``v<velocity>.ogg``): its notes in ascending
pitch, each followed by :data:`GAP_S` of silence so that no note's coding pre-echo reaches the end of
the previous one. The keyboard fetches a layer once and plays a note as the region ``offset``, ``offset
+ duration`` (seconds) of it; :class:`Region` records where each note lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from instrumentgen.atomic import atomic_path
from instrumentgen.listening.kit import Audio

GAP_S = 0.1  # silence after each note of a layer file
PREVIEW_GAP_S = 0.25  # silence between the notes of a preview
BLOCK = 1 << 16  # samples per write: libsndfile's Vorbis encoder has crashed on one multi-minute write


@dataclass(frozen=True)
class Region:
    """Where the sample of cell ``(pitch, velocity)`` lies in its layer file (seconds)."""

    pitch: int
    velocity: int
    offset: float
    duration: float


def write_ogg(path: Path, samples: np.ndarray, rate: int) -> None:
    """Mono float ``samples`` ``[T]`` (clipped to ±1) as Ogg Vorbis at ``path``, atomically."""
    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".ogg") as tmp, sf.SoundFile(tmp, "w", rate, 1, format="OGG",
                                                               subtype="VORBIS") as out:
        for start in range(0, len(samples), BLOCK):
            out.write(samples[start : start + BLOCK])


def join(sounds: Sequence[Audio], gap_s: float) -> tuple[Audio, list[tuple[float, float]]]:
    """``sounds`` (one rate) one after the other, each followed by ``gap_s`` of silence, and each one's
    ``(offset, duration)`` in seconds; mixed rates are a ValueError."""
    rates = {s.rate for s in sounds}
    if len(rates) != 1:
        raise ValueError(f"notes of one instrument must share a sample rate, got {sorted(rates)} Hz")
    rate = rates.pop()
    gap = np.zeros(int(round(gap_s * rate)), dtype=np.float32)
    parts, spans, at = [], [], 0
    for sound in sounds:
        samples = np.asarray(sound.samples, dtype=np.float32)
        spans.append((at / rate, len(samples) / rate))
        parts += [samples, gap]
        at += len(samples) + len(gap)
    return Audio(np.concatenate(parts), rate), spans


def write_layers(notes: dict[tuple[int, int], Audio], folder: Path) -> tuple[dict[int, str], list[Region]]:
    """One Ogg file per velocity layer of ``notes`` (``(pitch, velocity)`` → audio) in ``folder``.

    Returns layer velocity → file name, and the notes' regions (by velocity, then pitch)."""
    files, regions = {}, []
    for velocity in sorted({v for _, v in notes}):
        cells = sorted(c for c in notes if c[1] == velocity)
        audio, spans = join([notes[c] for c in cells], GAP_S)
        files[velocity] = f"v{velocity:03d}.ogg"
        write_ogg(folder / files[velocity], audio.samples, audio.rate)
        regions += [Region(p, v, round(offset, 6), round(duration, 6))
                    for (p, v), (offset, duration) in zip(cells, spans, strict=True)]
    return files, regions
