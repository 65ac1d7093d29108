"""Audio preparation shared by the CLAP embedders: a fixed window, L2 norm.

Validating and resampling a batch of notes is :mod:`instrumentgen.audio`'s (VGGish's too).
"""

from __future__ import annotations

import numpy as np


def repeat_pad(audio: np.ndarray, length: int) -> np.ndarray:
    """Fit ``[B, T]`` into ``[B, length]`` deterministically.

    Shorter notes are tiled ``length // T`` times and zero-padded to ``length`` (laion_clap's
    ``'repeatpad'``); longer ones keep their first ``length`` samples (laion_clap crops at a
    random offset; the start is deterministic and keeps the onset that defines a note).
    """
    n = audio.shape[1]
    if n >= length:
        return np.ascontiguousarray(audio[:, :length])
    tiled = np.tile(audio, (1, length // n))
    return np.pad(tiled, ((0, 0), (0, length - tiled.shape[1])))


def zero_pad(audio: np.ndarray, length: int) -> np.ndarray:
    """Fit ``[B, T]`` into ``[B, length]``: crop to the first ``length`` samples or pad with silence."""
    n = audio.shape[1]
    if n >= length:
        return np.ascontiguousarray(audio[:, :length])
    return np.pad(audio, ((0, 0), (0, length - n)))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``[B, D]`` scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)
