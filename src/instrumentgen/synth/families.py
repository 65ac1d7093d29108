"""One render function per NSynth family, and the registry ``FAMILY_RENDERERS``.

Each renderer takes a :class:`NoteContext` (pitch, velocity, timing, note RNG) and the
instrument's family parameters (see :mod:`instrumentgen.synth.instrument`) and returns the raw
note ``[T]`` float32, before effects and level normalisation. In all of them the velocity and
the instrument's brightness set the spectral tilt (louder = brighter); the source changes
character (acoustic: noise, jitter, inharmonicity; electronic: cleaner, pickup-like filtering;
synthetic: raw oscillator shapes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from instrumentgen.synth import dsp

REFERENCE_HZ = 261.63  # C4: per-instrument decay times are stated for this pitch


@dataclass(frozen=True)
class NoteContext:
    """Everything a family renderer needs about one note.

    ``vel`` is ``velocity / 127``; ``hold`` the key-up time in seconds (0.75 of the note);
    ``t`` the sample times ``[T]``; ``multiphonic`` an optional (ratio, level) extra tone.
    """

    f0: float
    vel: float
    brightness: float
    source: str
    sr: int
    n: int
    hold: float
    t: np.ndarray
    rng: np.random.Generator
    multiphonic: tuple[float, float] | None = None

    @property
    def nyquist_limit(self) -> float:
        return dsp.partial_limit(self.sr)


Params = dict[str, Any]
Renderer = Callable[[NoteContext, Params], np.ndarray]


# ----------------------------------------------------------------------------- shared helpers


def _held_env(ctx: NoteContext, p: Params) -> np.ndarray:
    """ADSR held until key-up (``ctx.hold``) then released; ``[T]``."""
    return dsp.adsr(ctx.t, p["attack"], p["decay"], p["sustain"], ctx.hold, p["release"])


def _jitter(ctx: NoteContext, p: Params) -> np.ndarray | None:
    """Slow random pitch wander in cents ``[T]`` (acoustic sources), or ``None``."""
    cents = p.get("jitter_cents", 0.0)
    if cents <= 0:
        return None
    return dsp.smooth_noise(ctx.rng, ctx.n, ctx.sr, 6.0) * np.float32(cents)


def _vibrato_cycles(ctx: NoteContext, p: Params, extra_cents: np.ndarray | None = None) -> np.ndarray:
    """Phase ``[T]`` (periods) of the note's fundamental with vibrato, jitter and ``extra_cents``."""
    jitter = _jitter(ctx, p)
    if extra_cents is not None:
        jitter = extra_cents if jitter is None else jitter + extra_cents
    freq = dsp.vibrato_frequency(ctx.f0, ctx.t, p["vib_rate"], p["vib_cents"], p["vib_delay"],
                                 float(ctx.rng.uniform(0, 2 * np.pi)), jitter)
    return dsp.cycles_from_frequency(freq, ctx.sr, float(ctx.rng.random()))


