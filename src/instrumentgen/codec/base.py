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
