"""Batches of mono notes for the embedders: validation and resampling (:mod:`instrumentgen.audio`)."""

from __future__ import annotations

import numpy as np
import pytest

from instrumentgen.audio import check_mono_batch, resample_batch


def test_check_mono_batch():
    assert check_mono_batch(np.zeros(10), 16000).shape == (1, 10)
    assert check_mono_batch(np.zeros((2, 10), np.float64), 16000).dtype == np.float32
    bad = np.zeros((3, 10), np.float32)
    bad[2, 4] = np.nan
    with pytest.raises(ValueError, match=r"rows \[2\] contain NaN"):
        check_mono_batch(bad, 16000)
    with pytest.raises(ValueError, match="sample rate"):
        check_mono_batch(np.zeros((1, 10)), 0)
    with pytest.raises(ValueError, match="non-empty"):
        check_mono_batch(np.zeros((1, 0)), 16000)
    with pytest.raises(ValueError, match="dtype int16"):
        check_mono_batch(np.zeros((1, 10), np.int16), 16000)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        check_mono_batch(np.zeros((1, 2, 10)), 16000)


def test_resample_batch():
    x = np.sin(np.linspace(0, 100, 24000, dtype=np.float32))[None].repeat(3, axis=0)
    y = resample_batch(x, 24000, 16000)
    assert y.shape == (3, 16000) and y.dtype == np.float32
    assert resample_batch(x[:1], 24000, 48000).shape == (1, 48000)
    assert resample_batch(x, 16000, 16000) is x
