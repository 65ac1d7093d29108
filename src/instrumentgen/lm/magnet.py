"""MAGNeT training-time masking for codes ``[B, K, T]`` (K codebooks = stages, T frames, parallel pattern).

Following audiocraft's ``MagnetSolver``, each training sample gets
  * one stage ``k`` drawn uniformly from ``0..K-1``;
  * a masking rate ``r = cos(pi * u / 2)`` with ``u ~ U(0, 1)`` (the cosine schedule);
  * in stage ``k``, ``n`` spans of ``span_length`` (L) frames, starting at ``n`` distinct frames drawn
    uniformly (spans are clipped at T). ``n >= 1`` is read off a lookup table so the expected masked fraction,
    ``1 - C(T-L, n) / C(T, n)`` (audiocraft's approximation, ignoring edge effects), is closest to ``r``.
Stages above ``k`` are fully masked in the input, stages below ``k`` are left as is, and the cross-entropy
counts only on the masked spans of stage ``k``. All randomness comes from a ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from instrumentgen.checks import number_in_range, positive_int

__all__ = [
    "MagnetMask",
    "apply_mask",
    "cosine_rate",
    "masked_fraction_table",
    "sample_magnet_mask",
    "spans_for_rate",
]


def cosine_rate(u: np.ndarray) -> np.ndarray:
    """Cosine masking schedule ``cos(pi * u / 2)``, elementwise; ``u`` in ``[0, 1]`` maps to ``[1, 0]``."""
    return np.cos(np.pi * np.asarray(u, dtype=np.float64) / 2.0)


@functools.lru_cache(maxsize=64)
def _table(n_frames: int, span_length: int) -> np.ndarray:
    n = np.arange(n_frames + 1, dtype=np.float64)
    # C(T-L, n) / C(T, n) = prod_{i<L} (T-n-i) / (T-i), zero once n > T-L (a factor reaches <= 0).
    ratio = np.ones_like(n)
    for i in range(min(span_length, n_frames)):
        ratio *= np.clip(n_frames - n - i, 0.0, None) / (n_frames - i)
    table = 1.0 - ratio
    table.setflags(write=False)
    return table


def masked_fraction_table(n_frames: int, span_length: int) -> np.ndarray:
    """Expected masked fraction with ``n`` span starts, ``1 - C(T-L, n) / C(T, n)``, for ``n = 0..T``.

    Returns a read-only float64 array of shape ``[n_frames + 1]`` (entry 0 is 0.0; entries ``n > T - L``
    are 1.0), non-decreasing in ``n``. Cached per ``(n_frames, span_length)``.
    """
    return _table(positive_int("n_frames", n_frames), positive_int("span_length", span_length))


def spans_for_rate(rate: float, n_frames: int, span_length: int) -> int:
    """Number of spans ``n`` in ``1..n_frames`` whose expected masked fraction is closest to ``rate``."""
    number_in_range("rate", rate, 0.0, 1.0)
    table = masked_fraction_table(n_frames, span_length)
    return int(np.argmin(np.abs(table[1:] - float(rate)))) + 1


def _span_mask(rate: float, n_frames: int, span_length: int, rng: np.random.Generator) -> np.ndarray:
    """Bool mask ``[n_frames]`` of spans for one stage at masking rate ``rate``."""
    n = spans_for_rate(rate, n_frames, span_length)
    starts = rng.choice(n_frames, size=n, replace=False)
    covered = (starts[:, None] + np.arange(span_length)[None, :]).ravel()
    mask = np.zeros(n_frames, dtype=bool)
    mask[covered[covered < n_frames]] = True
    return mask


@dataclass(frozen=True)
class MagnetMask:
    """Masks for one batch; ``B`` samples, ``K`` stages, ``T`` frames.

    ``stage``: ``[B]`` long, the stage trained per sample. ``rate``: ``[B]`` float32, target masking rate.
    ``input_mask``: ``[B, K, T]`` bool, positions replaced by the mask token in the model input (masked
    spans of the chosen stage plus every position of higher stages). ``loss_mask``: ``[B, K, T]`` bool,
    positions whose cross-entropy counts (masked spans of the chosen stage only; subset of ``input_mask``).
    """

    stage: torch.Tensor
    rate: torch.Tensor
    input_mask: torch.Tensor
    loss_mask: torch.Tensor

    def rows(self, index: torch.Tensor) -> MagnetMask:
        """The masks of the samples ``index`` ``[b]`` (a process's share of a batch)."""
        return MagnetMask(self.stage[index], self.rate[index], self.input_mask[index], self.loss_mask[index])

    @property
    def loss_positions(self) -> float:
        """Number of positions whose cross-entropy counts."""
        return float(self.loss_mask.sum())


def sample_magnet_mask(
    batch: int, n_codebooks: int, n_frames: int, rng: np.random.Generator, span_length: int = 3
) -> MagnetMask:
    """Draw MAGNeT masks for a ``[batch, n_codebooks, n_frames]`` code tensor (see module docstring)."""
    b = positive_int("batch", batch)
    k = positive_int("n_codebooks", n_codebooks)
    t = positive_int("n_frames", n_frames)
    span = positive_int("span_length", span_length)
    stage = rng.integers(0, k, size=b)
    rate = cosine_rate(rng.random(b))
    input_mask = np.zeros((b, k, t), dtype=bool)
    loss_mask = np.zeros((b, k, t), dtype=bool)
    for i in range(b):
        m = _span_mask(float(rate[i]), t, span, rng)
        loss_mask[i, stage[i]] = m
        input_mask[i, stage[i]] = m
        input_mask[i, stage[i] + 1 :] = True
    return MagnetMask(
        stage=torch.from_numpy(stage.astype(np.int64)),
        rate=torch.from_numpy(rate.astype(np.float32)),
        input_mask=torch.from_numpy(input_mask),
        loss_mask=torch.from_numpy(loss_mask),
    )


def apply_mask(codes: torch.Tensor, input_mask: torch.Tensor, mask_token: int) -> torch.Tensor:
    """Return a copy of ``codes`` ``[B, K, T]`` with ``input_mask`` ``[B, K, T]`` (bool) positions set to
    ``mask_token``; ``codes`` itself is not modified."""
    if codes.dim() != 3 or tuple(codes.shape) != tuple(input_mask.shape):
        raise ValueError(
            f"codes {tuple(codes.shape)} and input_mask {tuple(input_mask.shape)} "
            "must be equal [B, K, T] shapes"
        )
    if input_mask.dtype != torch.bool:
        raise ValueError(f"input_mask must be bool, got {input_mask.dtype}")
    return codes.masked_fill(input_mask.to(codes.device), mask_token)
