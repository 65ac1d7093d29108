"""MusicGen-style codec language model: a transformer decoder over ``K`` parallel codebook streams.

Input ``[B, K, S]`` token ids (codes, the special token, MAGNeT's mask token) → one embedding table per
codebook, summed → sinusoidal positions → ``n_layers`` pre-norm blocks (self-attention, cross-attention
over the ``[B, C, d]`` condition tokens, feed-forward) → final norm → one linear head per codebook →
logits ``[B, K, S, card]``. Self-attention is causal for the AR objective (an explicit boolean mask built
from absolute positions, so a KV cache offset is handled the same way) and bidirectional for MAGNeT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from instrumentgen.lm.conditioners import ConditionEncoder, Conditions
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.objective import objective_of


def sinusoidal_positions(positions: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """``[S]`` positions → ``[S, dim]`` embeddings (cosine half, then sine half, as audiocraft)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=positions.device) / half)
    angles = positions.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


@contextmanager
def cpu_attention_in_float32(q: torch.Tensor) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """Where attention on the queries ``q`` runs: yields the cast to apply to ``q``, ``k`` and ``v``.

    On a CPU under bfloat16 autocast (tiny training, ``train.precision`` native or bf16) attention runs
    in float32 with autocast off: PyTorch's CPU flash-attention backward is ~7x slower in bfloat16 than
    in float32 (profiled on the 2-core AMD EPYC, tiny LM, batch 64: 119 against 16 ms a step, which left
    a bf16 step at 0.32 s against 0.37 s in float32; with this, 0.21 s). Its sequences are short, so
    float32 attention costs little. Elsewhere (CUDA, or no autocast) nothing changes.
    """
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            yield lambda t: t.float()
    else:
        yield lambda t: t


