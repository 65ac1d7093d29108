"""Batches of mono notes in memory, as the embedders (CLAP, VGGish) take them: validation and resampling.

A batch is float audio ``[B, T]`` in [-1, 1] at one sample rate. Reading WAVs from disk is
:mod:`instrumentgen.data.audio_io`'s; resampling a whole split to the codec rate is
:mod:`instrumentgen.data.resample`'s.
"""

from __future__ import annotations

import numpy as np
import soxr

from instrumentgen.checks import positive_int


def check_mono_batch(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate mono audio ``[B, T]`` (or one note ``[T]``) and return it as float32 ``[B, T]``.

    Raises :class:`ValueError` naming the offending row for NaN/inf samples, and for an empty
    batch, an empty note, non-float samples or a non-positive sample rate.
    """
    positive_int("sample rate", sample_rate)
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


def resample_batch(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """float32 ``[B, T]`` at ``sample_rate`` → float32 ``[B, T']`` at ``target_rate`` (soxr HQ)."""
    if sample_rate == target_rate:
        return audio
    # soxr treats the columns of a [frames, channels] array as channels: the batch in one call.
    out = soxr.resample(np.ascontiguousarray(audio.T), sample_rate, target_rate)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)
