"""Spectrogram pictures for the companion page: the notes of a preview side by side, as a bare image
(no axes: the page labels it), in the scale of the evaluation's prompt spectrograms (log frequency
40 Hz to 8 kHz, 80 dB below each note's peak, magma).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from instrumentgen.atomic import atomic_path
from instrumentgen.listening.kit import Audio
from instrumentgen.metrics.prompt_spectrograms import FLOOR_DB, MAX_HZ, log_spectrogram

MIN_HZ = 40.0
HEIGHT = 96  # image rows (log-spaced frequencies)
MAX_COLUMNS = 160  # image columns per note at most (longer notes are strided)
SEPARATOR = 2  # white columns between notes


def note_image(audio: Audio, height: int = HEIGHT, max_columns: int = MAX_COLUMNS) -> np.ndarray:
    """dB below the note's peak on a log-frequency grid, ``[height, T']`` with row 0 the lowest
    frequency and ``T' <= max_columns`` frames."""
    db, freqs, _ = log_spectrogram(audio.samples, audio.rate)
    grid = np.geomspace(MIN_HZ, min(MAX_HZ, audio.rate / 2), height)
    image = np.stack([np.interp(grid, freqs, column) for column in db.T], axis=1)  # [height, T]
    step = -(-image.shape[1] // max_columns)
    return image[:, ::step]


def write_spectrogram(path: Path, notes: Sequence[Audio]) -> tuple[int, int]:
    """Write the notes' spectrograms side by side as a PNG; returns its ``(width, height)`` in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    cmap = matplotlib.colormaps["magma"]
    panels = []
    for i, audio in enumerate(notes):
        rgba = cmap(np.clip(note_image(audio) / FLOOR_DB + 1.0, 0.0, 1.0))  # [H, T, 4]
        if i:
            panels.append(np.ones((rgba.shape[0], SEPARATOR, 4)))
        panels.append(rgba)
    image = np.concatenate(panels, axis=1)[::-1]  # highest frequency at the top
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        matplotlib.image.imsave(tmp, image, format="png")
    return image.shape[1], image.shape[0]
