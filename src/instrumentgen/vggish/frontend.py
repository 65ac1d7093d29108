"""VGGish's input: log-mel examples of 16 kHz audio, as published with the model.

The recipe of the AudioSet release (``vggish_params`` / ``mel_features``): 25 ms periodic-Hann
windows every 10 ms, a 512-point FFT magnitude, 64 HTK-mel bands from 125 to 7500 Hz (DC bin
dropped), ``log(mel + 0.01)``, and non-overlapping examples of 96 frames (0.96 s). A 4 s note gives
T = 4 examples, the frame count of the paper's FAD-VGGish. Implemented here in float64 NumPy (the
published code is NumPy too); resampling to 16 kHz uses soxr (the release uses resampy, which we do
not depend on: the two differ far below what FAD resolves).
"""

from __future__ import annotations

import numpy as np

from instrumentgen.audio import check_mono_batch, resample_batch

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512  # next power of two of WINDOW
MEL_BANDS = 64
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s, also the hop between examples


def hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """Triangular mel weights ``[FFT // 2 + 1, MEL_BANDS]`` (the DC bin has no weight)."""
    bins = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FFT // 2 + 1))[:, None]
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), MEL_BANDS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights


_MEL = mel_matrix()
_HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann


def log_mel(wave: np.ndarray) -> np.ndarray:
    """One 16 kHz note ``[T]`` → log-mel frames ``[n_frames, MEL_BANDS]`` (float64); incomplete
    windows at the end are dropped, as published."""
    wave = np.asarray(wave, dtype=np.float64)
    if len(wave) < WINDOW:
        return np.zeros((0, MEL_BANDS))
    frames = np.lib.stride_tricks.sliding_window_view(wave, WINDOW)[::HOP]
    spectrum = np.abs(np.fft.rfft(frames * _HANN, FFT))
    return np.log(spectrum @ _MEL + LOG_OFFSET)


def examples_per_note(n_samples: int) -> int:
    """How many 0.96 s examples a 16 kHz note of ``n_samples`` gives (4 s -> 4, under 0.975 s -> 0)."""
    frames = 0 if n_samples < WINDOW else 1 + (n_samples - WINDOW) // HOP
    return 0 if frames < EXAMPLE_FRAMES else 1 + (frames - EXAMPLE_FRAMES) // EXAMPLE_FRAMES


def examples(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono notes ``[B, T]`` at ``sample_rate`` → VGGish examples ``[B, E, 96, 64]`` (float32).

    Every note of a batch gives the same E (a batch has one length); a note shorter than one
    example (0.975 s) is an error rather than an empty embedding."""
    audio = check_mono_batch(audio, sample_rate)
    audio16 = resample_batch(audio, sample_rate, SAMPLE_RATE)
    count = examples_per_note(audio16.shape[1])
    if count == 0:
        raise ValueError(
            f"VGGish needs notes of at least 0.975 s (one 0.96 s example); these are "
            f"{audio.shape[1] / sample_rate:.3f} s at {sample_rate} Hz"
        )
    out = np.empty((audio.shape[0], count, EXAMPLE_FRAMES, MEL_BANDS), dtype=np.float32)
    for i, wave in enumerate(audio16):
        frames = log_mel(wave)[: count * EXAMPLE_FRAMES]
        out[i] = frames.reshape(count, EXAMPLE_FRAMES, MEL_BANDS)
    return out