@dataclass
class LayerCache:
    """One layer's keys and values: self-attention ``[B, H, capacity, d_h]`` buffers whose first ``length``
    steps are filled, and cross-attention over the conditions ``[B, H, C, d_h]``.

    A cache from :meth:`CodecLM.start_cache` is preallocated: each decoding step writes its keys and
    values in place (no reallocation). One from a plain forward pass is exactly full and grows by
    concatenation. Steps are written in place, so continue a preallocated cache along one path only.
    """

    self_k: torch.Tensor
    self_v: torch.Tensor
    cross_k: torch.Tensor
    cross_v: torch.Tensor
    length: int

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> LayerCache:
        """Append the keys and values ``[B, H, S, d_h]`` of ``S`` new steps; returns the cache that holds
        them (same buffers when they fit)."""
        end = self.length + k.shape[2]
        if end > self.self_k.shape[2]:
            past = slice(None), slice(None), slice(0, self.length)
            self_k = torch.cat([self.self_k[past], k], dim=2)
            self_v = torch.cat([self.self_v[past], v], dim=2)
        else:
            self_k, self_v = self.self_k, self.self_v
            self_k[:, :, self.length : end] = k
            self_v[:, :, self.length : end] = v
        return LayerCache(self_k, self_v, self.cross_k, self.cross_v, end)

    def keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled steps ``[B, H, length, d_h]`` (views of the buffers)."""
        return self.self_k[:, :, : self.length], self.self_v[:, :, : self.length]


class Attention(nn.Module):
    """Multi-head attention without biases (as MusicGen), on ``F.scaled_dot_product_attention``."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.dropout = dropout

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, d]`` → ``[B, H, S, d_h]``."""
        b, s, d = x.shape
        return x.view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.heads(k), self.heads(v)

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | bool | None
    ) -> torch.Tensor:
        """Queries from ``x`` ``[B, S, d]`` over ``k, v`` ``[B, H, S_k, d_h]``; ``mask``: ``[S, S_k]`` bool
        (True = may attend), True for plain causal attention over ``S = S_k`` steps, or None (everywhere)."""
        q = self.heads(self.q(x))
        causal = mask is True
        with cpu_attention_in_float32(q) as cast:
            y = F.scaled_dot_product_attention(
                cast(q),
                cast(k),
                cast(v),
                attn_mask=None if causal else mask,
                is_causal=causal,
                dropout_p=self.dropout if self.training else 0.0,
            ).to(q.dtype)
        b, h, s, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, s, h * dh))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, cross-attention over conditions, feed-forward."""

    def __init__(self, config: LMConfig):
        super().__init__()
        d = config.dim
        self.norm_self = nn.LayerNorm(d)
        self.self_attn = Attention(d, config.n_heads, config.dropout)
        self.norm_cross = nn.LayerNorm(d)
        self.cross_attn = Attention(d, config.n_heads, config.dropout)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, config.ffn_mult * d, bias=False),
            nn.GELU(),
            nn.Linear(config.ffn_mult * d, d, bias=False),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        mask: torch.Tensor | bool | None,
        cache: LayerCache | None = None,
    ) -> tuple[torch.Tensor, LayerCache]:
        h = self.norm_self(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:
            cache = cache.extend(k, v)
            k, v = cache.keys_values()
        else:
            cache = LayerCache(k, v, *self.cross_attn.keys_values(cond), length=k.shape[2])
        x = x + self.drop(self.self_attn.attend(h, k, v, mask))
        x = x + self.drop(self.cross_attn.attend(self.norm_cross(x), cache.cross_k, cache.cross_v, None))
        x = x + self.drop(self.ffn(self.norm_ffn(x)))
        return x, cache

    def start_cache(self, cond: torch.Tensor, capacity: int) -> LayerCache:
        """An empty cache for ``capacity`` steps over the condition tokens ``cond`` ``[B, C, d]``."""
        ck, cv = self.cross_attn.keys_values(cond)
        b, h, _, dh = ck.shape
        empty = ck.new_zeros(b, h, capacity, dh)
        return LayerCache(empty, torch.zeros_like(empty), ck, cv, length=0)


@dataclass
class LMOutput:
    """logits ``[B, K, S, card]`` (float32) and the per-layer caches (for incremental decoding)."""

    logits: torch.Tensor
    cache: list[LayerCache]


class CodecLM(nn.Module):
    """The codec LM of the paper (Section 2.2) with its conditioners (Sections 2.3 and 2.4)."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.objective = objective_of(config)
        d = config.dim
        self.conditions = ConditionEncoder(config)
        self.embed = nn.ModuleList(nn.Embedding(config.vocab_size, d) for _ in range(config.n_codebooks))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.ModuleList(
            nn.Linear(d, config.codebook_size, bias=False) for _ in range(config.n_codebooks)
        )
        # MusicGen's gaussian init (std 0.02) for the transformer, code embeddings and heads only. The
        # conditioners keep PyTorch's default init, as audiocraft's do: with std 0.02 in the lookup table
        # and its projection as well, a categorical token starts at rms ~0.002 (and its cross-attention
        # keys/values at ~1e-5), so pitch and velocity barely reach the model for hundreds of steps.
        for part in (self.embed, self.blocks, self.norm, self.heads):
            part.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def encode_conditions(self, cond: Conditions) -> torch.Tensor:
        """:class:`Conditions` → ``[B, 5, d]`` condition tokens."""
        return self.conditions(cond)

    def forward(
        self,
        tokens: torch.Tensor,
        cond: Conditions | torch.Tensor,
        cache: list[LayerCache] | None = None,
        codebook: int | None = None,
        select: torch.Tensor | None = None,
    ) -> LMOutput:
        """Logits for every step of ``tokens`` ``[B, K, S]``.

        ``cond`` is a :class:`Conditions` batch or already encoded tokens ``[B, C, d]``. With ``cache``
        (from a previous call), ``tokens`` are the next steps after the cached ones (AR decoding). With
        ``codebook``, only that codebook's head runs: logits ``[B, 1, S, card]`` (MAGNeT decodes one
        codebook stage at a time). With ``select`` (``[B, K, S]`` bool), only the selected (row, codebook,
        step) positions get logits: ``[M, card]`` in the order of ``tokens[select]`` (MAGNeT's loss needs
        the masked positions of one stage per row: a fraction of the heads' work).
        """
        cfg = self.config
        if tokens.ndim != 3 or tokens.shape[1] != cfg.n_codebooks:
            raise ValueError(f"tokens must be [B, {cfg.n_codebooks}, S], got {tuple(tokens.shape)}")
        cond_tokens = self.encode_conditions(cond) if isinstance(cond, Conditions) else cond
        if cond_tokens.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"{cond_tokens.shape[0]} condition rows for a batch of {tokens.shape[0]} token sequences"
            )
        past = 0 if cache is None else cache[0].length
        steps = tokens.shape[2]
        if past + steps > cfg.max_frames + cfg.n_codebooks:
            raise ValueError(
                f"sequence of {past + steps} steps exceeds max_frames + n_codebooks = "
                f"{cfg.max_frames + cfg.n_codebooks}"
            )
        x = sum(self.embed[k](tokens[:, k]) for k in range(cfg.n_codebooks))  # [B, S, d]
        positions = torch.arange(past, past + steps, device=tokens.device)
        x = x + sinusoidal_positions(positions, cfg.dim).to(x.dtype)
        mask: torch.Tensor | bool | None = None
        if self.objective.causal:
            if cache is None:
                mask = True  # causal over a square [S, S]: SDPA's is_causal (flash kernels), no custom mask
            elif steps > 1:  # a single new step attends to every cached one: no mask
                key_pos = torch.arange(past + steps, device=tokens.device)
                mask = key_pos[None, :] <= positions[:, None]  # [S, past + S]
        hidden, new_cache = self.backbone(x, cond_tokens, mask, cache)
        if select is not None:
            return LMOutput(self.selected_logits(hidden, select).float(), new_cache)
        heads = self.heads if codebook is None else [self.heads[codebook]]
        logits = torch.stack([head(hidden) for head in heads], dim=1)
        return LMOutput(logits.float(), new_cache)

    def selected_logits(self, hidden: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """Logits ``[M, card]`` of the ``M`` True positions of ``select`` ``[B, K, S]`` from the final
        hidden states ``[B, S, d]``, each through its codebook's head.

        A head with no selected position still enters the graph (times zero), so every parameter gets a
        gradient, as DistributedDataParallel requires."""
        if select.shape != (hidden.shape[0], self.config.n_codebooks, hidden.shape[1]):
            raise ValueError(
                f"select must be [B, K, S] = {(hidden.shape[0], self.config.n_codebooks, hidden.shape[1])}, "
                f"got {tuple(select.shape)}"
            )
        rows, books, steps = select.nonzero(as_tuple=True)
        picked = hidden[rows, steps]  # [M, d]
        logits = picked.new_zeros(len(rows), self.config.codebook_size)
        for k, head in enumerate(self.heads):
            at = (books == k).nonzero(as_tuple=True)[0]
            if len(at):
                logits = logits.index_copy(0, at, head(picked[at]))
            else:
                logits = logits + 0.0 * head.weight.sum()
        return logits

    def backbone(
        self,
        x: torch.Tensor,
        cond_tokens: torch.Tensor,
        mask: torch.Tensor | bool | None,
        cache: list[LayerCache] | None = None,
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        """The transformer stack and final norm: ``[B, S, d]`` inputs → hidden states ``[B, S, d]`` and
        caches (the heads run in :meth:`forward`).

        Kept free of data-dependent Python control flow, so that it compiles as one graph
        (:meth:`compile_backbone`)."""
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block(x, cond_tokens, mask, None if cache is None else cache[i])
            new_cache.append(layer_cache)
        return self.norm(x), new_cache

    def start_cache(self, cond_tokens: torch.Tensor, capacity: int) -> list[LayerCache]:
        """Empty per-layer caches for incremental decoding of up to ``capacity`` steps over the condition
        tokens ``[B, C, d]``: their keys and values are preallocated and filled in place."""
        limit = self.config.max_frames + self.config.n_codebooks
        if not 1 <= capacity <= limit:
            raise ValueError(
                f"cache capacity must be in 1..{limit} (max_frames + n_codebooks), got {capacity}"
            )
        return [block.start_cache(cond_tokens, capacity) for block in self.blocks]

    def compile_backbone(self, **options) -> None:
        """Replace :meth:`backbone` by its ``torch.compile``d version (training on a GPU)."""
        self.backbone = torch.compile(self.backbone, **options)

    def count_parameters(self) -> dict[str, int]:
        """Trainable parameters, and the CLAP quantiser's codebooks (buffers fitted to the training data)."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        rvq = self.conditions.rvq.codebooks.numel()
        return {"trainable": trainable, "rvq_codebooks": rvq, "total": trainable + rvq}
