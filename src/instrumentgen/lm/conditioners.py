"""Condition tokens for cross-attention: pitch, velocity, family, source and the quantised CLAP embedding.

Each condition becomes one ``[d]`` token. Categorical conditions (paper Section 2.3) are a lookup table
followed by a linear layer; the CLAP embedding (Section 2.4) is quantised by a residual vector
quantiser (codebooks fitted by k-means on the training notes' embeddings, see :class:`ResidualVQ`) and
projected to ``d``. Every condition has its own learned *null* embedding that replaces the token when
the condition is dropped (attribute dropout in training, the null branch of classifier-free guidance at
inference), so a dropped condition is never a zero vector and no padding mask is needed: the model
always sees ``C = 5`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.kmeans import KMEANS_ITERS, residual_kmeans
from instrumentgen.nsynth.metadata import FAMILIES, PIANO_MAX, PIANO_MIN, SOURCES, VELOCITIES

CONDITIONS = ("pitch", "velocity", "family", "source", "clap")
# Not known when a musician asks for an instrument (paper Section 2.3): inference gives them their null
# embeddings (the generation protocols' drop_family / drop_source, validation "under inference conditions").
UNKNOWN_AT_INFERENCE = ("family", "source")


def inference_drop(batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[B, 5]`` drop mask of inference: :data:`UNKNOWN_AT_INFERENCE` dropped, everything else kept."""
    drop = torch.zeros(batch, len(CONDITIONS), dtype=torch.bool, device=device)
    drop[:, [CONDITIONS.index(n) for n in UNKNOWN_AT_INFERENCE]] = True
    return drop


class ConditionError(ValueError):
    """A conditioning value outside its range; the message names it."""


@dataclass
class Conditions:
    """A batch of raw conditions (class indices, see :func:`encode_categories`).

    pitch, velocity, family, source: ``[B]`` long class indices; clap: ``[B, D]`` float embeddings.
    drop: ``[B, 5]`` bool, True where the condition (in :data:`CONDITIONS` order) is replaced by its null
    embedding; ``None`` keeps everything.
    """

    pitch: torch.Tensor
    velocity: torch.Tensor
    family: torch.Tensor
    source: torch.Tensor
    clap: torch.Tensor
    drop: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Conditions:
        return Conditions(
            *(getattr(self, n).to(device) for n in CONDITIONS),
            drop=None if self.drop is None else self.drop.to(device),
        )

    def __len__(self) -> int:
        return int(self.pitch.shape[0])

    def with_drop(self, drop: torch.Tensor | None) -> Conditions:
        return Conditions(*(getattr(self, n) for n in CONDITIONS), drop=drop)

    def index(self, rows: torch.Tensor | slice) -> Conditions:
        return Conditions(
            *(getattr(self, n)[rows] for n in CONDITIONS),
            drop=None if self.drop is None else self.drop[rows],
        )


def encode_categories(pitch, velocity, family, source) -> dict[str, np.ndarray]:
    """MIDI pitch (21..108), NSynth velocity (25/50/75/100/127), family and source ids → class indices.

    Raises :class:`ConditionError` naming the first value outside its range.
    """
    pitch = np.asarray(pitch, dtype=np.int64)
    velocity = np.asarray(velocity, dtype=np.int64)
    family = np.asarray(family, dtype=np.int64)
    source = np.asarray(source, dtype=np.int64)
    bad = pitch[(pitch < PIANO_MIN) | (pitch > PIANO_MAX)]
    if bad.size:
        raise ConditionError(f"pitch {int(bad[0])} is outside MIDI {PIANO_MIN}..{PIANO_MAX}")
    vel_lut = np.full(128, -1, dtype=np.int64)
    vel_lut[list(VELOCITIES)] = np.arange(len(VELOCITIES))
    bad = velocity[(velocity < 0) | (velocity > 127)]
    vel_idx = vel_lut[np.clip(velocity, 0, 127)]
    if bad.size or (vel_idx < 0).any():
        value = int(bad[0]) if bad.size else int(velocity[vel_idx < 0][0])
        raise ConditionError(f"velocity {value} is not one of {list(VELOCITIES)}")
    for name, values, n in (("family", family, len(FAMILIES)), ("source", source, len(SOURCES))):
        bad = values[(values < 0) | (values >= n)]
        if bad.size:
            raise ConditionError(f"{name} id {int(bad[0])} is outside 0..{n - 1}")
    return {"pitch": pitch - PIANO_MIN, "velocity": vel_idx, "family": family, "source": source}


