"""The codec interface every codec of the project implements (DAC for the paper profile, a
fitted codec for the offline profiles): audio ↔ discrete codes on K codebooks."""

from __future__ import annotations

import abc
import math

import torch


class Codec(abc.ABC):
    """Audio ``[B, 1, T]`` (float, ``sample_rate`` Hz, in [-1, 1]) ↔ codes ``[B, K, F]`` (int64 in
    ``[0, codebook_size)``), with ``F = num_frames(T)`` frames at ``frame_rate`` frames/s."""

    sample_rate: int
    n_codebooks: int
    codebook_size: int
    hop_length: int

    @property
    def frame_rate(self) -> float:
        """Frames per second (DAC 44.1 kHz: 44100 / 512 ≈ 86.13)."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames the codec produces for ``num_samples`` samples."""
        return math.ceil(num_samples / self.hop_length)

    @abc.abstractmethod
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, T]`` → codes ``[B, K, F]`` (int64)."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` → audio ``[B, 1, T']`` with ``T' ≈ F * hop_length``."""


class CodecFileError(ValueError):
    """A codec file that is missing, unreadable or inconsistent; the message names it."""


def check_codes(codes: torch.Tensor, n_codebooks: int, codebook_size: int) -> torch.Tensor:
    """Validate codes ``[B, K, F]`` (integer, ``K == n_codebooks``, in range); return them as int64."""
    if codes.ndim != 3 or codes.shape[1] != n_codebooks or codes.shape[2] < 1:
        raise ValueError(f"expected codes [B, {n_codebooks}, F >= 1], got shape {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError(f"codes outside [0, {codebook_size}): min {int(codes.min())}, "
                         f"max {int(codes.max())}")
    return codes.long()
