"""Autoregressive decoding over MusicGen's delay pattern, with a KV cache and batched CFG.

One forward pass per step over ``[conditional; null]`` rows (the null rows replace every condition,
CLAP included, by its learned null embedding); each step feeds only the new tokens, attending to the
cached keys and values of the previous ones (buffers preallocated for the whole sequence). Steps
where the delay pattern has no code are forced to the special token, so the sequence reverts to
``[B, K, T]`` codes exactly.
"""

from __future__ import annotations

import torch

from instrumentgen.generate.conditioning import condition_tokens, prepare
from instrumentgen.generate.sampling import SamplingSettings, guide, sample
from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.model import CodecLM
from instrumentgen.lm.pattern import DelayPattern


@torch.no_grad()
def generate_ar(
    model: CodecLM,
    cond: Conditions,
    n_frames: int,
    settings: SamplingSettings,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Codes ``[B, K, n_frames]`` for the ``B`` conditions of ``cond`` (model in eval mode).

    ``use_cache=False`` recomputes the whole prefix at every step (a reference for tests).
    """
    cfg = model.config
    cond = prepare(model, cond, n_frames, "ar")
    device = cond.pitch.device
    b, k = len(cond), cfg.n_codebooks
    pattern = DelayPattern(k, cfg.special_token)
    steps = pattern.sequence_length(n_frames)
    valid = pattern.valid_mask(n_frames, device=device)  # [K, S]
    tokens = condition_tokens(model, cond, settings.guided)
    rows = tokens.shape[0]
    seq = torch.full((b, k, steps + 1), cfg.special_token, dtype=torch.long, device=device)  # start + S
    cache = model.start_cache(tokens, steps) if use_cache else None
    for s in range(steps):
        if use_cache:
            out = model(seq[:, :, s : s + 1].repeat(rows // b, 1, 1), tokens, cache)
            cache = out.cache
        else:
            out = model(seq[:, :, : s + 1].repeat(rows // b, 1, 1), tokens)
        logits = out.logits[:, :, -1]  # [rows, K, card]
        if settings.guided:
            logits = guide(logits[:b], logits[b:], settings.cfg_coef)
        nxt = sample(logits, settings, generator)  # [B, K]
        seq[:, :, s + 1] = torch.where(valid[:, s][None], nxt, torch.full_like(nxt, cfg.special_token))
    return pattern.revert(seq[:, :, 1:])
