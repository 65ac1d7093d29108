"""MAGNeT iterative decoding (non-causal model): codebook stages one after another, each in a fixed
number of steps (default [20, 10, 10, 10], the paper's 50 forward passes against 345 AR steps).

Within stage ``k``: every frame of stage ``k`` and above starts masked. At step ``i`` of ``n`` the
model predicts all positions at once (one pass over ``[conditional; null]`` rows), masked positions
are sampled (top-p, temperature annealed linearly from ``temperature`` to 0), and then the least
confident spans of ``span_length`` frames among those decoded *in this stage* are masked again, so
that ``floor(n_spans * cos(pi/2 * (i + 1) / n))`` spans stay masked: none after the last step.
The CFG coefficient is annealed linearly from ``cfg_max`` to ``cfg_min`` over the steps of a stage.
Positions fixed at an earlier step keep their tokens (audiocraft's scheme: confidence of a kept
token is +inf, so it is never re-masked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from instrumentgen.generate.ar import condition_tokens, prepare
from instrumentgen.generate.sampling import SamplingSettings, guide, sample
from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.model import CodecLM


@dataclass(frozen=True)
class MagnetSettings:
    steps: tuple[int, ...] = (20, 10, 10, 10)
    temperature: float = 3.0
    top_p: float = 0.9
    cfg_max: float = 10.0
    cfg_min: float = 1.0
    span_length: int = 3

    def __post_init__(self) -> None:
        if not self.steps or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.steps):
            raise ValueError(f"MAGNeT steps must be positive ints, one per codebook, got {self.steps!r}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.cfg_min < 0 or self.cfg_max < 0:
            raise ValueError(
                f"bad MAGNeT sampling settings: temperature {self.temperature}, top_p {self.top_p}, "
                f"cfg {self.cfg_max}->{self.cfg_min}"
            )
        if self.span_length < 1:
            raise ValueError(f"span_length must be >= 1, got {self.span_length}")


def masked_spans(n_spans: int, step: int, n_steps: int) -> int:
    """Spans still masked after ``step`` (0-based) of ``n_steps``: floor(n_spans cos(pi/2 (step+1)/n))."""
    return int(math.floor(n_spans * math.cos(math.pi / 2 * (step + 1) / n_steps) + 1e-9))


@torch.no_grad()
def generate_magnet(
    model: CodecLM,
    cond: Conditions,
    n_frames: int,
    settings: MagnetSettings | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Codes ``[B, K, n_frames]`` by MAGNeT's iterative decoding; exactly ``sum(settings.steps)`` forward
    passes, each over the ``[conditional; null]`` rows."""
    settings = settings or MagnetSettings()
    cfg = model.config
    if len(settings.steps) != cfg.n_codebooks:
        raise ValueError(
            f"MAGNeT steps {settings.steps} must give one count per codebook ({cfg.n_codebooks})"
        )
    cond = prepare(model, cond, n_frames, "magnet")
    device = cond.pitch.device
    b = len(cond)
    tokens_cond = condition_tokens(model, cond, guided=True)
    codes = torch.full((b, cfg.n_codebooks, n_frames), cfg.mask_token, dtype=torch.long, device=device)
    n_spans = math.ceil(n_frames / settings.span_length)
    span_of = torch.arange(n_frames, device=device) // settings.span_length  # [T]
    for stage, n_steps in enumerate(settings.steps):
        kept = torch.zeros(b, n_frames, dtype=torch.bool, device=device)  # decided and kept in this stage
        for step in range(n_steps):
            progress = step / n_steps
            coef = settings.cfg_max + (settings.cfg_min - settings.cfg_max) * progress
            sampling = SamplingSettings(
                temperature=settings.temperature * (1 - progress),
                top_k=0,
                top_p=settings.top_p,
                cfg_coef=coef,
            )
            logits = model(codes.repeat(2, 1, 1), tokens_cond, codebook=stage).logits[:, 0]  # [2B, T, card]
            logits = guide(logits[:b], logits[b:], coef)
            drawn = sample(logits, sampling, generator)  # [B, T]
            probs = logits.float().softmax(-1).gather(-1, drawn[..., None])[..., 0]
            current = codes[:, stage]
            current = torch.where(kept, current, drawn)
            # least confident spans among this step's draws are masked again (kept tokens never are)
            confidence = torch.where(kept, torch.full_like(probs, float("inf")), probs)
            span_conf = torch.full((b, n_spans), float("inf"), device=device)
            span_conf = span_conf.scatter_reduce(1, span_of.expand(b, -1), confidence, reduce="amin")
            remask = masked_spans(n_spans, step, n_steps)
            masked_span = torch.zeros(b, n_spans, dtype=torch.bool, device=device)
            if remask > 0:
                worst = span_conf.topk(remask, dim=1, largest=False).indices
                masked_span.scatter_(1, worst, True)
            masked = masked_span[:, span_of]  # [B, T]
            codes[:, stage] = torch.where(masked, torch.full_like(current, cfg.mask_token), current)
            kept = ~masked
    return codes