def _with_multiphonic(ctx: NoteContext, osc: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Add the instrument's inharmonic upper tone (if any) at ``ratio`` times the fundamental."""
    if ctx.multiphonic is None:
        return osc
    ratio, level = ctx.multiphonic
    if ratio * ctx.f0 >= ctx.nyquist_limit:
        return osc
    c = cycles * ratio
    tone = np.sin(np.float32(2 * np.pi) * (c - np.floor(c)).astype(np.float32))
    return osc + np.float32(level * float(np.max(np.abs(osc)))) * tone


def _tilt(ctx: NoteContext, base: float, dark: float, soft: float) -> float:
    """Spectral roll-off exponent: ``base`` plus ``dark`` for a dark instrument, ``soft`` for a soft note."""
    return base + dark * (1.0 - ctx.brightness) + soft * (1.0 - ctx.vel)


def _noise(ctx: NoteContext) -> np.ndarray:
    return ctx.rng.standard_normal(ctx.n).astype(np.float32)


def _bandpass_noise(ctx: NoteContext, fc: float, q: float) -> np.ndarray:
    fc = min(fc, 0.4 * ctx.sr)
    return dsp.apply_biquad(_noise(ctx), dsp.biquad_bandpass(fc, q, ctx.sr))


def _body_filter(x: np.ndarray, modes: list[list[float]], q: float, sr: int) -> np.ndarray:
    """Cascade of peaking resonances (instrument body); ``modes = [[fc...], [gain_db...]]``."""
    sos = np.array([np.concatenate(dsp.biquad_peaking(fc, q, g, sr))
                    for fc, g in zip(*modes, strict=True) if fc < 0.45 * sr])
    if len(sos) == 0:
        return x
    return signal.sosfilt(sos, x).astype(np.float32)


def _percussive_t60(ctx: NoteContext, t60: float, exponent: float = 0.5) -> float:
    """Decay time at this pitch from the instrument's reference ``t60`` (high notes die faster)."""
    return float(np.clip(t60 * (REFERENCE_HZ / ctx.f0) ** exponent, 0.08, 20.0))


def _saw_square(k: np.ndarray, square_mix: float) -> np.ndarray:
    """Harmonic amplitudes ``[K]`` of a sawtooth/square blend."""
    square = np.where(k % 2 == 1, 1.0 / k, 0.0)
    return (1 - square_mix) / k + square_mix * square


# ----------------------------------------------------------------------------- families


def render_bass(ctx: NoteContext, p: Params) -> np.ndarray:
    """Low saw/square through a resonant low-pass whose cutoff plucks down from a velocity-set peak."""
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    cycles = dsp.constant_cycles(ctx.f0, ctx.n, ctx.sr, float(ctx.rng.random()))
    amps = _saw_square(k, p["square_mix"]) * k ** -(0.8 * (1 - ctx.vel))  # soft notes: duller oscillator
    osc = _with_multiphonic(ctx, dsp.read_table(dsp.harmonic_table(amps), cycles), cycles)
    top = 0.42 * ctx.sr
    fc_lo = float(np.clip(ctx.f0 * p["cut_lo"] * (0.6 + 0.8 * ctx.brightness) * (0.6 + 0.8 * ctx.vel),
                          1.2 * ctx.f0, top))
    fc_hi = float(np.clip(ctx.f0 * p["cut_hi"] * (0.25 + 0.75 * ctx.vel) * (0.5 + ctx.brightness),
                          fc_lo, top))
    bright = dsp.apply_biquad(osc, dsp.biquad_lowpass(fc_hi, p["q"], ctx.sr))
    dark = dsp.apply_biquad(osc, dsp.biquad_lowpass(fc_lo, max(0.707, 0.6 * p["q"]), ctx.sr))
    sweep = np.exp(-ctx.t / np.float32(p["filter_tau"]))  # filter envelope: the pluck
    x = dark + sweep * (bright - dark)
    if p["finger_noise"] > 0:
        x += dsp.noise_burst(ctx.rng, ctx.n, ctx.sr, 0.006, 1500 + 3000 * ctx.vel) * np.float32(
            p["finger_noise"] * ctx.vel * 3)
    return x * _held_env(ctx, p)


def _breath(ctx: NoteContext, p: Params, env: np.ndarray, cutoff_hz: float) -> np.ndarray | float:
    """High-passed breath noise ``[T]`` following ``env``, louder at higher velocity (0 if none)."""
    if p["breath"] <= 0:
        return 0.0
    level = np.float32(p["breath"] * (0.5 + 0.5 * ctx.vel))
    return dsp.onepole_highpass(_noise(ctx), cutoff_hz, ctx.sr) * env * level


def render_brass(ctx: NoteContext, p: Params) -> np.ndarray:
    """Additive harmonics whose brightness swells with the amplitude envelope (two-table morph)."""
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    roll_bright = _tilt(ctx, p["roll_bright"], 1.0, 1.4)
    roll_dark = max(p["roll_dark"] + 0.8 * (1 - ctx.brightness), roll_bright + 0.8)
    scoop = np.float32(-p["scoop_cents"]) * np.exp(-ctx.t / np.float32(0.04))  # lip scoop into the note
    cycles = _vibrato_cycles(ctx, p, scoop)
    dark = dsp.read_table(dsp.harmonic_table(k ** -roll_dark), cycles)
    bright = dsp.read_table(dsp.harmonic_table(k ** -roll_bright), cycles)
    env = _held_env(ctx, p)
    morph = env ** np.float32(p["swell_gamma"]) * np.float32(0.35 + 0.65 * ctx.vel)
    osc = _with_multiphonic(ctx, dark + morph * (bright - dark), cycles)
    return osc * env + _breath(ctx, p, env, cutoff_hz=1500)


def render_flute(ctx: NoteContext, p: Params) -> np.ndarray:
    """A few harmonics, breath noise (with a chiff at the onset) and delayed vibrato."""
    levels = np.array([1.0, *p["harmonics"]])
    k = np.arange(1, len(levels) + 1, dtype=np.float64)
    amps = levels * np.exp(-(k - 1) * (0.9 * (1 - ctx.vel) + 0.6 * (1 - ctx.brightness)))
    amps[k * ctx.f0 >= ctx.nyquist_limit] = 0.0
    cycles = _vibrato_cycles(ctx, p)
    osc = _with_multiphonic(ctx, dsp.read_table(dsp.harmonic_table(amps), cycles), cycles)
    env = _held_env(ctx, p)
    x = osc * env
    if p["breath"] > 0:
        chiff = np.float32(1.5) * np.exp(-ctx.t / np.float32(0.03))
        x += _bandpass_noise(ctx, p["breath_fc"], 0.8) * (env + chiff) * np.float32(
            p["breath"] * (0.5 + 0.5 * ctx.vel) * 3)
    return x


def render_guitar(ctx: NoteContext, p: Params) -> np.ndarray:
    """Karplus-Strong plucked string (allpass-tuned loop); harder plucks excite more highs.

    The loop starts from the slope of the string's triangular pluck shape (plus noise for real
    strings, a square burst for the synthetic source), low-passed more for soft plucks.
    """
    period = max(2, int(round(ctx.sr / ctx.f0)))
    u = (np.arange(period) + 0.5) / period
    if ctx.source == "synthetic":
        burst = np.sign(np.sin(2 * np.pi * u))
    else:
        pos = p["pluck_pos"]
        burst = np.where(u < pos, 1 - pos, -pos)  # slope of the triangular pluck shape: bridge force
        burst = burst + p["pluck_noise"] * ctx.rng.uniform(-1.0, 1.0, period)
    excitation = np.zeros(ctx.n, dtype=np.float32)
    excitation[: min(period, ctx.n)] = (burst - burst.mean())[: ctx.n]
    cutoff = ctx.f0 * (0.7 + 14 * ctx.vel**2 * (0.4 + ctx.brightness))
    excitation = dsp.onepole_lowpass(dsp.onepole_lowpass(excitation, cutoff, ctx.sr), cutoff, ctx.sr)
    smoothing = 0.04 + 0.25 * (1 - ctx.brightness) + p["smoothing"]
    x = dsp.karplus_strong(excitation, ctx.f0, ctx.sr, _percussive_t60(ctx, p["t60"]), smoothing)
    x = dsp.onepole_highpass(x, 20.0, ctx.sr)  # the loop passes DC; remove it
    if ctx.source == "acoustic":
        x = _body_filter(x, p["body_modes"], 1.5, ctx.sr)
    elif ctx.source == "electronic":
        x = dsp.comb(x, int(round(p["pickup_pos"] * ctx.sr / ctx.f0)), 0.7)
        x = dsp.onepole_lowpass(x, p["pickup_fc"], ctx.sr)
    return x


def render_keyboard(ctx: NoteContext, p: Params) -> np.ndarray:
    """Piano-like: stretched partials with per-partial exponential decay plus a hammer transient."""
    t60 = _percussive_t60(ctx, p["t60"], 0.6)
    if ctx.source == "acoustic":
        k = np.arange(1, 31, dtype=np.float64)
        shape = 0.6 + 0.4 * np.abs(np.sin(np.pi * k * p["strike_pos"]))
    elif ctx.source == "electronic":
        k = np.arange(1, 9, dtype=np.float64)
        shape = np.ones_like(k)
    else:
        k = np.arange(1, 25, dtype=np.float64)
        shape = np.where(k % 2 == 1, p["odd_boost"], 1.0)
    b = p["inharmonicity"]
    ratios = k * np.sqrt(1 + b * k**2) / np.sqrt(1 + b)  # stretched, fundamental exactly at f0
    amps = shape * k ** -_tilt(ctx, 0.6 if ctx.source != "electronic" else 1.4, 1.0, 1.4)
    t60s = t60 / (1 + p["partial_decay"] * (k - 1))
    if ctx.source == "electronic":  # the tine: a bright inharmonic partial that dies fast
        ratios = np.append(ratios, p["tine_ratio"])
        amps = np.append(amps, p["tine_level"] * ctx.vel**1.5)
        t60s = np.append(t60s, min(0.4, t60 / 4))
    x = dsp.partial_bank(ratios, amps, ctx.f0, ctx.t, ctx.sr, t60s, dsp.schroeder_phases(len(ratios)))
    if p["hammer"] > 0:
        cutoff = min(800 + 6000 * ctx.vel, ctx.nyquist_limit)
        x += dsp.noise_burst(ctx.rng, ctx.n, ctx.sr, 0.004 + 0.006 * (1 - ctx.vel), cutoff) * np.float32(
            p["hammer"] * ctx.vel * 4)
    return x


def render_mallet(ctx: NoteContext, p: Params) -> np.ndarray:
    """Struck bar: decaying inharmonic partials (ratios ~1, 2.76, 5.40, 8.93) and a strike noise."""
    ratios = np.array(p["ratios"])
    amps = np.array(p["levels"]) * ratios ** -_tilt(ctx, 0.3, 1.0, 1.3)
    t60 = _percussive_t60(ctx, p["t60"])
    x = dsp.partial_bank(ratios, amps, ctx.f0, ctx.t, ctx.sr, t60 / ratios ** p["partial_decay"])
    cutoff = min(600 + 7000 * ctx.vel * (0.5 + ctx.brightness), ctx.nyquist_limit)
    strike = np.float32((p["hardness"] + 0.03) * ctx.vel * 4)
    x += dsp.noise_burst(ctx.rng, ctx.n, ctx.sr, 0.003, cutoff) * strike
    if ctx.source == "electronic":
        x = dsp.onepole_lowpass(x, p["pickup_fc"], ctx.sr)
    return x


_DRAWBAR_HARMONICS = np.array([1, 2, 3, 4, 5, 6, 8])


def render_organ(ctx: NoteContext, p: Params) -> np.ndarray:
    """Sustained drawbar harmonics (8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1').

    Pipe organs (acoustic) add a celeste rank, wind noise and an onset chiff.
    """
    amps = np.zeros(int(_DRAWBAR_HARMONICS[-1]))
    level = np.array(p["drawbars"]) * _DRAWBAR_HARMONICS.astype(float) ** -_tilt(ctx, 0.0, 0.6, 0.6)
    amps[_DRAWBAR_HARMONICS - 1] = level
    amps[np.arange(1, len(amps) + 1) * ctx.f0 >= ctx.nyquist_limit] = 0.0
    table = dsp.harmonic_table(amps)
    cents = p["celeste_cents"]
    phase = float(ctx.rng.random())
    if cents > 0:  # two ranks tuned symmetrically around the pitch, speaking together (in phase)
        c_up = dsp.constant_cycles(ctx.f0 * 2 ** (cents / 2400), ctx.n, ctx.sr, phase)
        c_dn = dsp.constant_cycles(ctx.f0 * 2 ** (-cents / 2400), ctx.n, ctx.sr, phase)
        osc = 0.5 * (dsp.read_table(table, c_up) + dsp.read_table(table, c_dn))
        cycles = 0.5 * (c_up + c_dn)
    else:
        cycles = dsp.constant_cycles(ctx.f0, ctx.n, ctx.sr, phase)
        osc = dsp.read_table(table, cycles)
    env = _held_env(ctx, p)
    x = _with_multiphonic(ctx, osc, cycles) * env
    if p["wind"] > 0:
        chiff = np.exp(-ctx.t / np.float32(0.04)) * np.float32(0.08 * ctx.vel)
        x += _bandpass_noise(ctx, 3 * ctx.f0, 2.0) * (np.float32(p["wind"]) * env + chiff) * np.float32(3)
    return x


def render_reed(ctx: NoteContext, p: Params) -> np.ndarray:
    """Clarinet-like: mostly odd harmonics, breath and a little vibrato (acoustic)."""
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    amps = np.where(k % 2 == 1, 1.0, p["even"]) * k ** -_tilt(ctx, p["roll"], 1.0, 1.3)
    cycles = _vibrato_cycles(ctx, p)
    osc = _with_multiphonic(ctx, dsp.read_table(dsp.harmonic_table(amps), cycles), cycles)
    if p["lowpass"] > 0:
        osc = dsp.onepole_lowpass(osc, p["lowpass"], ctx.sr)
    env = _held_env(ctx, p)
    return osc * env + _breath(ctx, p, env, cutoff_hz=1000)


def render_string(ctx: NoteContext, p: Params) -> np.ndarray:
    """Bowed string: sawtooth with delayed vibrato and slow attack through body resonances."""
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    table = dsp.harmonic_table(k ** -_tilt(ctx, 0.9, 0.8, 1.2))
    cycles = _vibrato_cycles(ctx, p)
    cents = p["chorus_cents"]
    if cents > 0:  # string machine: two detuned copies
        up, dn = cycles * 2 ** (cents / 2400), cycles * 2 ** (-cents / 2400)
        osc = 0.5 * (dsp.read_table(table, up) + dsp.read_table(table, dn + 0.1))
    else:
        osc = dsp.read_table(table, cycles)
    osc = _with_multiphonic(ctx, osc, cycles)
    if p["body_modes"] is not None:
        osc = _body_filter(osc, p["body_modes"], 2.0, ctx.sr)
    env = _held_env(ctx, p)
    x = osc * env
    if p["bow_noise"] > 0:
        x += _bandpass_noise(ctx, 2500, 1.0) * env * np.float32(p["bow_noise"] * (0.5 + 0.5 * ctx.vel) * 3)
    return x


def render_synth_lead(ctx: NoteContext, p: Params) -> np.ndarray:
    """One to three detuned band-limited saw/square oscillators through a resonant low-pass."""
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    table = dsp.harmonic_table(_saw_square(k, p["square_mix"]) * k ** -(0.8 * (1 - ctx.vel)))
    d = p["detune_cents"]
    offsets = {1: [0.0], 2: [-d / 2, d / 2], 3: [-d, 0.0, d]}[p["voices"]]
    phase = float(ctx.rng.random())  # voices start nearly together so the fundamental never cancels
    voices = [dsp.constant_cycles(ctx.f0 * 2 ** (c / 1200), ctx.n, ctx.sr, phase + 0.1 * i)
              for i, c in enumerate(offsets)]
    osc = sum(dsp.read_table(table, c) for c in voices) / np.float32(len(voices))
    osc = _with_multiphonic(ctx, osc, voices[len(voices) // 2])
    fc = float(np.clip(ctx.f0 * p["cutoff"] * (0.3 + 0.7 * ctx.vel) * (0.5 + ctx.brightness),
                       1.5 * ctx.f0, 0.42 * ctx.sr))
    x = dsp.apply_biquad(osc, dsp.biquad_lowpass(fc, p["q"], ctx.sr))
    return x * _held_env(ctx, p)


# Formant centre frequencies (Hz) and bandwidths (Hz) per vowel; levels in dB per formant.
_FORMANTS = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 120, 150)),
    "e": ((530, 1840, 2480, 3500), (70, 100, 120, 150)),
    "i": ((270, 2290, 3010, 3500), (60, 100, 120, 150)),
    "o": ((570, 840, 2410, 3400), (70, 80, 120, 150)),
    "u": ((300, 870, 2240, 3400), (60, 80, 120, 150)),
}
_FORMANT_DB = (0.0, -5.0, -12.0, -18.0)


