"""Reading source WAVs with the checks that catch bad data before hours are wasted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioFileError(ValueError):
    """A WAV that is missing, unreadable, truncated or in the wrong format; the message names it."""


def expected_frames(sample_rate: int, note_seconds: float) -> int:
    """Frames of a note of ``note_seconds`` at ``sample_rate`` (NSynth: 4 s x 16 kHz = 64,000)."""
    return round(sample_rate * note_seconds)


def check_wav(path: str | Path, sample_rate: int, frames: int) -> sf._SoundFileInfo:
    """Check a WAV's header against the expected format without reading the samples.

    A truncated file is caught because libsndfile reports the frames actually present.

    Raises:
        AudioFileError: naming the file and what differs (missing, unreadable, rate, channels,
            frame count).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: WAV file is missing")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFileError(f"{path}: not a readable WAV ({e})") from e
    if info.samplerate != sample_rate:
        raise AudioFileError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz")
    if info.channels != 1:
        raise AudioFileError(f"{path}: {info.channels} channels, expected mono")
    if info.frames != frames:
        hint = " (truncated?)" if info.frames < frames else ""
        raise AudioFileError(f"{path}: {info.frames} frames, expected {frames}{hint}")
    return info


def read_wav(path: str | Path, sample_rate: int, frames: int) -> np.ndarray:
    """Read a mono WAV as float32 in [-1, 1) after :func:`check_wav`.

    Returns:
        ``[T]`` float32 samples, ``T == frames``.
    """
    check_wav(path, sample_rate, frames)
    try:
        audio, _ = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFileError(f"{path}: could not read samples ({e})") from e
    if audio.shape != (frames,):
        raise AudioFileError(f"{path}: read {audio.shape[0]} frames, expected {frames} (truncated?)")
    if not np.isfinite(audio).all():
        raise AudioFileError(f"{path}: contains NaN or infinite samples")
    return audio
