"""A generation session: a trained LM with its codec, decoder and note length, opened and checked once.

Both front ends that generate notes open one: the generate rules' command line
(:mod:`instrumentgen.generate.cli`) and ``instrumentgen make`` (:mod:`instrumentgen.make`). Opening
loads the LM file (its content digest verified), sets MAGNeT's span length from the file, loads the
codec with the LM's number of codebooks, and checks that a note of the requested length fits the LM's
``max_frames``; :meth:`GenerationSession.check_clap` checks a CLAP matrix's width against the LM's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from instrumentgen.codec.base import Codec
from instrumentgen.codec.loading import load_codec
from instrumentgen.generate.run import Decoder, frames_for, generate_plan
from instrumentgen.lm.checkpoint import load_model
from instrumentgen.lm.model import CodecLM


class SessionError(ValueError):
    """Model, codec, CLAP or note length that do not go together; the message names the files."""


@dataclass(frozen=True)
class GenerationSession:
    """A loaded LM (eval mode), its codec and decoder, and the frames ``n_frames`` of every note."""

    model: CodecLM
    codec: Codec
    decoder: Decoder
    n_frames: int
    model_path: Path
    meta: dict

    @classmethod
    def open(
        cls,
        model_path: str | Path,
        codec_path: str | Path,
        decoder: Decoder,
        note_seconds: float,
        device: str | torch.device = "cpu",
    ) -> GenerationSession:
        """Load the LM at ``model_path`` and the codec at ``codec_path`` on ``device``, for notes of
        ``note_seconds``; errors name the files and what does not fit."""
        if not note_seconds > 0:
            raise SessionError(f"the note length must be positive, got {note_seconds} s")
        model, meta = load_model(model_path, device=device)
        codec = load_codec(codec_path, n_codebooks=model.config.n_codebooks, device=device)
        n_frames = frames_for(codec, note_seconds)
        max_frames = model.config.max_frames
        if n_frames > max_frames:
            raise SessionError(
                f"notes of {note_seconds} s are {n_frames} frames: they exceed what the model was built for "
                f"({max_frames} frames = {max_frames / codec.frame_rate:.2f} s; model {model_path})"
            )
        return cls(model, codec, decoder.for_checkpoint(meta), n_frames, Path(model_path), meta)

    @property
    def variant(self) -> str:
        """The variant the LM file was trained as (empty when it does not say)."""
        return str(self.meta.get("variant", ""))

    def check_clap(self, clap: np.ndarray, source: str | Path) -> None:
        """Raise a :class:`SessionError` unless the CLAP embeddings ``[N, D]`` from ``source`` have the
        LM's width ``D``."""
        width = self.model.config.clap_dim
        if clap.ndim != 2 or clap.shape[1] != width:
            raise SessionError(
                f"{source} has {clap.shape[-1]}-d CLAP embeddings, the model {self.model_path} expects "
                f"{width}: use the CLAP of the model's profile"
            )

    def generate(
        self,
        plan: pd.DataFrame,
        clap: np.ndarray,
        out_dir: Path,
        seed: int,
        batch_size: int = 64,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Generate every row of ``plan`` (:mod:`instrumentgen.generate.protocols`) conditioned on the
        rows of ``clap`` ``[N, D]`` it names; WAVs under ``out_dir``, returns the manifest."""
        return generate_plan(
            self.model,
            self.codec,
            plan,
            clap,
            self.n_frames,
            out_dir,
            seed,
            self.decoder,
            batch_size=batch_size,
            progress=progress,
        )
