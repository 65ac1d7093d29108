"""Audio preparation shared by the CLAP embedders: validation, resampling, a fixed window, L2 norm."""

from __future__ import annotations

import numpy as np
import soxr


def check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate mono audio ``[B, T]`` (or one note ``[T]``) and return it as float32 ``[B, T]``.

    Raises :class:`ValueError` naming the offending row for NaN/inf samples, and for an empty
    batch, an empty note or a non-positive sample rate.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sample_rate!r}")
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"expected mono audio [B, T], got shape {audio.shape}")
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise ValueError(f"expected a non-empty batch of non-empty notes, got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"expected float audio in [-1, 1], got dtype {audio.dtype}")
    bad = ~np.isfinite(audio).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"audio rows {rows[:10].tolist()} contain NaN or inf samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """float32 ``[B, T]`` at ``sample_rate`` → float32 ``[B, T']`` at ``target_rate`` (soxr HQ)."""
    if sample_rate == target_rate:
        return audio
    # soxr treats the columns of a [frames, channels] array as channels: the batch in one call.
    out = soxr.resample(np.ascontiguousarray(audio.T), sample_rate, target_rate)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)


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
