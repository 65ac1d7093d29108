"""Procedural instruments: per-family ranges and sources, random timbres, quality bits, note grids.

An :class:`Instrument` is drawn once from its own RNG; every note of it is then rendered from
those parameters (see :mod:`instrumentgen.synth.render`). Quality bits are derived from the
parameters that are actually rendered, never drawn as independent labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instrumentgen.nsynth import metadata
from instrumentgen.synth.dsp import max_pitch_for_rate

# Domain tags keep the random streams of different purposes apart.
DOMAIN_INSTRUMENT, DOMAIN_NOTE, DOMAIN_CELLS, DOMAIN_SOURCES, DOMAIN_CAPTION = 1, 2, 3, 4, 5


def rng_for(seed: int, domain: int, *key: int) -> np.random.Generator:
    """A generator seeded by ``SeedSequence([seed, domain, *key])`` (independent of call order)."""
    return np.random.default_rng(np.random.SeedSequence([seed, domain, *key]))


@dataclass(frozen=True)
class FamilySpec:
    """Static facts about a family: natural MIDI range, allowed sources, plucked/struck or not.

    The first source is the canonical one; the canonical sources of all families together cover
    acoustic, electronic and synthetic, so one instrument per family already shows every source.
    """

    pitch_range: tuple[int, int]
    sources: tuple[str, ...]
    percussive: bool


FAMILY_SPECS: dict[str, FamilySpec] = {
    "bass": FamilySpec((16, 64), ("electronic", "synthetic"), False),
    "brass": FamilySpec((34, 88), ("acoustic", "electronic"), False),
    "flute": FamilySpec((60, 100), ("acoustic", "synthetic"), False),
    "guitar": FamilySpec((36, 90), ("acoustic", "electronic", "synthetic"), True),
    "keyboard": FamilySpec((16, 112), ("acoustic", "electronic", "synthetic"), True),
    "mallet": FamilySpec((40, 116), ("acoustic", "electronic", "synthetic"), True),
    "organ": FamilySpec((16, 104), ("electronic", "acoustic"), False),
    "reed": FamilySpec((30, 92), ("acoustic", "electronic", "synthetic"), False),
    "string": FamilySpec((28, 100), ("acoustic", "electronic"), False),
    "synth_lead": FamilySpec((24, 118), ("synthetic",), False),
    "vocal": FamilySpec((40, 84), ("acoustic", "synthetic"), False),
}
assert tuple(sorted(FAMILY_SPECS)) == metadata.FAMILIES

FAST_DECAY_T60 = 0.8  # s: a plucked/struck instrument whose reference note dies faster is fast_decay
LONG_RELEASE = 0.5  # s: a held instrument whose release is at least this long has long_release


@dataclass(frozen=True)
class Effects:
    """Post-processing an instrument applies to every note (``None`` = not applied).

    ``drive``: tanh distortion; ``tremolo``: (rate Hz, depth) tempo-synced amplitude LFO;
    ``reverb``: (rt60 s, wet 0..1, damping Hz, ir_seed); ``swell``: (amount, centre fraction,
    width fraction) non-monotonic envelope bump; ``multiphonic``: (frequency ratio, level) of
    an added inharmonic upper tone; ``click``: level of an onset transient (0 = none).
    """

    drive: float | None = None
    tremolo: tuple[float, float] | None = None
    reverb: tuple[float, float, float, int] | None = None
    swell: tuple[float, float, float] | None = None
    multiphonic: tuple[float, float] | None = None
    click: float = 0.0


@dataclass(frozen=True)
class Instrument:
    """One synthetic instrument: identity, global timbre controls and family-specific parameters."""

    inst_id: int
    family: str
    source: str
    index: int
    brightness: float  # 0 (dark) .. 1 (bright); scales every family's spectral tilt
    gain: float  # per-instrument level applied after peak normalisation
    pitch_range: tuple[int, int]
    timbre: dict[str, Any] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)

    @property
    def name(self) -> str:
        """NSynth ``instrument_str``, e.g. ``guitar_acoustic_003``."""
        return metadata.instrument_str(self.family, self.source, self.index)

    @property
    def percussive_family(self) -> bool:
        return FAMILY_SPECS[self.family].percussive

    def qualities(self) -> list[int]:
        """NSynth's 10 quality bits, from the parameters that are rendered."""
        on = {
            "bright": self.brightness > 2 / 3,
            "dark": self.brightness < 1 / 3,
            "distortion": self.effects.drive is not None,
            "fast_decay": (self.timbre["t60"] < FAST_DECAY_T60) if self.percussive_family
            else (self.timbre["sustain"] <= 0.25 and self.timbre["decay"] <= 0.4),
            "long_release": (not self.percussive_family) and self.timbre["release"] >= LONG_RELEASE,
            "multiphonic": self.effects.multiphonic is not None,
            "nonlinear_env": self.effects.swell is not None,
            "percussive": self.percussive_family or self.effects.click > 0,
            "reverb": self.effects.reverb is not None,
            "tempo-synced": self.effects.tremolo is not None,
        }
        return [int(on[q]) for q in metadata.QUALITIES]


