"""Procedural, offline, deterministic instrument notes in the exact NSynth format.

Used by the offline demo profile instead of the real 25 GB NSynth: eleven families of
distinct synthesis models (Karplus-Strong guitar, modal mallets, drawbar organ, formant vocal,
...) rendered at exactly their MIDI pitch, with velocity-dependent loudness and brightness,
quality bits derived from what is rendered, and captions that describe them.
"""

from __future__ import annotations

from instrumentgen.synth.dataset import synthesize_dataset

__all__ = ["synthesize_dataset"]
