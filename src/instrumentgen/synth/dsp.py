"""Vectorised DSP building blocks for the procedural instruments.

Everything here works on whole notes at once (numpy broadcasting, ``scipy.signal.lfilter`` for
recursions); nothing loops over samples in Python. Signals are 1-D arrays ``[T]`` at sample rate
``sr``; float32 is used for the bulk oscillator/envelope maths, float64 for phase accumulation.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

LN1000 = float(np.log(1000.0))  # amplitude falls by 60 dB when exp(-LN1000 * t / t60) reaches t = t60
TABLE_SIZE = 4096  # one period of a band-limited wavetable
NYQUIST_FRACTION = 0.45  # partials above NYQUIST_FRACTION * sr are never rendered


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def max_pitch_for_rate(sr: int) -> int:
    """Highest MIDI pitch whose fundamental lies at or below ``NYQUIST_FRACTION * sr``."""
    return int(np.floor(69 + 12 * np.log2(NYQUIST_FRACTION * sr / 440.0)))


def partial_limit(sr: int) -> float:
    """Highest frequency (Hz) a partial may have at sample rate ``sr``."""
    return NYQUIST_FRACTION * sr


def times(n: int, sr: int) -> np.ndarray:
    """Sample times in seconds, ``[T]`` float32."""
    return np.arange(n, dtype=np.float32) / np.float32(sr)


# ----------------------------------------------------------------------------- envelopes


def adsr(t: np.ndarray, attack: float, decay: float, sustain: float, hold: float,
         release: float) -> np.ndarray:
    """Attack/decay/sustain envelope held until ``hold`` s, then an exponential release.

    ``t`` is ``[T]`` seconds; ``attack`` is a linear rise, ``decay`` the time constant of the
    fall to ``sustain`` (0..1), ``release`` the time to fall by 60 dB after ``hold``. Returns ``[T]``.
    """
    attack = max(attack, 1e-4)
    decay = max(decay, 1e-4)

    def sustained(tt: np.ndarray | float) -> np.ndarray:
        rise = np.minimum(np.asarray(tt, dtype=np.float32) / np.float32(attack), 1.0)
        after = np.maximum(np.asarray(tt, dtype=np.float32) - np.float32(attack), 0.0)
        return rise * (sustain + (1.0 - sustain) * np.exp(-after / np.float32(decay)))

    level_at_hold = float(sustained(hold))
    after_hold = np.maximum(t - np.float32(hold), 0.0)
    tail = level_at_hold * np.exp(-LN1000 * after_hold / np.float32(max(release, 1e-3)))
    return np.where(t < hold, sustained(t), tail).astype(np.float32)


def percussive_envelope(t: np.ndarray, attack: float, t60: float) -> np.ndarray:
    """Short linear attack then exponential decay by 60 dB over ``t60`` s; ``[T]`` -> ``[T]``."""
    attack = max(attack, 1e-4)
    rise = np.minimum(t / np.float32(attack), 1.0)
    after = np.maximum(t - np.float32(attack), 0.0)
    return (rise * np.exp(-LN1000 * after / np.float32(t60))).astype(np.float32)


def fade_edges(x: np.ndarray, sr: int, fade_in: float = 0.002, fade_out: float = 0.015) -> np.ndarray:
    """Raised-cosine fades at both ends of ``x`` ``[T]`` so notes never click; returns a copy."""
    y = np.array(x, dtype=np.float32)
    n = len(y)
    n_in = min(max(1, int(fade_in * sr)), n // 4)
    n_out = min(max(1, int(fade_out * sr)), n // 4)
    if n_in > 0:
        y[:n_in] *= (0.5 - 0.5 * np.cos(np.pi * (np.arange(n_in) + 0.5) / n_in)).astype(np.float32)
    if n_out > 0:
        y[n - n_out:] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(n_out) + 0.5) / n_out)).astype(np.float32)
    return y


# ----------------------------------------------------------------------------- oscillators


def harmonic_numbers(f0: float, sr: int, kmax: int = 400) -> np.ndarray:
    """Harmonic numbers ``1..K`` whose frequency ``k*f0`` stays below the partial limit; ``[K]``."""
    k_count = int(min(kmax, np.floor(partial_limit(sr) / f0), TABLE_SIZE // 2 - 1))
    return np.arange(1, max(k_count, 1) + 1, dtype=np.float64)


def schroeder_phases(count: int) -> np.ndarray:
    """Schroeder phases ``pi k (k-1) / K`` for ``k = 1..K``, ``[K]`` radians.

    Partials with these phases sum to a waveform with a low crest factor whatever the spectral
    tilt, so peak normalisation does not make bright notes quieter than dull ones.
    """
    k = np.arange(1, count + 1, dtype=np.float64)
    return np.pi * k * (k - 1) / max(count, 1)


def harmonic_table(amps: np.ndarray, disperse: bool = True) -> np.ndarray:
    """One period of ``sum_k amps[k-1] * sin(2 pi k phase + phi_k)``, ``[TABLE_SIZE + 1]`` float32.

    ``amps`` is ``[K]`` for harmonics ``1..K``; the table is exactly band-limited to ``K`` and
    wrapped (last sample = first). ``phi_k`` are :func:`schroeder_phases` if ``disperse``, else 0.
    """
    amps = np.asarray(amps, dtype=np.float64)[: TABLE_SIZE // 2 - 1]
    phases = schroeder_phases(len(amps)) if disperse else np.zeros(len(amps))
    spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spec[1: len(amps) + 1] = -0.5j * TABLE_SIZE * amps * np.exp(1j * phases)
    table = np.fft.irfft(spec, n=TABLE_SIZE)
    return np.append(table, table[0]).astype(np.float32)


def read_table(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Linear-interpolated wavetable read at phase ``cycles`` (in periods, ``[T]`` float64) -> ``[T]``."""
    size = len(table) - 1
    pos = (cycles - np.floor(cycles)) * size
    idx = np.minimum(pos.astype(np.int64), size - 1)
    frac = (pos - idx).astype(np.float32)
    lo = table[idx]
    return lo + frac * (table[idx + 1] - lo)


