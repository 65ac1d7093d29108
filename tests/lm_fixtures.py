"""Small random codec LMs and condition batches for decoding tests (built by instrumentgen.testing)."""

from __future__ import annotations

from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.model import CodecLM
from instrumentgen.testing import TINY_LM, random_conditions, random_model, tiny_config

CARD = TINY_LM["codebook_size"]


def tiny_model(objective: str = "ar", seed: int = 0) -> CodecLM:
    """A small random model with large enough weights that its logits depend on the inputs."""
    return random_model(tiny_config(objective=objective), seed, weight_std=0.3, clap_rows=40)


def conditions(batch: int, seed: int = 1) -> Conditions:
    return random_conditions(batch, seed=seed)
