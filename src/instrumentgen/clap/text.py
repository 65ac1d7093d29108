"""Captions as bags of words over a fixed vocabulary (the small CLAP's text input)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")

# Words that say nothing about a sound: English function words and the filler every caption shares
# ("a ... note played on a ..."). A prompt made of these alone describes no timbre.
FUNCTION_WORDS = frozenset(
    "a an the of on in at by for with from to into onto and or but nor not no as than that this these "
    "those it its is are was were be been being has have had do does did very some any each every "
    "which who whom whose what my your our their his her me you we they he she i "
    "note notes played playing plays sound sounds sounding instrument instruments".split()
)


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words: ``"A bright, fast-decaying bass"`` →
    ``[a, bright, fast, decaying, bass]``."""
    return _WORD.findall(text.lower())


def content_words(text: str, vocabulary: Sequence[str]) -> list[str]:
    """The words of ``text`` that ``vocabulary`` knows and that are not :data:`FUNCTION_WORDS`: what a
    bag-of-words text encoder can read a timbre from."""
    known = set(vocabulary)
    return [w for w in words(text) if w in known and w not in FUNCTION_WORDS]


def build_vocabulary(texts: Sequence[str]) -> list[str]:
    """The sorted set of words in ``texts``."""
    return sorted({w for t in texts for w in words(t)})


def bag_of_words(texts: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """Word counts float64 ``[len(texts), len(vocabulary)]``; words outside the vocabulary are ignored."""
    index = {w: i for i, w in enumerate(vocabulary)}
    counts = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        for w in words(text):
            if w in index:
                counts[row, index[w]] += 1.0
    return counts