def constant_cycles(f0: float, n: int, sr: int, phase: float = 0.0) -> np.ndarray:
    """Phase in periods of a steady oscillator at ``f0`` Hz, ``[T]`` float64."""
    return np.arange(n, dtype=np.float64) * (f0 / sr) + phase


def cycles_from_frequency(freq: np.ndarray, sr: int, phase: float = 0.0) -> np.ndarray:
    """Phase in periods of an oscillator following ``freq`` ``[T]`` Hz (phase accumulator), ``[T]``."""
    return np.cumsum(np.asarray(freq, dtype=np.float64)) / sr + phase


def vibrato_frequency(
    f0: float, t: np.ndarray, rate: float, cents: float, delay: float, phase: float = 0.0,
    jitter: np.ndarray | None = None,
) -> np.ndarray:
    """``f0`` with a sinusoidal vibrato of ``cents`` depth that fades in after ``delay`` s; ``[T]`` Hz.

    ``jitter`` (``[T]`` cents, optional) adds slow random pitch wander. The log-frequency
    modulation has zero mean, so the median pitch stays at ``f0``.
    """
    ramp = np.clip((t - delay) / max(delay, 0.05), 0.0, 1.0)
    dev = cents * ramp * np.sin(2 * np.pi * rate * t + phase)
    if jitter is not None:
        dev = dev + jitter
    return f0 * np.exp2(dev.astype(np.float64) / 1200.0)


def smooth_noise(rng: np.random.Generator, n: int, sr: int, cutoff: float) -> np.ndarray:
    """Unit-RMS-ish low-pass noise with corner ``cutoff`` Hz, ``[T]`` float32 (for jitter/wander)."""
    white = rng.standard_normal(n).astype(np.float32)
    y = onepole_lowpass(white, cutoff, sr)
    return y / np.float32(max(float(np.std(y)), 1e-9))