# ----------------------------------------------------------------------------- timbre samplers


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _held_envelope(rng: np.random.Generator, attack: tuple[float, float], release: tuple[float, float],
                   plucky: float = 0.1) -> dict[str, float]:
    """ADSR parameters of a held family; with probability ``plucky`` the sustain dies away fast."""
    if rng.random() < plucky:
        decay, sustain = _u(rng, 0.08, 0.35), _u(rng, 0.05, 0.22)
    else:
        decay, sustain = _u(rng, 0.2, 1.5), _u(rng, 0.55, 1.0)
    return {"attack": _log_u(rng, *attack), "decay": decay, "sustain": sustain,
            "release": _log_u(rng, *release)}


def _vibrato(rng: np.random.Generator, rate: tuple[float, float], cents: tuple[float, float],
             delay: tuple[float, float] = (0.1, 0.3)) -> dict[str, float]:
    return {"vib_rate": _u(rng, *rate), "vib_cents": _u(rng, *cents), "vib_delay": _u(rng, *delay)}


def _bass(rng: np.random.Generator, source: str) -> dict[str, Any]:
    synthetic = source == "synthetic"
    return {
        "square_mix": _u(rng, 0.0, 1.0) if synthetic else _u(rng, 0.0, 0.3),
        "cut_lo": _u(rng, 1.2, 2.5), "cut_hi": _log_u(rng, 5.0, 18.0), "filter_tau": _log_u(rng, 0.04, 0.3),
        "q": _u(rng, 2.0, 6.0) if synthetic else _u(rng, 0.8, 2.0),
        "finger_noise": 0.0 if synthetic else _u(rng, 0.02, 0.06),
        **_held_envelope(rng, (0.002, 0.01), (0.03, 0.6), plucky=0.3),
    }


