"""Small random codec LMs, condition batches, transformers MusicGen models and training runs, built for
the tests and the benchmarks (one place for both; nothing in the pipeline imports this module).

The models are randomly initialised: the benchmarks time them (speed does not depend on the weights'
values), the tests check what decoding and training do with them. ``weight_std`` gives a model
"trained-looking" weights: the 0.02-std initialisation makes the conditions' effect on the logits ~1e-5
at d = 32, too close to float noise to tell apart.
"""

from __future__ import annotations

from pathlib import Path

import torch

from instrumentgen.lm.conditioners import Conditions
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.model import CodecLM

TINY_LM = {
    "dim": 32,
    "n_layers": 2,
    "n_heads": 2,
    "codebook_size": 16,
    "clap_dim": 8,
    "clap_n_q": 2,
    "clap_bins": 8,
    "category_dim": 4,
    "max_frames": 24,
}
"""A codec LM of a few thousand parameters: decodes in milliseconds on a CPU."""


def tiny_config(**overrides) -> LMConfig:
    """:data:`TINY_LM` with ``overrides``."""
    return LMConfig(**{**TINY_LM, **overrides})


def random_model(
    config: LMConfig,
    seed: int = 0,
    weight_std: float | None = None,
    null_std: float = 1.0,
    clap_rows: int | None = None,
) -> CodecLM:
    """A :class:`CodecLM` of ``config`` in eval mode, built after ``torch.manual_seed(seed)``; with
    ``weight_std``, its linear and embedding weights redrawn from N(0, weight_std) and its null condition
    embeddings from N(0, null_std); its CLAP quantiser fitted to ``clap_rows`` (default 2 x clap_bins)
    standard normal embeddings drawn from torch's global generator."""
    torch.manual_seed(seed)
    model = CodecLM(config)
    if weight_std is not None:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                    module.weight.normal_(0, weight_std)
            model.conditions.null.normal_(0, null_std)
    rows = clap_rows or 2 * config.clap_bins
    model.conditions.initialize_clap(torch.randn(rows, config.clap_dim), torch.Generator().manual_seed(0))
    return model.eval()


def random_conditions(
    batch: int, clap_dim: int = TINY_LM["clap_dim"], seed: int = 1, drop: torch.Tensor | None = None
) -> Conditions:
    """``batch`` random conditions (every class in range, standard normal CLAP embeddings), seeded."""
    g = torch.Generator().manual_seed(seed)
    return Conditions(
        pitch=torch.randint(0, 88, (batch,), generator=g),
        velocity=torch.randint(0, 5, (batch,), generator=g),
        family=torch.randint(0, 11, (batch,), generator=g),
        source=torch.randint(0, 3, (batch,), generator=g),
        clap=torch.randn(batch, clap_dim, generator=g),
        drop=drop,
    )


def musicgen(config: LMConfig, seed: int = 0):
    """transformers' ``MusicgenForCausalLM`` with the dimensions of ``config`` (layers, heads, width,
    feed-forward width, codebooks and codes; pad = BOS = decoder start = the special token ``card``), no
    dropout, random weights after ``torch.manual_seed(seed)``, eval mode. Needs transformers."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    card = config.codebook_size
    hf_config = MusicgenDecoderConfig(
        vocab_size=card,
        hidden_size=config.dim,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        ffn_dim=config.ffn_mult * config.dim,
        num_codebooks=config.n_codebooks,
        max_position_embeddings=config.max_frames + config.n_codebooks,
        activation_function="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=card,
        bos_token_id=card,
        decoder_start_token_id=card,
    )
    torch.manual_seed(seed)
    return MusicgenForCausalLM(hf_config).eval()


def synthetic_splits(
    folder: Path, instruments: int, notes_each: int, frames: int, card: int, clap_dim: int
) -> dict[str, dict[str, Path]]:
    """Train and valid feature caches of random codes and CLAP embeddings in the pipeline's format
    (:func:`instrumentgen.train.synthetic_caches.write_split`): ``{split: {kind: path}}``."""
    from instrumentgen.train.synthetic_caches import write_split

    return {
        split: write_split(folder, split, instruments, notes_each, frames, card, clap_dim)
        for split in ("train", "valid")
    }


def train_run(folder: Path, splits: dict[str, dict[str, Path]], variant: str, lm: dict, settings: dict,
              seed: int):
    """A :class:`instrumentgen.train.loop.TrainRun` over ``splits`` (see :func:`synthetic_splits`) that
    writes its model, results and checkpoints under ``folder``."""
    from instrumentgen.train.loop import SplitFiles, TrainRun
    from instrumentgen.train.settings import TrainSettings

    return TrainRun(
        variant=variant,
        lm=lm,
        settings=TrainSettings.from_dict(settings),
        seed=seed,
        train=SplitFiles(**splits["train"]),
        valid=SplitFiles(**splits["valid"]),
        model_out=folder / "model.pt",
        results_dir=folder / "results",
        checkpoint_root=folder / "ckpt",
    )
