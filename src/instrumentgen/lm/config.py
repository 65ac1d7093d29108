"""Size and conditioning settings of the codec language model, from ``params.yaml``'s ``lm`` section.

The paper's model (Section 2.2): 12 layers, 16 heads, d = 512, 4 codebooks of 1024 codes. The CLAP
embedding (512-d) is quantised by a residual vector quantiser with ``clap_n_q`` stages of ``clap_bins``
codes (audiocraft's defaults: 12 x 1024; the paper does not state its RVQ size), fitted by k-means on the
training notes' embeddings and then ``frozen`` (default) or moved by ``ema`` updates in training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from instrumentgen.checks import known_keys, number_in_range, positive_int

CLAP_QUANTISERS = ("frozen", "ema")  # see lm.conditioners.ResidualVQ


@dataclass(frozen=True)
class LMConfig:
    """Everything that fixes the shapes of a :class:`~instrumentgen.lm.model.CodecLM`'s weights, plus
    the objective (its name; :mod:`instrumentgen.lm.objective` holds what it means) and how the
    CLAP quantiser learns (``clap_quantiser``: ``frozen`` k-means codebooks or ``ema`` updates)."""

    n_codebooks: int = 4
    codebook_size: int = 1024
    dim: int = 512
    n_layers: int = 12
    n_heads: int = 16
    ffn_mult: int = 4
    dropout: float = 0.0
    clap_dim: int = 512
    clap_n_q: int = 12
    clap_bins: int = 1024
    category_dim: int = 64
    max_frames: int = 512
    clap_quantiser: str = "frozen"
    objective: str = "ar"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "objective":
                # the objectives' home imports the losses, which read this config: imported here
                from instrumentgen.lm.objective import get_objective

                get_objective(value)
            elif f.name == "clap_quantiser":
                if value not in CLAP_QUANTISERS:
                    raise ValueError(
                        f"lm clap_quantiser {value!r} is unknown; valid: {', '.join(CLAP_QUANTISERS)}"
                    )
            elif f.name == "dropout":
                dropout = number_in_range("lm dropout", value, 0.0, 1.0, high_inclusive=False)
                object.__setattr__(self, f.name, dropout)
            else:
                object.__setattr__(self, f.name, positive_int(f"lm {f.name}", value))
        if self.dim % 2:
            raise ValueError(f"lm dim must be even (sinusoidal positions), got {self.dim}")
        if self.dim % self.n_heads:
            raise ValueError(f"lm dim {self.dim} is not divisible by n_heads {self.n_heads}")

    @property
    def special_token(self) -> int:
        """Id of the "no code here" token (delay-pattern padding and the start step) = codebook size."""
        return self.codebook_size

    @property
    def mask_token(self) -> int:
        """Id of MAGNeT's mask token."""
        return self.codebook_size + 1

    @property
    def vocab_size(self) -> int:
        """Input vocabulary per codebook: the codes plus the special and mask tokens."""
        return self.codebook_size + 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LMConfig:
        known_keys("lm config keys", values, (f.name for f in fields(cls)))
        return cls(**values)

    def mismatch(self, other: LMConfig) -> list[str]:
        """Human-readable differences ``["dim: 512 != 256", ...]`` (empty when equal)."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]
