"""The two training objectives of the paper (Sections 2.2 and 2.4): autoregressive over MusicGen's delay
pattern (baseline, random and fixed variants) and MAGNeT's masked, non-autoregressive one (the fourth).

One :class:`Objective` object answers every question on which the two differ, so nothing else branches
on an objective's (or a variant's) name:

- the model: causal attention or not (:attr:`Objective.causal`);
- training: the masks drawn for a batch, the loss, and how per-stage CE sums reduce to the logged loss;
- generation: which decoder, named by the section of ``params.yaml``'s ``generate`` that holds its
  settings (:attr:`Objective.decoding_section`; :class:`~instrumentgen.generate.run.Decoder` runs it),
  and its forward passes per batch of notes.

Chosen once from the model config (:func:`objective_of`); a variant names its objective
(:mod:`instrumentgen.variants`).

This module imports no torch at load time, so the workflow can read an objective's decoding section
without loading torch (Snakemake parses its files before every run): the losses and masks are imported
when a method runs. It does not import the decoders, so that a change to decoding does not re-train the
models (:mod:`instrumentgen.codedeps` follows imports).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

    from instrumentgen.lm.conditioners import Conditions
    from instrumentgen.lm.config import LMConfig
    from instrumentgen.lm.losses import LossOutput
    from instrumentgen.lm.magnet import MagnetMask


class Objective(ABC):
    """What training and generation do under one objective (see module doc)."""

    name: ClassVar[str]
    label: ClassVar[str]  # how tables and logs name its decoding
    causal: ClassVar[bool]
    decoding_section: ClassVar[str]  # params.yaml generate.<section>: its decoder's settings

    @abstractmethod
    def training_masks(
        self, batch: int, config: LMConfig, n_frames: int, rng: np.random.Generator, span_length: int
    ) -> MagnetMask | None:
        """Random masks for a batch of codes ``[batch, K, n_frames]``, drawn for the whole global batch
        (so results do not depend on the number of processes); ``None`` where the objective has none."""

    @abstractmethod
    def loss(
        self,
        model: Callable,
        config: LMConfig,
        codes: torch.Tensor,
        cond: Conditions,
        masks: MagnetMask | None,
        normaliser: float | None,
    ) -> LossOutput:
        """The training loss on codes ``[B, K, T]`` (``masks``: this process's rows of
        :meth:`training_masks`; ``normaliser``: see :func:`~instrumentgen.lm.losses.magnet_loss`)."""

    @abstractmethod
    def reduce(self, ce_sum: torch.Tensor, count: torch.Tensor) -> float:
        """The logged loss from per-stage CE sums and position counts ``[K]``, reduced as :meth:`loss`
        reduces them."""

    @abstractmethod
    def decoding_steps(self, settings: Any, n_frames: int, n_codebooks: int) -> int:
        """Forward passes per batch of notes of ``n_frames`` frames."""


class Autoregressive(Objective):
    """MusicGen: next-token CE on the delay pattern, the mean over codebooks; decoded one step per frame
    (plus ``K - 1``) with a KV cache."""

    name = "ar"
    label = "AR"
    causal = True
    decoding_section = "sampling"

    def training_masks(self, batch, config, n_frames, rng, span_length):
        return None

    def loss(self, model, config, codes, cond, masks, normaliser):
        if masks is not None:
            raise ValueError("the AR objective takes no training masks")
        from instrumentgen.lm.losses import ar_loss

        return ar_loss(model, config, codes, cond)

    def reduce(self, ce_sum, count):
        return float((ce_sum / count.clamp(min=1)).mean())

    def decoding_steps(self, settings, n_frames, n_codebooks):
        return n_frames + n_codebooks - 1


class Magnet(Objective):
    """MAGNeT: CE on the masked spans of one stage per sample, summed over masked positions and divided by
    their number; decoded stage by stage in ``sum(steps)`` parallel passes."""

    name = "magnet"
    label = "MAGNeT"
    causal = False
    decoding_section = "magnet"

    def training_masks(self, batch, config, n_frames, rng, span_length):
        from instrumentgen.lm.magnet import sample_magnet_mask

        return sample_magnet_mask(batch, config.n_codebooks, n_frames, rng, span_length)

    def loss(self, model, config, codes, cond, masks, normaliser):
        if masks is None:
            raise ValueError("the MAGNeT objective needs training masks (Objective.training_masks)")
        from instrumentgen.lm.losses import magnet_loss

        return magnet_loss(model, config, codes, cond, masks, normaliser)

    def reduce(self, ce_sum, count):
        return float(ce_sum.sum() / count.sum().clamp(min=1))

    def decoding_steps(self, settings, n_frames, n_codebooks):
        return sum(settings.steps)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (Autoregressive(), Magnet())}


def get_objective(name: str) -> Objective:
    """The objective called ``name``; a ValueError lists the valid names otherwise."""
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"lm objective {name!r} is unknown; valid: {', '.join(OBJECTIVES)}") from None


def objective_of(config: LMConfig) -> Objective:
    """The objective a model config names."""
    return get_objective(config.objective)
