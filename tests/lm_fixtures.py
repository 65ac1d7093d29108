"""Small random codec LMs and condition batches for decoding tests."""

from __future__ import annotations

import torch

from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.model import CodecLM

CARD = 16


def tiny_model(objective: str = "ar", seed: int = 0) -> CodecLM:
    """A small random model with large enough weights that its logits depend on the inputs."""
    torch.manual_seed(seed)
    cfg = LMConfig(
        dim=32,
        n_layers=2,
        n_heads=2,
        codebook_size=CARD,
        clap_dim=8,
        clap_n_q=2,
        clap_bins=8,
        category_dim=4,
        max_frames=24,
        objective=objective,
    )
    model = CodecLM(cfg)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                module.weight.normal_(0, 0.3)
        model.conditions.null.normal_(0, 1.0)
    model.conditions.initialize_clap(torch.randn(40, 8), torch.Generator().manual_seed(0))
    return model.eval()


def conditions(batch: int, seed: int = 1) -> Conditions:
    g = torch.Generator().manual_seed(seed)
    return Conditions(
        pitch=torch.randint(0, 88, (batch,), generator=g),
        velocity=torch.randint(0, 5, (batch,), generator=g),
        family=torch.randint(0, 11, (batch,), generator=g),
        source=torch.randint(0, 3, (batch,), generator=g),
        clap=torch.randn(batch, 8, generator=g),
    )