def render_vocal(ctx: NoteContext, p: Params) -> np.ndarray:
    """Glottal (sawtooth-like) source through parallel vowel formant filters, vibrato and breath.

    The formant filters are applied in the harmonic domain: each harmonic of the source is
    scaled by the filter bank's response at its frequency before the band-limited wavetable is
    built.
    """
    k = dsp.harmonic_numbers(ctx.f0, ctx.sr)
    freqs = k * ctx.f0
    centres, widths = _FORMANTS[p["vowel"]]
    response = np.full_like(freqs, 0.01)
    for fc, bw, db in zip(centres, widths, _FORMANT_DB, strict=True):
        fc = fc * p["formant_shift"]
        if fc < ctx.nyquist_limit:
            formant = dsp.biquad_bandpass(fc, fc / bw, ctx.sr)
            response += 10 ** (db / 20) * dsp.filter_magnitude(*formant, freqs, ctx.sr)
    amps = k ** -_tilt(ctx, p["roll"], 0.4, 0.8) * response
    cycles = _vibrato_cycles(ctx, p)
    osc = _with_multiphonic(ctx, dsp.read_table(dsp.harmonic_table(amps), cycles), cycles)
    env = _held_env(ctx, p)
    x = osc * env
    if p["breath"] > 0:
        f2 = centres[1] * p["formant_shift"]
        x += _bandpass_noise(ctx, f2, 3.0) * env * np.float32(p["breath"] * (0.4 + 0.6 * ctx.vel) * 2)
    return x


FAMILY_RENDERERS: dict[str, Renderer] = {
    "bass": render_bass,
    "brass": render_brass,
    "flute": render_flute,
    "guitar": render_guitar,
    "keyboard": render_keyboard,
    "mallet": render_mallet,
    "organ": render_organ,
    "reed": render_reed,
    "string": render_string,
    "synth_lead": render_synth_lead,
    "vocal": render_vocal,
}