def _brass(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    return {
        "roll_bright": _u(rng, 0.5, 1.1), "roll_dark": _u(rng, 2.6, 3.6), "swell_gamma": _u(rng, 1.0, 2.5),
        "scoop_cents": _u(rng, 20.0, 60.0) if acoustic else _u(rng, 0.0, 10.0),
        "breath": _u(rng, 0.01, 0.03) if acoustic else 0.0,
        "jitter_cents": _u(rng, 2.0, 5.0) if acoustic else 0.0,
        **_vibrato(rng, (4.5, 6.0), (4.0, 15.0) if acoustic else (0.0, 6.0), (0.2, 0.5)),
        **_held_envelope(rng, (0.03, 0.12), (0.05, 0.6), plucky=0.05),
    }


def _flute(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    return {
        "harmonics": [float(x) for x in rng.uniform(0.08, 0.55, 5) * np.arange(2, 7, dtype=float) ** -1.0],
        "breath": _u(rng, 0.05, 0.12) if acoustic else _u(rng, 0.0, 0.02),
        "breath_fc": _u(rng, 1800.0, 3500.0),
        "jitter_cents": _u(rng, 2.0, 5.0) if acoustic else 0.0,
        **_vibrato(rng, (4.5, 5.8), (8.0, 25.0) if acoustic else (0.0, 10.0), (0.1, 0.3)),
        **_held_envelope(rng, (0.04, 0.15), (0.05, 0.6), plucky=0.05),
    }


def _guitar(rng: np.random.Generator, source: str) -> dict[str, Any]:
    return {
        "t60": _log_u(rng, 0.5, 4.0),
        "smoothing": _u(rng, 0.0, 0.1),  # added to the brightness-driven loop smoothing
        "pluck_pos": _u(rng, 0.08, 0.3),
        "pluck_noise": {"acoustic": _u(rng, 0.1, 0.25), "electronic": _u(rng, 0.05, 0.15)}.get(source, 0.0),
        "pickup_pos": _u(rng, 0.05, 0.25),
        "pickup_fc": _u(rng, 2500.0, 5000.0),
        "body_modes": [[_u(rng, 90, 130), _u(rng, 180, 260), _u(rng, 380, 520)],
                       [_u(rng, 4, 9) for _ in range(3)]],
    }


def _keyboard(rng: np.random.Generator, source: str) -> dict[str, Any]:
    if source == "acoustic":
        extra = {"inharmonicity": _log_u(rng, 1e-4, 6e-4), "hammer": _u(rng, 0.1, 0.3),
                 "strike_pos": _u(rng, 0.08, 0.16), "partial_decay": _u(rng, 0.08, 0.3)}
    elif source == "electronic":
        extra = {"inharmonicity": 1e-5, "hammer": _u(rng, 0.02, 0.08), "tine_ratio": _u(rng, 6.6, 7.6),
                 "tine_level": _u(rng, 0.2, 0.5), "partial_decay": _u(rng, 0.3, 0.6)}
    else:
        extra = {"inharmonicity": 0.0, "hammer": 0.0, "odd_boost": _u(rng, 1.0, 3.0),
                 "partial_decay": _u(rng, 0.2, 0.8)}
    return {"t60": _log_u(rng, 0.6, 6.0), **extra}


def _mallet(rng: np.random.Generator, source: str) -> dict[str, Any]:
    ratios = np.array([1.0, 2.76, 5.40, 8.93])
    if source == "acoustic":
        ratios = ratios * np.concatenate([[1.0], rng.uniform(0.985, 1.015, 3)])
    return {
        "ratios": [float(r) for r in ratios],
        "levels": [1.0, _u(rng, 0.2, 0.6), _u(rng, 0.1, 0.4), _u(rng, 0.05, 0.2)],
        "t60": _log_u(rng, 0.3, 3.0), "partial_decay": _u(rng, 0.5, 1.2),
        "hardness": _u(rng, 0.1, 0.4) if source == "acoustic" else _u(rng, 0.0, 0.1),
        "pickup_fc": _u(rng, 2500.0, 5000.0),
    }


def _organ(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    drawbars = rng.uniform(0.0, 1.0, 7) * (rng.random(7) < 0.7)
    drawbars[0] = _u(rng, 0.7, 1.0)
    return {
        "drawbars": [float(d) for d in drawbars],
        "celeste_cents": _u(rng, 1.0, 4.0) if acoustic else 0.0,
        "wind": _u(rng, 0.005, 0.02) if acoustic else 0.0,
        **_held_envelope(rng, (0.03, 0.12) if acoustic else (0.003, 0.01),
                         (0.1, 1.0) if acoustic else (0.02, 0.2), plucky=0.0),
        "decay": 1.0, "sustain": 1.0,  # an organ holds its level while the key is down
    }


def _reed(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    return {
        "even": _u(rng, 0.03, 0.2) if acoustic else (_u(rng, 0.0, 0.08) if source == "electronic" else 0.0),
        "roll": _u(rng, 0.7, 1.2),
        "breath": _u(rng, 0.01, 0.04) if acoustic else 0.0,
        "jitter_cents": _u(rng, 2.0, 5.0) if acoustic else 0.0,
        "lowpass": _u(rng, 2500.0, 5000.0) if source == "electronic" else 0.0,
        **_vibrato(rng, (4.5, 6.0), (0.0, 12.0) if acoustic else (0.0, 4.0)),
        **_held_envelope(rng, (0.02, 0.08), (0.05, 0.6), plucky=0.1),
    }


def _string(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    return {
        "body_modes": [[_u(rng, 250, 320), _u(rng, 400, 550), _u(rng, 2000, 3200)],
                       [_u(rng, 4, 10), _u(rng, 3, 8), _u(rng, 2, 6)]] if acoustic else None,
        "bow_noise": _u(rng, 0.01, 0.04) if acoustic else 0.0,
        "chorus_cents": 0.0 if acoustic else _u(rng, 4.0, 10.0),
        "jitter_cents": _u(rng, 2.0, 5.0) if acoustic else 0.0,
        **_vibrato(rng, (5.0, 6.5), (10.0, 30.0) if acoustic else (0.0, 8.0), (0.05, 0.25)),
        **_held_envelope(rng, (0.08, 0.3), (0.1, 0.8), plucky=0.0),
    }


def _synth_lead(rng: np.random.Generator, source: str) -> dict[str, Any]:
    return {
        "voices": int(rng.integers(1, 4)), "detune_cents": _u(rng, 3.0, 15.0),
        "square_mix": _u(rng, 0.0, 1.0), "cutoff": _log_u(rng, 3.0, 14.0), "q": _u(rng, 0.7, 4.0),
        **_held_envelope(rng, (0.003, 0.05), (0.02, 0.6), plucky=0.2),
    }


def _vocal(rng: np.random.Generator, source: str) -> dict[str, Any]:
    acoustic = source == "acoustic"
    return {
        "vowel": str(rng.choice(["a", "e", "i", "o", "u"])),
        "formant_shift": _u(rng, 0.9, 1.15) if acoustic else _u(rng, 0.8, 1.3),
        "roll": _u(rng, 0.5, 0.9),
        "breath": _u(rng, 0.02, 0.06) if acoustic else 0.0,
        "jitter_cents": _u(rng, 3.0, 8.0) if acoustic else 0.0,
        **_vibrato(rng, (4.5, 6.0), (15.0, 40.0) if acoustic else (0.0, 10.0)),
        **_held_envelope(rng, (0.05, 0.15), (0.1, 0.6), plucky=0.0),
    }


TIMBRE_SAMPLERS: dict[str, Callable[[np.random.Generator, str], dict[str, Any]]] = {
    "bass": _bass, "brass": _brass, "flute": _flute, "guitar": _guitar, "keyboard": _keyboard,
    "mallet": _mallet, "organ": _organ, "reed": _reed, "string": _string, "synth_lead": _synth_lead,
    "vocal": _vocal,
}

_FX_PROBABILITY = {  # (distortion, tremolo) by source
    "acoustic": (0.03, 0.04), "electronic": (0.2, 0.12), "synthetic": (0.25, 0.15),
}
_CLICK_FAMILIES = {"organ": 0.4, "bass": 0.3, "synth_lead": 0.15}


def _sample_effects(rng: np.random.Generator, family: str, source: str) -> Effects:
    p_drive, p_trem = _FX_PROBABILITY[source]
    held = not FAMILY_SPECS[family].percussive
    drive = _u(rng, 1.5, 5.0) if rng.random() < p_drive else None
    trem = None
    if rng.random() < p_trem:
        bpm, division = _u(rng, 80.0, 140.0), float(rng.choice([1.0, 2.0, 4.0]))
        trem = (bpm / 60.0 * division, _u(rng, 0.3, 0.7))
    reverb = None
    if rng.random() < 0.3:
        reverb = (_log_u(rng, 0.4, 2.0), _u(rng, 0.2, 0.45), _u(rng, 2500.0, 6000.0),
                  int(rng.integers(2**31)))
    swell = (_u(rng, 0.8, 2.0), _u(rng, 0.25, 0.6), _u(rng, 0.08, 0.2)) if rng.random() < 0.1 else None
    multiphonic = None
    if held and rng.random() < 0.05:
        multiphonic = (float(rng.choice([2.32, 2.68, 3.32, 3.68])), _u(rng, 0.1, 0.2))
    click = _u(rng, 0.15, 0.4) if rng.random() < _CLICK_FAMILIES.get(family, 0.0) else 0.0
    return Effects(drive=drive, tremolo=trem, reverb=reverb, swell=swell, multiphonic=multiphonic,
                   click=click)


def sample_instrument(seed: int, inst_id: int, family: str, source: str, index: int) -> Instrument:
    """Draw an instrument's parameters from its own RNG (``seed``, ``inst_id``)."""
    if source not in FAMILY_SPECS[family].sources:
        raise ValueError(f"source {source!r} is not allowed for family {family!r}")
    rng = rng_for(seed, DOMAIN_INSTRUMENT, inst_id)
    lo, hi = FAMILY_SPECS[family].pitch_range
    trim_lo, trim_hi = (int(x) for x in rng.integers(0, 5, 2))
    return Instrument(
        inst_id=inst_id, family=family, source=source, index=index,
        brightness=_u(rng, 0.0, 1.0), gain=_u(rng, 0.7, 1.0),
        pitch_range=(lo + trim_lo, hi - trim_hi),
        timbre=TIMBRE_SAMPLERS[family](rng, source),
        effects=_sample_effects(rng, family, source),
    )


def assign_sources(seed: int, family: str, count: int) -> list[str]:
    """Sources for ``count`` instruments of ``family``: a cycle over the allowed sources (so every
    allowed source occurs once ``count`` reaches their number), shuffled after the first."""
    allowed = FAMILY_SPECS[family].sources
    sources = [allowed[j % len(allowed)] for j in range(count)]
    rng = rng_for(seed, DOMAIN_SOURCES, metadata.FAMILIES.index(family))
    # the first instrument keeps the canonical source, so a 1-per-family dataset covers all sources
    rest = [sources[1 + int(i)] for i in rng.permutation(max(count - 1, 0))]
    return sources[:1] + rest


def note_grid(
    inst: Instrument, seed: int, sample_rate: int, pitch_step: int, velocities: Sequence[int],
    cell_dropout: float,
) -> list[tuple[int, int]]:
    """``(pitch, velocity)`` cells of ``inst``: every ``pitch_step`` semitones of its range (random
    start offset), all ``velocities``, each cell dropped with probability ``cell_dropout`` but
    never all velocities of a pitch. Pitches the sample rate cannot carry are skipped."""
    rng = rng_for(seed, DOMAIN_CELLS, inst.inst_id)
    lo, hi = inst.pitch_range
    hi = min(hi, max_pitch_for_rate(sample_rate))
    if hi < lo:
        return []
    offset = int(rng.integers(0, min(pitch_step, hi - lo + 1)))
    cells = []
    for pitch in range(lo + offset, hi + 1, pitch_step):
        keep = rng.random(len(velocities)) >= cell_dropout
        if not keep.any():
            keep[int(rng.integers(len(velocities)))] = True
        cells.extend((pitch, int(v)) for v, k in zip(velocities, keep, strict=True) if k)
    return cells
