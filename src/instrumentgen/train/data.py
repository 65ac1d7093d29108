"""Training data of the codec LM: cached codes, CLAP audio embeddings and the reference notes of a split.

The code cache (``[N, K, T]`` int16) and the CLAP cache (``[N, D]``) of one split are row-aligned (both
are written from the same resampled store); :func:`load_split` checks that, and every other property the
trainer relies on, before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from instrumentgen.features.cache import FeatureError, read_features
from instrumentgen.lm.conditioners import CONDITIONS, Conditions, encode_categories
from instrumentgen.train.schemes import ClapPairing, make_pairing


class TrainingDataError(ValueError):
    """An empty or inconsistent cache; the message names the file and the problem."""


@dataclass
class SplitData:
    """One split in memory: codes ``[N, K, T]`` int16, CLAP ``[N, D]`` float32, class indices ``[N]``."""

    name: str
    notes: pd.DataFrame
    codes: torch.Tensor
    clap: torch.Tensor
    categories: dict[str, torch.Tensor]
    pairing: ClapPairing

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.codes.shape[2])


def load_split(
    name: str,
    codes_path: str | Path,
    clap_path: str | Path,
    scheme: str,
    reference_path: str | Path | None,
    n_codebooks: int,
    codebook_size: int,
) -> SplitData:
    """Load and check one split's caches and build its CLAP pairing (see ``train.schemes``)."""
    try:
        codes_meta, codes = read_features(codes_path)
        clap_meta, clap = read_features(clap_path)
    except FeatureError as err:  # missing, empty or not a cache
        raise TrainingDataError(str(err)) from None
    if codes.ndim != 3 or codes.shape[1] != n_codebooks:
        raise TrainingDataError(
            f"code cache {codes_path} holds {tuple(codes.shape[1:])} codes per note, expected "
            f"[{n_codebooks}, T] (codec.n_codebooks)"
        )
    if codes.min() < 0 or codes.max() >= codebook_size:
        raise TrainingDataError(
            f"code cache {codes_path} has codes in [{codes.min()}, {codes.max()}], outside the codebook "
            f"[0, {codebook_size}) (codec.codebook_size)"
        )
    code_notes = codes_meta.column("note_str").to_pylist()
    clap_notes = clap_meta.column("note_str").to_pylist()
    if code_notes != clap_notes:
        first = next(
            (i for i, (a, b) in enumerate(zip(code_notes, clap_notes, strict=False)) if a != b), None
        )
        raise TrainingDataError(
            f"code cache {codes_path} ({len(code_notes)} notes) and CLAP cache {clap_path} "
            f"({len(clap_notes)} notes) are not row-aligned"
            + (
                f": row {first} is {code_notes[first]!r} vs {clap_notes[first]!r}"
                if first is not None
                else ""
            )
        )
    if not np.isfinite(clap).all():
        bad = code_notes[int(np.flatnonzero(~np.isfinite(clap).all(axis=1))[0])]
        raise TrainingDataError(f"CLAP cache {clap_path} has non-finite values for note {bad}")
    notes = codes_meta.select(
        ["note_str", "instrument_str", "pitch", "velocity", "instrument_family", "instrument_source"]
    ).to_pandas()
    try:
        cats = encode_categories(
            notes["pitch"], notes["velocity"], notes["instrument_family"], notes["instrument_source"]
        )
    except ValueError as err:
        raise TrainingDataError(f"{codes_path}: {err}") from None
    reference = pd.read_parquet(reference_path) if reference_path is not None else None
    pairing = make_pairing(scheme, notes, reference)
    return SplitData(
        name=name,
        notes=notes,
        codes=torch.from_numpy(np.array(codes, dtype=np.int16)),
        clap=torch.from_numpy(np.array(clap, dtype=np.float32)),
        categories={k: torch.tensor(v) for k, v in cats.items()},
        pairing=pairing,
    )


@dataclass(frozen=True)
class DropoutSettings:
    """Per-sample condition dropout in training: ``cfg`` drops every condition (CLAP included) at once
    (classifier-free guidance); ``attribute`` drops family and source independently (Section 2.3)."""

    cfg: float = 0.3
    attribute: float = 0.3


def condition_drop(batch: int, settings: DropoutSettings, rng: np.random.Generator) -> torch.Tensor:
    """``[B, 5]`` bool drop mask (columns in ``CONDITIONS`` order), drawn per sample."""
    drop = np.zeros((batch, len(CONDITIONS)), dtype=bool)
    cfg = rng.random(batch) < settings.cfg
    drop[cfg, :] = True
    for name in ("family", "source"):
        drop[rng.random(batch) < settings.attribute, CONDITIONS.index(name)] = True
    return torch.from_numpy(drop)


def make_batch(
    split: SplitData,
    rows: np.ndarray,
    rng: np.random.Generator,
    dropout: DropoutSettings | None,
) -> tuple[torch.Tensor, Conditions]:
    """Target codes ``[B, K, T]`` (long) and their conditions for ``rows`` of ``split``.

    The CLAP embedding comes from the note chosen by the split's pairing scheme; ``dropout`` None means
    no condition is dropped (validation).
    """
    rows = np.asarray(rows, dtype=np.int64)
    clap_rows = split.pairing.sample(rows, rng)
    index = torch.from_numpy(rows)
    cond = Conditions(
        pitch=split.categories["pitch"][index],
        velocity=split.categories["velocity"][index],
        family=split.categories["family"][index],
        source=split.categories["source"][index],
        clap=split.clap[torch.from_numpy(np.asarray(clap_rows, dtype=np.int64))],
        drop=None if dropout is None else condition_drop(len(rows), dropout, rng),
    )
    return split.codes[index].long(), cond
