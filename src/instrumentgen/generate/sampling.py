"""Token sampling shared by the decoders: classifier-free guidance, temperature, top-k, top-p.

All draws come from an explicit ``torch.Generator``, so a seed fixes the whole sampling trajectory
(the paper fixes its sampler seed so that every variant follows the same random path).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from instrumentgen.checks import int_at_least, number_at_least, number_in_range


@dataclass(frozen=True)
class SamplingSettings:
    """temperature 0 (or top_k 1) is greedy; top_k 0 and top_p 0 disable those filters; cfg_coef 1
    is plain conditional decoding (no null branch is computed)."""

    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    cfg_coef: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", number_at_least("temperature", self.temperature, 0.0))
        object.__setattr__(self, "top_k", int_at_least("top_k", self.top_k, 0))
        object.__setattr__(self, "top_p", number_in_range("top_p", self.top_p, 0.0, 1.0))
        object.__setattr__(self, "cfg_coef", number_at_least("cfg_coef", self.cfg_coef, 0.0))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    @property
    def guided(self) -> bool:
        return self.cfg_coef != 1.0


def guide(cond_logits: torch.Tensor, null_logits: torch.Tensor, coef: float) -> torch.Tensor:
    """Classifier-free guidance ``coef * cond + (1 - coef) * null`` (= cond exactly when coef is 1)."""
    return cond_logits * coef + null_logits * (1.0 - coef)


def sample(
    logits: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None
) -> torch.Tensor:
    """Draw one token per row of ``logits`` ``[..., card]`` → ``[...]`` long.

    With top-k, the draw is over the ``k`` best candidates only (their softmax renormalised, as
    masking the others to -inf would give), so its cost does not grow with the codebook size.
    """
    if settings.greedy:
        return logits.argmax(dim=-1)
    shape = logits.shape[:-1]
    logits = logits.reshape(-1, logits.shape[-1]).float() / settings.temperature
    filtered = 0 < settings.top_p < 1
    candidates = None  # [N, k] token ids of the columns of `logits` once narrowed to the top k
    if 0 < settings.top_k < logits.shape[-1]:
        logits, candidates = logits.topk(settings.top_k, dim=-1, sorted=filtered)
    if filtered:
        if candidates is None:
            logits, candidates = logits.sort(dim=-1, descending=True)
        probs = logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > settings.top_p  # keep the token crossing top_p
        logits = logits.masked_fill(drop, float("-inf"))
    choice = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)  # [N, 1]
    if candidates is not None:
        choice = candidates.gather(-1, choice)
    return choice.view(shape)
