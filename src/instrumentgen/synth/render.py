"""Render one note of an instrument: family voice, effects chain, level, 16-bit PCM.

A note depends only on (seed, instrument, pitch, velocity, sample rate, duration): its RNG is
derived with ``numpy.random.SeedSequence`` from those, so the output is identical whatever the
order or process in which notes are rendered.
"""

from __future__ import annotations

import functools

import numpy as np

from instrumentgen.synth import dsp
from instrumentgen.synth.families import FAMILY_RENDERERS, NoteContext
from instrumentgen.synth.instrument import DOMAIN_NOTE, Instrument, rng_for

HOLD_FRACTION = 0.75  # NSynth notes are held for 3/4 of their duration, then released
PEAK_LEVEL = 0.9  # peak of a velocity-127 note of a gain-1 instrument
VELOCITY_EXPONENT = 1.2


def velocity_gain(velocity: int) -> float:
    """Peak level for a MIDI velocity, rising monotonically to ``PEAK_LEVEL`` at 127."""
    return PEAK_LEVEL * (velocity / 127) ** VELOCITY_EXPONENT


@functools.lru_cache(maxsize=32)
def _impulse_response(sr: int, rt60: float, damping: float, ir_seed: int) -> np.ndarray:
    ir = dsp.reverb_impulse_response(np.random.default_rng(ir_seed), sr, rt60, damping)
    ir.setflags(write=False)
    return ir


def render_note(inst: Instrument, pitch: int, velocity: int, *, seed: int, sample_rate: int,
                note_seconds: float) -> np.ndarray:
    """One note of ``inst`` as float32 ``[T]`` in (-1, 1), ``T = round(note_seconds * sample_rate)``."""
    f0 = dsp.midi_to_hz(pitch)
    if f0 > dsp.partial_limit(sample_rate):
        raise ValueError(f"pitch {pitch} ({f0:.0f} Hz) is above what sample_rate {sample_rate} can represent")
    n = int(round(note_seconds * sample_rate))
    t = dsp.times(n, sample_rate)
    vel = velocity / 127
    fx = inst.effects
    ctx = NoteContext(
        f0=f0, vel=vel, brightness=inst.brightness, source=inst.source, sr=sample_rate, n=n,
        hold=HOLD_FRACTION * note_seconds, t=t, rng=rng_for(seed, DOMAIN_NOTE, inst.inst_id, pitch, velocity),
        multiphonic=fx.multiphonic,
    )
    x = FAMILY_RENDERERS[inst.family](ctx, inst.timbre).astype(np.float32)
    if fx.click > 0:  # onset transient: key click / slap
        burst = dsp.noise_burst(ctx.rng, n, sample_rate, 0.004, min(2000 + 6000 * vel, ctx.nyquist_limit))
        x = x + burst * np.float32(fx.click * (0.3 + 0.7 * vel) * float(np.max(np.abs(x))) * 2.5)
    if fx.swell is not None:  # nonlinear envelope: a swell in the middle of the note
        amount, centre, width = fx.swell
        x = x * (1 + np.float32(amount) * np.exp(-(((t - centre * ctx.hold) / (width * note_seconds)) ** 2)))
    if fx.drive is not None:  # harder notes drive the shaper harder
        x = dsp.soft_clip(x, fx.drive * (0.4 + 0.6 * vel))
    if fx.tremolo is not None:
        x = dsp.tremolo(x, t, *fx.tremolo)
    if fx.reverb is not None:
        rt60, wet, damping, ir_seed = fx.reverb
        x = dsp.convolve_reverb(x, _impulse_response(sample_rate, rt60, damping, ir_seed), wet)
    x = dsp.fade_edges(x, sample_rate)
    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return x
    return x * np.float32(velocity_gain(velocity) * inst.gain / peak)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float ``[T]`` in [-1, 1] to int16 ``[T]`` (round to nearest)."""
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
