"""The CLAP interface: audio and text into one L2-normalised embedding space."""

from __future__ import annotations

import abc

import numpy as np

# Width of LAION-CLAP's joint audio-text embedding (the paper's checkpoints). Here, not in clap.laion, so
# that the workflow's settings can read it without importing PyTorch.
LAION_EMBEDDING_DIM = 512


class AudioTextEmbedder(abc.ABC):
    """``embed_audio(audio [B, T], sr) -> [B, D]`` and ``embed_text(list[str]) -> [B, D]``,
    float32, every row L2-normalised (D = 512 for LAION-CLAP)."""

    dim: int

    @abc.abstractmethod
    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono audio ``[B, T]`` at ``sample_rate`` → embeddings ``[B, dim]``."""

    @abc.abstractmethod
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Texts → embeddings ``[len(texts), dim]``."""