class CategoricalConditioner(nn.Module):
    """Lookup table + linear layer: ``[B]`` class indices → ``[B, d]`` tokens."""

    def __init__(self, name: str, n_classes: int, category_dim: int, dim: int):
        super().__init__()
        self.name = name
        self.n_classes = n_classes
        self.table = nn.Embedding(n_classes, category_dim)
        self.proj = nn.Linear(category_dim, dim)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        # Checked on CPU tensors only: inputs are validated by encode_categories, and a check of a GPU
        # tensor would synchronise the device at every step.
        if (
            index.device.type == "cpu"
            and index.numel()
            and (int(index.min()) < 0 or int(index.max()) >= self.n_classes)
        ):
            value = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise ConditionError(f"{self.name} class index {value} is outside 0..{self.n_classes - 1}")
        return self.proj(self.table(index))


class ResidualVQ(nn.Module):
    """Residual vector quantiser of CLAP embeddings: ``[B, D]`` → quantised ``[B, D]``.

    Stage ``q`` quantises the residual left by stages ``< q`` to its nearest of ``bins`` codes. Call
    :meth:`initialize` first: it fits the codebooks by residual k-means (``lm.kmeans``) on the training
    notes' embeddings. With ``ema=False`` (``lm.clap_quantiser: frozen``, the default) they stay as
    fitted. With ``ema=True`` (``ema``) training then moves them by exponential moving averages of their
    assigned vectors, as audiocraft's CLAP quantiser (statistics summed over all processes under DDP, so
    every rank keeps identical codebooks).

    Why (benchmarks/clap_quantiser.py, tiny profile): fed only what a variant conditions on, the fixed
    scheme's quantiser sees one embedding per training instrument, stage 0 memorises those points and
    the residual stages collapse to zero, so an unseen instrument is snapped onto a training one
    (cosine of a quantised test note to itself 0.58, against 0.85 for baseline). Fitting on all training
    notes keeps 0.85 and the test instruments' identity (0.89 nearest-centroid retrieval) under every
    scheme, with or without EMA. audiocraft's remedies do not fix it: k-means on the scheme's draws (or
    on the first batch) collapses the same way, and expiring dead codes (re-seeding them from the batch,
    which under DDP would need draws identical on every process) refills them with the same few points
    (and at audiocraft's threshold 2 with a 32-row batch re-seeds every code at every step); it does not
    help baseline either, so codes are not re-seeded here. Frozen codebooks measure as EMA ones do, need
    no collective call per step, and make every variant share one quantiser, so the variants differ only
    in their pairing.
    """

    def __init__(
        self, dim: int, n_q: int, bins: int, ema: bool = False, decay: float = 0.99, eps: float = 1e-5
    ):
        super().__init__()
        self.dim, self.n_q, self.bins, self.ema, self.decay, self.eps = dim, n_q, bins, ema, decay, eps
        self.register_buffer("codebooks", torch.zeros(n_q, bins, dim))
        self.register_buffer("cluster_size", torch.ones(n_q, bins))
        self.register_buffer("embed_sum", torch.zeros(n_q, bins, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def initialize(self, data: torch.Tensor, generator: torch.Generator, iters: int = KMEANS_ITERS) -> None:
        """Fit every stage's codebook by k-means (``iters`` Lloyd iterations from ``bins`` data rows drawn
        with ``generator``) on the residuals of ``data`` ``[N, D]``, on ``data``'s device. The EMA
        statistics start as one vector per code (weight 1, as ``cluster_size``). Deterministic given
        ``generator`` on a CPU."""
        if data.ndim != 2 or data.shape[1] != self.dim or data.shape[0] == 0:
            raise ValueError(f"RVQ initialisation data must be [N, {self.dim}], got {tuple(data.shape)}")
        codebooks = residual_kmeans(data.float(), self.n_q, self.bins, iters, generator)
        self.codebooks.copy_(codebooks.to(self.codebooks.device))
        self.embed_sum.copy_(self.codebooks)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    def _nearest(self, x: torch.Tensor, q: int) -> torch.Tensor:
        return torch.cdist(x, self.codebooks[q]).argmin(dim=1)

    def forward(
        self, x: torch.Tensor, update: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(quantised [B, D], codes [B, n_q])``; when training with ``ema``, updates the codebooks
        from the rows selected by ``update`` (``[B]`` bool; all rows when None)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ConditionError(f"CLAP embeddings must be [B, {self.dim}], got {tuple(x.shape)}")
        with torch.autocast(x.device.type, enabled=False):  # EMA statistics in float32, also under bf16
            return self._quantise(x.float(), update)

    def _quantise(self, x: torch.Tensor, update: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        residual = x
        quantised = torch.zeros_like(x)
        codes = []
        for q in range(self.n_q):
            idx = self._nearest(residual, q)
            if self.training and self.ema:
                self._ema_update(q, residual, idx, update)
            chosen = self.codebooks[q][idx]
            quantised = quantised + chosen
            residual = residual - chosen
            codes.append(idx)
        return quantised.detach(), torch.stack(codes, dim=1)

    @torch.no_grad()
    def _ema_update(
        self, q: int, residual: torch.Tensor, idx: torch.Tensor, update: torch.Tensor | None
    ) -> None:
        """EMA step of stage ``q`` from the rows of ``residual`` ``[B, D]`` selected by ``update`` ``[B]``."""
        onehot = torch.zeros(residual.shape[0], self.bins, device=residual.device)
        onehot[torch.arange(residual.shape[0], device=residual.device), idx] = 1.0
        if update is not None:
            onehot = onehot * update[:, None].to(onehot.dtype)
        counts = onehot.sum(0)
        sums = onehot.t() @ residual
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size[q].mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum[q].mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size[q].sum()
        size = (self.cluster_size[q] + self.eps) / (n + self.bins * self.eps) * n
        self.codebooks[q].copy_(self.embed_sum[q] / size[:, None])


class ConditionEncoder(nn.Module):
    """All five conditioners: :class:`Conditions` → ``[B, 5, d]`` cross-attention tokens."""

    def __init__(self, config: LMConfig):
        super().__init__()
        d, c = config.dim, config.category_dim
        self.categorical = nn.ModuleDict(
            {
                "pitch": CategoricalConditioner("pitch", PIANO_MAX - PIANO_MIN + 1, c, d),
                "velocity": CategoricalConditioner("velocity", len(VELOCITIES), c, d),
                "family": CategoricalConditioner("family", len(FAMILIES), c, d),
                "source": CategoricalConditioner("source", len(SOURCES), c, d),
            }
        )
        self.rvq = ResidualVQ(
            config.clap_dim, config.clap_n_q, config.clap_bins, ema=config.clap_quantiser == "ema"
        )
        self.clap_proj = nn.Linear(config.clap_dim, d)
        self.null = nn.Parameter(torch.randn(len(CONDITIONS), d) * 0.02)

    @torch.no_grad()
    def initialize_clap(self, embeddings: torch.Tensor, generator: torch.Generator) -> None:
        """Fit the CLAP quantiser on training embeddings ``[N, D]`` (L2-normalised as in forward): every
        training note's own embedding, whatever the variant's pairing (see :class:`ResidualVQ`)."""
        self.rvq.initialize(torch.nn.functional.normalize(embeddings.float(), dim=-1), generator)

    def forward(self, cond: Conditions) -> torch.Tensor:
        if not bool(self.rvq.initialized):
            raise RuntimeError(
                "the CLAP quantiser is not initialised: call initialize_clap(embeddings) first"
            )
        clap = torch.nn.functional.normalize(cond.clap.float(), dim=-1)
        used = None if cond.drop is None else ~cond.drop[:, CONDITIONS.index("clap")]
        quantised, _ = self.rvq(clap, update=used)  # dropped embeddings do not move the codebooks
        tokens = [self.categorical[name](getattr(cond, name)) for name in CONDITIONS[:4]]
        tokens.append(self.clap_proj(quantised))
        out = torch.stack(tokens, dim=1)  # [B, 5, d]
        if cond.drop is not None:
            out = torch.where(cond.drop[:, :, None], self.null[None].to(out.dtype), out)
        return out
