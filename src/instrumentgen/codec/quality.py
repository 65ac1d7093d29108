"""Reconstruction quality of a codec on notes of known pitch: pitch kept (pYIN) and mel distance.

Pitch: the median f0 of a note's voiced, audible frames (``librosa.pyin`` searching one octave
either side of the expected pitch, capped below Nyquist; frames more than ``GATE_DB`` below the
note's loudest frame are ignored, so that pYIN's voicing of a near-silent tail cannot outvote the
note) is compared with its MIDI pitch; a note counts as kept if it is within ``±tolerance_cents``.
The same check on the original audio is the tracker's own ceiling. pYIN is reliable for MIDI
36..96 at 24 kHz; evaluate notes in that range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import librosa
import numpy as np

PITCH_RANGE = (36, 96)  # MIDI notes the tracker is trusted on
TOLERANCE_CENTS = 50.0
GATE_DB = 40.0  # frames this far below the loudest frame of the note do not count
MEL_FFT_SIZES = (512, 1024, 2048)
MEL_BANDS = {512: 40, 1024: 80, 2048: 128}
MEL_LOG_FLOOR = 1e-5


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of MIDI ``pitch`` (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _frame_length(sr: int, fmin: float) -> int:
    """Smallest power of two holding at least two periods of ``fmin`` (pYIN needs > one), ≥ 1024."""
    return max(1024, 2 ** math.ceil(math.log2(2.2 * sr / fmin)))


def median_f0(audio: np.ndarray, sr: int, midi_pitch: int, gate_db: float = GATE_DB) -> float:
    """Median f0 (Hz) of the voiced pYIN frames of ``audio [T]`` whose RMS is within ``gate_db`` dB
    of the loudest frame; NaN if there is none.

    The search range is one octave either side of ``midi_pitch``, capped at 0.45 · ``sr``.
    """
    expected = midi_to_hz(midi_pitch)
    fmax = min(2.0 * expected, 0.45 * sr)
    fmin = min(expected / 2.0, fmax / 2.0)
    frame_length = _frame_length(sr, fmin)
    y = np.asarray(audio, dtype=np.float32)
    if len(y) < frame_length:
        y = np.pad(y, (0, frame_length - len(y)))
    hop = frame_length // 4
    f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length, hop_length=hop)
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop, center=True)[0][:len(f0)]
    audible = rms >= rms.max() * 10.0 ** (-gate_db / 20.0) if rms.max() > 0 else np.zeros_like(voiced)
    f0 = f0[voiced & audible & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else math.nan


def cents_error(f0: np.ndarray, midi_pitches: np.ndarray) -> np.ndarray:
    """``1200 · log2(f0 / f_midi)`` rounded to 1e-6 cents; NaN where ``f0`` is NaN (unvoiced).

    pYIN's f0 grid is in 10-cent steps from ``fmin``, so errors of exactly ±50 cents are common: the
    rounding removes floating-point noise that would otherwise decide on which side of the
    tolerance they fall.
    """
    expected = 440.0 * 2.0 ** ((np.asarray(midi_pitches, dtype=np.float64) - 69) / 12)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.round(1200.0 * np.log2(np.asarray(f0, dtype=np.float64) / expected), 6)


def _summary(cents: np.ndarray, tolerance: float) -> dict[str, float | int]:
    """Counts and share of notes within ``tolerance`` cents (unvoiced notes count as misses)."""
    voiced = np.isfinite(cents)
    within = voiced & (np.abs(np.where(voiced, cents, np.inf)) <= tolerance)
    n = len(cents)
    return {
        "n_notes": n, "n_within": int(within.sum()), "share_within": float(within.mean()) if n else math.nan,
        "n_unvoiced": int((~voiced).sum()),
        "median_abs_cents": float(np.median(np.abs(cents[voiced]))) if voiced.any() else math.nan,
    }


def pitch_errors(audio: np.ndarray, sr: int, midi_pitches: Sequence[int] | np.ndarray) -> np.ndarray:
    """Cents error of the median f0 of each note of ``audio [N, T]`` (NaN: no voiced frame) ``[N]``."""
    audio = np.asarray(audio)
    pitches = np.asarray(midi_pitches)
    if audio.ndim != 2 or len(audio) != len(pitches):
        raise ValueError(f"expected audio [N, T] and N pitches, got {audio.shape} and {pitches.shape}")
    f0 = np.array([median_f0(a, sr, int(p)) for a, p in zip(audio, pitches, strict=True)])
    return cents_error(f0, pitches)


def pitch_accuracy(original: np.ndarray, reconstructed: np.ndarray, sr: int,
                   midi_pitches: Sequence[int] | np.ndarray, *,
                   tolerance_cents: float = TOLERANCE_CENTS) -> dict[str, object]:
    """Share of notes whose median f0 is within ``±tolerance_cents`` of their MIDI pitch.

    ``original`` and ``reconstructed`` are ``[N, T]`` at ``sr`` Hz (same shape: crop the
    reconstruction first). Returns ``{"reconstruction": {...}, "original": {...}, ...}``, each
    with ``n_notes``, ``n_within``, ``share_within``, ``n_unvoiced``, ``median_abs_cents``, and
    ``per_note_cents`` (lists, NaN → None) for both.
    """
    original, reconstructed = np.asarray(original), np.asarray(reconstructed)
    if original.shape != reconstructed.shape:
        raise ValueError(f"original {original.shape} and reconstruction {reconstructed.shape} "
                         f"differ in shape")
    rec = pitch_errors(reconstructed, sr, midi_pitches)
    orig = pitch_errors(original, sr, midi_pitches)
    return {
        "tolerance_cents": tolerance_cents,
        "reconstruction": _summary(rec, tolerance_cents),
        "original": _summary(orig, tolerance_cents),
        "per_note_cents": {"reconstruction": _as_list(rec), "original": _as_list(orig)},
    }


def _as_list(x: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 2) for v in x]


def log_mel(audio: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """``log10(max(mel power, 1e-5))`` of ``audio [N, T]``: ``[N, n_mels, frames]`` (hop ``n_fft // 4``)."""
    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sr, n_fft=n_fft,
                                         hop_length=n_fft // 4, n_mels=MEL_BANDS.get(n_fft, 80), power=2.0)
    return np.log10(np.maximum(mel, MEL_LOG_FLOOR))


def mel_distance(original: np.ndarray, reconstructed: np.ndarray, sr: int,
                 fft_sizes: Sequence[int] = MEL_FFT_SIZES) -> dict[str, float]:
    """Multi-scale mel distance: mean |Δ log10 mel| per FFT size, and their mean (``"mean"``).

    ``original`` and ``reconstructed`` are ``[N, T]`` of the same shape.
    """
    original, reconstructed = np.asarray(original), np.asarray(reconstructed)
    if original.shape != reconstructed.shape:
        raise ValueError(f"original {original.shape} and reconstruction {reconstructed.shape} "
                         f"differ in shape")
    per = {str(n): float(np.mean(np.abs(log_mel(original, sr, n) - log_mel(reconstructed, sr, n))))
           for n in fft_sizes}
    return {"mean": float(np.mean(list(per.values()))), **{f"n_fft_{k}": v for k, v in per.items()}}
