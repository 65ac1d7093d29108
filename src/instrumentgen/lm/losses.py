"""Training objectives: AR next-token cross-entropy on the delay pattern, and MAGNeT's masked CE.

Both return a :class:`LossOutput` holding the scalar loss to optimise and per-codebook sums and counts
(cross-entropy and correct predictions), so that logging can average them exactly across batches and
processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.magnet import MagnetMask, apply_mask
from instrumentgen.lm.pattern import DelayPattern


@dataclass
class LossOutput:
    """loss: scalar to optimise; ce_sum, correct, count: ``[K]`` per-codebook sums over loss positions."""

    loss: torch.Tensor
    ce_sum: torch.Tensor
    correct: torch.Tensor
    count: torch.Tensor


def _masked_stats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
    """logits ``[B, K, S, card]``, targets and mask ``[B, K, S]`` → per-position CE ``[B, K, S]`` (0 off
    the mask) and per-codebook (ce_sum, correct, count) ``[K]``."""
    card = logits.shape[-1]
    safe = torch.where(mask, targets, torch.zeros_like(targets))
    ce = F.cross_entropy(logits.reshape(-1, card), safe.reshape(-1), reduction="none").view_as(targets)
    ce = ce * mask
    hit = (logits.argmax(-1) == targets) & mask
    return ce, ce.sum(dim=(0, 2)), hit.sum(dim=(0, 2)).float(), mask.sum(dim=(0, 2)).float()


def ar_inputs(codes: torch.Tensor, pattern: DelayPattern) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """codes ``[B, K, T]`` → (inputs ``[B, K, S]``, targets ``[B, K, S]``, loss mask ``[B, K, S]``).

    ``S = T + K - 1``; inputs are the delayed sequence shifted right by one step behind a start step of
    special tokens, so step ``s`` predicts the pattern's step ``s``.
    """
    seq, valid = pattern.build(codes)
    start = torch.full_like(seq[:, :, :1], pattern.special_token)
    inputs = torch.cat([start, seq[:, :, :-1]], dim=2)
    return inputs, seq, valid[None].expand_as(seq)


def ar_loss(model: Callable, config: LMConfig, codes: torch.Tensor, cond: Conditions) -> LossOutput:
    """Mean over codebooks of the per-codebook CE on valid delay-pattern steps (audiocraft's MusicGen).

    ``model`` is a :class:`~instrumentgen.lm.model.CodecLM` or its DDP/compiled wrapper; codes ``[B, K, T]``.
    """
    pattern = DelayPattern(config.n_codebooks, config.special_token)
    inputs, targets, mask = ar_inputs(codes, pattern)
    logits = model(inputs, cond).logits
    _, ce_sum, correct, count = _masked_stats(logits, targets, mask)
    loss = (ce_sum / count.clamp(min=1)).mean()
    return LossOutput(loss, ce_sum.detach(), correct, count)


def magnet_loss(
    model: Callable,
    config: LMConfig,
    codes: torch.Tensor,
    cond: Conditions,
    masks: MagnetMask,
    normaliser: float | None = None,
) -> LossOutput:
    """MAGNeT: one stage per sample masked with a cosine-scheduled rate in spans, higher stages fully
    masked (``masks`` from :func:`~instrumentgen.lm.magnet.sample_magnet_mask` for codes ``[B, K, T]``);
    CE summed over the masked positions of the chosen stages, divided by ``normaliser`` (default: their
    number; under DDP the trainer passes the whole batch's count over the number of processes). Logits
    are computed at those positions only (:meth:`~instrumentgen.lm.model.CodecLM.forward` ``select``)."""
    inputs = apply_mask(codes, masks.input_mask.to(codes.device), config.mask_token)
    loss_mask = masks.loss_mask.to(codes.device)
    logits = model(inputs, cond, select=loss_mask).logits  # [M, card]: the loss positions only
    targets = codes[loss_mask]
    ce = F.cross_entropy(logits, targets, reduction="none")  # [M]
    books = loss_mask.nonzero(as_tuple=True)[1]
    k = config.n_codebooks
    per_book = torch.zeros(k, device=codes.device)
    ce_sum = per_book.index_add(0, books, ce.detach())
    correct = per_book.index_add(0, books, (logits.argmax(-1) == targets).float())
    count = torch.bincount(books, minlength=k).float()
    if normaliser is None:
        normaliser = float(loss_mask.sum().clamp(min=1))
    loss = ce.sum() / max(normaliser, 1e-9)
    return LossOutput(loss, ce_sum, correct, count)
