"""Decoding settings from parameters (params.yaml ``generate``): a :class:`~.run.Decoder` from a dict.

``{"sampling": {temperature, top_k, top_p, cfg_coef}, "magnet": {steps, temperature, top_p, cfg_max,
cfg_min}}``; missing keys keep the defaults of :class:`SamplingSettings` and :class:`MagnetSettings`,
an unknown key is an error that names it. MAGNeT's span length is not a decoding setting: it is the
model's (:meth:`Decoder.for_checkpoint`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from instrumentgen.generate.magnet import MagnetSettings
from instrumentgen.generate.run import Decoder
from instrumentgen.generate.sampling import SamplingSettings
from instrumentgen.lm.objective import OBJECTIVES

MODEL_OWNED = {"span_length"}  # read from the model file, never given


def _build(cls: type, values: dict[str, Any], where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a mapping, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)} - MODEL_OWNED
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {where} setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    values = dict(values)
    if "steps" in values:
        values["steps"] = tuple(values["steps"])
    return cls(**values)


def decoder_from_dict(settings: dict[str, Any] | None) -> Decoder:
    """The :class:`Decoder` described by ``settings`` (see module doc)."""
    settings = dict(settings or {})
    sections = sorted(o.decoding_section for o in OBJECTIVES.values())
    unknown = sorted(set(settings) - set(sections))
    if unknown:
        raise ValueError(f"unknown decoding section {unknown[0]!r}; known: {', '.join(sections)}")
    return Decoder(
        sampling=_build(SamplingSettings, settings.get("sampling", {}), "sampling"),
        magnet=_build(MagnetSettings, settings.get("magnet", {}), "magnet"),
    )
