"""Captions as bags of words over a fixed vocabulary (the small CLAP's text input)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words: ``"A bright, fast-decaying bass"`` →
    ``[a, bright, fast, decaying, bass]``."""
    return _WORD.findall(text.lower())


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
