"""What both decoders (AR and MAGNeT) share: checking a decoding request, and the condition tokens of
classifier-free guidance.

With guidance, one forward pass covers ``[conditional; null]`` rows: the conditional rows honour the
plan's drop mask (family and source, unknown at inference, get their null embeddings), the null rows
replace every condition, CLAP included, by its learned null embedding.
"""

from __future__ import annotations

import torch

from instrumentgen.checks import int_in_range
from instrumentgen.lm.conditioners import CONDITIONS, Conditions
from instrumentgen.lm.model import CodecLM


def prepare(model: CodecLM, cond: Conditions, n_frames: int, objective: str) -> Conditions:
    """Check a decoding request (model objective, frame count) and put the model in eval mode; returns
    ``cond`` on the model's device."""
    cfg = model.config
    if cfg.objective != objective:
        raise ValueError(
            f"this decoder needs a model trained with objective {objective!r}, not {cfg.objective!r}"
        )
    int_in_range("n_frames (at most lm.max_frames)", n_frames, 1, cfg.max_frames)
    model.eval()
    return cond.to(next(model.parameters()).device)


def null_drop(cond: Conditions) -> torch.Tensor:
    """``[B, 5]`` all-True drop mask on the conditions' device: the null branch of CFG replaces every
    condition, CLAP included, by its learned null embedding."""
    return torch.ones(len(cond), len(CONDITIONS), dtype=torch.bool, device=cond.pitch.device)


def condition_tokens(model: CodecLM, cond: Conditions, guided: bool) -> torch.Tensor:
    """``[B, C, d]`` condition tokens, or ``[2B, C, d]`` = ``[conditional; null]`` when guided.

    The conditional branch honours ``cond.drop`` (the protocols drop family and source, which are not
    known at inference: they get their null embeddings, not the embedding of class 0); the null branch
    drops every condition.
    """
    tokens = model.encode_conditions(cond)
    if not guided:
        return tokens
    null = model.encode_conditions(cond.with_drop(null_drop(cond)))
    return torch.cat([tokens, null])
