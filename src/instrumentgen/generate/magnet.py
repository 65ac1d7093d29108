"""MAGNeT iterative decoding (non-causal model), as audiocraft's ``MagnetLMModel._generate_stage`` with
its defaults (non-overlapping spans, a span scored by its most probable token): codebook stages one
after another, each in a fixed number of steps (default [20, 10, 10, 10], the paper's 50 forward passes
against 345 AR steps).

Stage ``k`` is cut into spans of ``span_length`` frames, the length the model was trained with (read
from its file, see :meth:`~instrumentgen.generate.run.Decoder.for_checkpoint`). Every frame of stage
``k`` and above starts masked. At step ``i`` of ``n``, with the masking fraction
``p = cos(pi/2 * i / (n - 1))`` (1 for a one-step stage, 0 at the last step of longer ones):

1. ``max(floor(p * n_spans), 1)`` spans are masked: all of them at step 0, later the least confident
   of the spans drawn at step ``i - 1``. Every other span is final;
2. one forward pass over ``[conditional; null]`` rows, guided with ``p * cfg_max + (1 - p) * cfg_min``;
3. masked positions are drawn (top-p) at temperature ``max(temperature * (n - 1 - i) / n, 0.01)``;
4. a span's confidence is the largest probability, at that temperature, among the tokens drawn in it.

So at least one span is redrawn at every step, the last included, and nothing is left masked.
Deviation from audiocraft: a sequence whose length is not a multiple of ``span_length`` keeps a shorter
last span (audiocraft trims the sequence to a multiple).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from instrumentgen.checks import int_at_least, is_int
from instrumentgen.generate.conditioning import condition_tokens, prepare
from instrumentgen.generate.sampling import SamplingSettings, guide, sample
from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.model import CodecLM

MIN_TEMPERATURE = 0.01  # audiocraft's floor: the last steps are near-greedy, never a division by 0


@dataclass(frozen=True)
class MagnetSettings:
    """Decoding settings. ``span_length`` is not a user setting: it is the model's (see module doc)."""

    steps: tuple[int, ...] = (20, 10, 10, 10)
    temperature: float = 3.0
    top_p: float = 0.9
    cfg_max: float = 10.0
    cfg_min: float = 1.0
    span_length: int = 3

    def __post_init__(self) -> None:
        if not self.steps or not all(is_int(s) and s >= 1 for s in self.steps):
            raise ValueError(f"MAGNeT steps must be positive ints, one per codebook, got {self.steps!r}")
        object.__setattr__(self, "steps", tuple(int(s) for s in self.steps))
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.cfg_min < 0 or self.cfg_max < 0:
            raise ValueError(
                f"bad MAGNeT sampling settings: temperature {self.temperature}, top_p {self.top_p}, "
                f"cfg {self.cfg_max}->{self.cfg_min}"
            )
        object.__setattr__(self, "span_length", int_at_least("span_length", self.span_length, 1))


@dataclass(frozen=True)
class StepPlan:
    """What step ``i`` of an ``n``-step stage does: mask fraction, CFG coefficient, temperature."""

    mask_fraction: float
    cfg_coef: float
    temperature: float


def step_plan(settings: MagnetSettings, step: int, n_steps: int) -> StepPlan:
    """The schedule of the module doc for ``step`` (0-based) of ``n_steps``."""
    if not 0 <= step < n_steps:
        raise ValueError(f"step {step} is outside 0..{n_steps - 1}")
    p = math.cos(math.pi / 2 * step / (n_steps - 1)) if n_steps > 1 else 1.0
    return StepPlan(
        mask_fraction=p,
        cfg_coef=p * settings.cfg_max + (1 - p) * settings.cfg_min,
        temperature=max(settings.temperature * (n_steps - 1 - step) / n_steps, MIN_TEMPERATURE),
    )


def masked_spans(n_spans: int, mask_fraction: float) -> int:
    """Spans masked at a step of mask fraction ``p``: ``max(floor(p * n_spans), 1)``."""
    return max(int(math.floor(n_spans * mask_fraction + 1e-9)), 1)


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
    span_of = torch.arange(n_frames, device=device) // settings.span_length  # [T] span of each frame
    for stage, n_steps in enumerate(settings.steps):
        # [B, n_spans] 1 - confidence of each span's latest draw; -inf: final, never masked again
        doubt = torch.zeros(b, n_spans, device=device)
        for step in range(n_steps):
            plan = step_plan(settings, step, n_steps)
            worst = doubt.topk(masked_spans(n_spans, plan.mask_fraction), dim=1).indices  # [B, m]
            masked_span = torch.zeros(b, n_spans, dtype=torch.bool, device=device).scatter_(1, worst, True)
            masked = masked_span[:, span_of]  # [B, T]
            codes[:, stage] = torch.where(masked, torch.full_like(codes[:, stage], cfg.mask_token),
                                          codes[:, stage])
            logits = model(codes.repeat(2, 1, 1), tokens_cond, codebook=stage).logits[:, 0]  # [2B, T, card]
            logits = guide(logits[:b], logits[b:], plan.cfg_coef)
            sampling = SamplingSettings(temperature=plan.temperature, top_k=0, top_p=settings.top_p,
                                        cfg_coef=plan.cfg_coef)
            drawn = sample(logits, sampling, generator)  # [B, T]
            probs = (logits.float() / plan.temperature).softmax(-1).gather(-1, drawn[..., None])[..., 0]
            codes[:, stage] = torch.where(masked, drawn, codes[:, stage])
            confidence = torch.zeros(b, n_spans, device=device).scatter_reduce(
                1, span_of.expand(b, -1), probs, reduce="amax", include_self=False
            )
            doubt = torch.where(masked_span, 1 - confidence, torch.full_like(confidence, float("-inf")))
    return codes