def partial_bank(
    ratios: np.ndarray, amps: np.ndarray, f0: float, t: np.ndarray, sr: int,
    t60: np.ndarray | None = None, phases: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of (possibly inharmonic) sinusoids at ``ratios * f0`` with per-partial exponential decay.

    ``ratios``, ``amps``, ``t60`` (seconds to -60 dB, optional) and ``phases`` (radians) are
    ``[K]``; ``t`` is ``[T]``. Partials above the partial limit are dropped. Returns ``[T]``.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    keep = ratios * f0 < partial_limit(sr)
    if not keep.any():
        return np.zeros(len(t), dtype=np.float32)
    ratios = ratios[keep]
    amps = np.asarray(amps, dtype=np.float32)[keep]
    cyc = np.outer(ratios * (f0 / sr), np.arange(len(t), dtype=np.float64))  # [K, T]
    if phases is not None:
        cyc += (np.asarray(phases, dtype=np.float64)[keep] / (2 * np.pi))[:, None]
    frac = (cyc - np.floor(cyc)).astype(np.float32)
    waves = np.sin(np.float32(2 * np.pi) * frac)
    if t60 is not None:
        rates = (LN1000 / np.asarray(t60, dtype=np.float64)[keep]).astype(np.float32)
        waves *= np.exp(-np.outer(rates, t))
    return np.einsum("k,kt->t", amps, waves)


# ----------------------------------------------------------------------------- filters


def onepole_lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    """One-pole low-pass with -3 dB corner near ``cutoff`` Hz; ``[T]`` -> ``[T]`` float32."""
    p = float(np.exp(-2 * np.pi * min(cutoff, 0.49 * sr) / sr))
    return signal.lfilter([1.0 - p], [1.0, -p], x).astype(np.float32)


def onepole_highpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    """Complement of :func:`onepole_lowpass`; ``[T]`` -> ``[T]`` float32."""
    return (np.asarray(x, dtype=np.float32) - onepole_lowpass(x, cutoff, sr)).astype(np.float32)


def _rbj(fc: float, q: float, sr: int) -> tuple[float, float, float]:
    w0 = 2 * np.pi * min(fc, 0.49 * sr) / sr
    return w0, float(np.cos(w0)), float(np.sin(w0) / (2 * q))


def biquad_lowpass(fc: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ resonant low-pass ``(b, a)``; resonance peak grows with ``q`` (0.707 = Butterworth)."""
    _, c, alpha = _rbj(fc, q, sr)
    b = np.array([(1 - c) / 2, 1 - c, (1 - c) / 2])
    a = np.array([1 + alpha, -2 * c, 1 - alpha])
    return b / a[0], a / a[0]


def biquad_bandpass(fc: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ band-pass with 0 dB peak gain at ``fc`` ``(b, a)`` (a formant / resonance)."""
    _, c, alpha = _rbj(fc, q, sr)
    b = np.array([alpha, 0.0, -alpha])
    a = np.array([1 + alpha, -2 * c, 1 - alpha])
    return b / a[0], a / a[0]


def biquad_peaking(fc: float, q: float, gain_db: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ peaking equaliser ``(b, a)``: +``gain_db`` around ``fc``, unity elsewhere (body modes)."""
    _, c, alpha = _rbj(fc, q, sr)
    amp = 10 ** (gain_db / 40)
    b = np.array([1 + alpha * amp, -2 * c, 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * c, 1 - alpha / amp])
    return b / a[0], a / a[0]


def filter_magnitude(b: np.ndarray, a: np.ndarray, freqs: np.ndarray, sr: int) -> np.ndarray:
    """``|H(e^{jw})|`` of the filter ``(b, a)`` at ``freqs`` Hz ``[K]`` -> ``[K]``.

    Used to pass a harmonic source through a filter in the harmonic domain (the response at each
    partial multiplies its amplitude), which is exact for a steady tone and costs nothing per sample.
    """
    z = np.exp(-1j * 2 * np.pi * np.asarray(freqs, dtype=np.float64) / sr)
    num = b[0] + b[1] * z + b[2] * z * z
    den = a[0] + a[1] * z + a[2] * z * z
    return np.abs(num / den)


def apply_biquad(x: np.ndarray, ba: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Filter ``x`` ``[T]`` with a ``(b, a)`` biquad; returns float32 ``[T]``."""
    return signal.lfilter(ba[0], ba[1], x).astype(np.float32)


def comb(x: np.ndarray, delay: int, gain: float = 1.0) -> np.ndarray:
    """Feed-forward comb ``x[n] - gain * x[n - delay]`` (pluck / pickup position); ``[T]`` -> ``[T]``."""
    y = np.array(x, dtype=np.float32)
    if 0 < delay < len(y):
        y[delay:] -= np.float32(gain) * np.asarray(x[:-delay], dtype=np.float32)
    return y


def noise_burst(rng: np.random.Generator, n: int, sr: int, duration: float, cutoff: float) -> np.ndarray:
    """Low-passed white noise decaying over ``duration`` s (hammer, mallet, key click), ``[T]``."""
    m = min(n, max(2, int(duration * sr * 3)))
    burst = rng.uniform(-1.0, 1.0, m).astype(np.float32)
    burst *= np.exp(-np.arange(m, dtype=np.float32) / np.float32(max(duration * sr, 1.0)))
    out = np.zeros(n, dtype=np.float32)
    out[:m] = onepole_lowpass(burst, cutoff, sr)
    return out


# ----------------------------------------------------------------------------- physical models


def karplus_strong(excitation: np.ndarray, f0: float, sr: int, t60: float, smoothing: float) -> np.ndarray:
    """Plucked string: ``excitation`` ``[T]`` through a tuned Karplus-Strong loop, ``[T]`` float32.

    Loop: integer delay ``N``, two-point low-pass ``(1-s) + s z^-1`` (``s = smoothing`` in
    ``(0, 0.5]``, higher = darker) and a first-order allpass ``(a + z^-1)/(1 + a z^-1)`` whose
    phase delay at ``f0`` makes the total loop delay exactly ``sr/f0`` samples, so the string
    is in tune. The loop gain makes the fundamental decay by 60 dB in ``t60`` s. The whole
    recursion is one rational transfer function run by ``scipy.signal.lfilter``.
    """
    s = float(np.clip(smoothing, 0.01, 0.5))
    w = 2 * np.pi * f0 / sr
    h_lp = (1 - s) + s * np.exp(-1j * w)
    lp_delay = -float(np.angle(h_lp)) / w
    period = sr / f0
    n_int = max(1, int(np.floor(period - lp_delay - 0.1)))
    frac = period - lp_delay - n_int  # allpass phase delay, in [0.1, 1.1)
    a = float(np.sin(w * (1 - frac) / 2) / np.sin(w * (1 + frac) / 2))
    g = min(10 ** (-3 / (f0 * t60)) / abs(h_lp), 0.99995)
    # (1 + a z^-1) Y - g z^-N ((1-s) + s z^-1)(a + z^-1) Y = (1 + a z^-1) X
    den = np.zeros(n_int + 3)
    den[0] = 1.0
    den[1] += a
    den[n_int] -= g * (1 - s) * a
    den[n_int + 1] -= g * ((1 - s) + s * a)
    den[n_int + 2] -= g * s
    return signal.lfilter([1.0, a], den, excitation).astype(np.float32)


# ----------------------------------------------------------------------------- effects


def reverb_impulse_response(rng: np.random.Generator, sr: int, rt60: float, damping: float) -> np.ndarray:
    """Exponentially decaying noise (a diffuse room), unit energy, ``[L]`` float32.

    ``damping`` (Hz) low-passes the tail, as air and walls absorb highs.
    """
    length = max(16, int(min(rt60, 2.5) * sr))
    t = np.arange(length, dtype=np.float32) / np.float32(sr)
    ir = rng.standard_normal(length).astype(np.float32) * np.exp(-LN1000 * t / np.float32(rt60))
    ir = onepole_lowpass(ir, damping, sr)
    return ir / np.float32(np.sqrt(float(np.sum(ir.astype(np.float64) ** 2))) + 1e-12)


def convolve_reverb(x: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
    """Mix ``x`` ``[T]`` with its convolution by ``ir`` ``[L]`` (truncated to ``[T]``)."""
    tail = signal.fftconvolve(x, ir)[: len(x)].astype(np.float32)
    dry_rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12
    wet_rms = float(np.sqrt(np.mean(np.square(tail, dtype=np.float64)))) + 1e-12
    return ((1 - wet) * x + wet * tail * np.float32(dry_rms / wet_rms)).astype(np.float32)


def tremolo(x: np.ndarray, t: np.ndarray, rate: float, depth: float) -> np.ndarray:
    """Amplitude LFO (raised cosine, ``depth`` 0..1 at ``rate`` Hz); ``[T]`` -> ``[T]``."""
    lfo = 1.0 - depth * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t))
    return (x * lfo).astype(np.float32)


def soft_clip(x: np.ndarray, drive: float) -> np.ndarray:
    """``tanh`` waveshaper on the peak-normalised signal; ``drive`` > 1 adds odd harmonics."""
    peak = float(np.max(np.abs(x))) + 1e-12
    return (np.tanh(np.float32(drive / peak) * x) / np.float32(np.tanh(drive))).astype(np.float32)
