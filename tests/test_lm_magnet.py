"""Tests for MAGNeT training-time masking (instrumentgen.lm.magnet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from instrumentgen.lm.magnet import (
    MagnetMask,
    _span_mask,
    apply_mask,
    cosine_rate,
    masked_fraction_table,
    sample_magnet_mask,
    spans_for_rate,
)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D bool array as (start, stop) pairs."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@pytest.fixture(scope="module")
def big_batch() -> MagnetMask:
    return sample_magnet_mask(4000, 4, 20, np.random.default_rng(1234), span_length=3)


@pytest.mark.parametrize(("t", "span"), [(50, 3), (345, 3), (10, 1), (5, 3), (3, 3), (2, 5)])
def test_table_monotone_and_saturates(t: int, span: int) -> None:
    table = masked_fraction_table(t, span)
    assert table.shape == (t + 1,)
    assert table[0] == 0.0
    assert np.all(np.diff(table) >= 0.0)
    assert np.all((table >= 0.0) & (table <= 1.0))
    np.testing.assert_array_equal(table[max(t - span + 1, 1) :], 1.0)
    if t - span >= 1:
        assert table[t - span] < 1.0


def test_table_exact_small_case() -> None:
    # T=10, L=3, n=2: 1 - C(7,2)/C(10,2) = 1 - 21/45
    assert masked_fraction_table(10, 3)[2] == pytest.approx(1 - 21 / 45)
    assert masked_fraction_table(345, 3) is masked_fraction_table(345, 3)  # cached


@pytest.mark.parametrize("n", [1, 5, 10, 20, 35])
def test_table_matches_monte_carlo(n: int) -> None:
    t, span = 50, 3
    table = masked_fraction_table(t, span)
    assert spans_for_rate(float(table[n]), t, span) == n
    rng = np.random.default_rng(7)
    frac = np.mean([_span_mask(float(table[n]), t, span, rng).mean() for _ in range(4000)])
    assert frac == pytest.approx(table[n], abs=0.02)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mean_masked_fraction_tracks_rate(rate: float) -> None:
    rng = np.random.default_rng(42)
    frac = np.mean([_span_mask(rate, 345, 3, rng).mean() for _ in range(1000)])
    assert frac == pytest.approx(rate, abs=0.03)


def test_spans_for_rate_bounds() -> None:
    assert spans_for_rate(0.0, 100, 3) == 1  # always at least one span
    assert masked_fraction_table(100, 3)[spans_for_rate(1.0, 100, 3)] == 1.0


def test_runs_are_whole_spans() -> None:
    m = sample_magnet_mask(300, 3, 61, np.random.default_rng(3), span_length=4)
    for i in range(300):
        stage_mask = m.loss_mask[i, m.stage[i]].numpy()
        for start, stop in _runs(stage_mask):
            assert stop - start >= 4 or stop == 61, (i, start, stop)


def test_stage_structure(big_batch: MagnetMask) -> None:
    m = big_batch
    b, k, t = m.input_mask.shape
    assert (b, k, t) == (4000, 4, 20)
    assert m.stage.dtype == torch.long and m.rate.shape == (b,)
    assert m.input_mask.dtype == torch.bool and m.loss_mask.dtype == torch.bool
    counts = np.bincount(m.stage.numpy(), minlength=k)
    assert stats.chisquare(counts).pvalue > 0.001
    assert not (m.loss_mask & ~m.input_mask).any()
    assert (m.loss_mask.sum(dim=(1, 2)) >= 1).all()
    levels = torch.arange(k)[None, :, None]
    s = m.stage[:, None, None]
    assert m.input_mask.expand(b, k, t)[(levels > s).expand(b, k, t)].all()
    assert not m.input_mask[(levels < s).expand(b, k, t)].any()
    assert not m.loss_mask[(levels != s).expand(b, k, t)].any()
    own = (levels == s).expand(b, k, t)
    assert torch.equal(m.input_mask[own], m.loss_mask[own])


def test_rate_distribution(big_batch: MagnetMask) -> None:
    rates = big_batch.rate.double().numpy()
    assert np.all((rates >= 0.0) & (rates <= 1.0))
    result = stats.kstest(rates, lambda r: 1.0 - (2.0 / np.pi) * np.arccos(np.clip(r, 0.0, 1.0)))
    assert result.pvalue > 0.001


def test_cosine_rate() -> None:
    np.testing.assert_allclose(cosine_rate(np.array([0.0, 0.5, 1.0])), [1.0, np.sqrt(0.5), 0.0], atol=1e-12)


def test_reproducible() -> None:
    a = sample_magnet_mask(8, 4, 37, np.random.default_rng(5))
    b = sample_magnet_mask(8, 4, 37, np.random.default_rng(5))
    c = sample_magnet_mask(8, 4, 37, np.random.default_rng(6))
    for name in ("stage", "rate", "input_mask", "loss_mask"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.input_mask, c.input_mask)


def test_apply_mask() -> None:
    codes = torch.randint(0, 1024, (3, 4, 25), generator=torch.Generator().manual_seed(0))
    before = codes.clone()
    m = sample_magnet_mask(3, 4, 25, np.random.default_rng(0))
    out = apply_mask(codes, m.input_mask, 1024)
    assert torch.equal(codes, before)
    assert torch.equal(out[~m.input_mask], codes[~m.input_mask])
    assert (out[m.input_mask] == 1024).all()
    assert m.input_mask.any()


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: masked_fraction_table(0, 3), "n_frames.*got 0"),
        (lambda: masked_fraction_table(10, 0), "span_length.*got 0"),
        (lambda: spans_for_rate(1.5, 10, 3), "1.5"),
        (lambda: spans_for_rate(-0.2, 10, 3), "-0.2"),
        (lambda: sample_magnet_mask(0, 4, 10, np.random.default_rng(0)), "batch"),
        (lambda: sample_magnet_mask(2, 4, 0, np.random.default_rng(0)), "n_frames"),
        (lambda: sample_magnet_mask(2, 0, 10, np.random.default_rng(0)), "n_codebooks"),
        (lambda: sample_magnet_mask(2, 4, 10, np.random.default_rng(0), span_length=-1), "-1"),
        (
            lambda: apply_mask(torch.zeros(2, 4, 10), torch.zeros(2, 4, 9, dtype=torch.bool), 1),
            r"\(2, 4, 9\)",
        ),
    ],
)
def test_bad_arguments(call, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call()
