"""Run a generation plan (``generate.protocols``): conditions → codes (AR or MAGNeT) → codec audio →
one WAV per note and a manifest row (pitch, velocity, path, seed, decoding steps, wall time).

Each instrument gets its own generator, seeded from (seed, instrument name), so its notes follow the
same random trajectory whatever else is generated alongside (the paper fixes its sampler seed).
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.codec.base import Codec
from instrumentgen.generate.ar import generate_ar
from instrumentgen.generate.magnet import MagnetSettings, generate_magnet
from instrumentgen.generate.sampling import SamplingSettings
from instrumentgen.lm.conditioners import CONDITIONS, Conditions, encode_categories
from instrumentgen.lm.model import CodecLM
from instrumentgen.lm.objective import Objective
from instrumentgen.progress import progress_bar

MANIFEST_COLUMNS = [
    "instrument",
    "pitch",
    "velocity",
    "path",
    "seed",
    "decoder",
    "decoding_steps",
    "wall_s",
    "gain",
]


# The decoding function of each section of a Decoder, by Objective.decoding_section.
DECODERS = {"sampling": generate_ar, "magnet": generate_magnet}


@dataclass(frozen=True)
class Decoder:
    """Decoding settings of both objectives: AR (``sampling``) and MAGNeT (``magnet``). The model's
    objective (:mod:`instrumentgen.lm.objective`) picks its own section and decodes."""

    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    magnet: MagnetSettings = field(default_factory=MagnetSettings)

    def settings_for(self, objective: Objective) -> SamplingSettings | MagnetSettings:
        """The settings ``objective`` decodes with: its :attr:`~Objective.decoding_section`."""
        return getattr(self, objective.decoding_section)

    def decode(
        self, model: CodecLM, cond: Conditions, n_frames: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Codes ``[B, K, n_frames]`` by the decoder of the model's objective."""
        objective = model.objective
        decode = DECODERS[objective.decoding_section]
        return decode(model, cond, n_frames, self.settings_for(objective), generator)

    def for_checkpoint(self, meta: dict) -> Decoder:
        """This decoder with MAGNeT's span length set to the one the model was trained with, from the
        metadata ``load_model`` returns for its file (``settings.span_length``)."""
        span = (meta.get("settings") or {}).get("span_length")
        if span is None:
            return self
        return dataclasses.replace(self, magnet=dataclasses.replace(self.magnet, span_length=int(span)))

    def steps(self, model: CodecLM, n_frames: int) -> int:
        """Forward passes per batch: ``n_frames + K - 1`` for AR, ``sum(steps)`` for MAGNeT."""
        objective = model.objective
        return objective.decoding_steps(self.settings_for(objective), n_frames, model.config.n_codebooks)


def frames_for(codec: Codec, note_seconds: float) -> int:
    """Code frames of a note of ``note_seconds`` at the codec's rate (DAC: 4 s → 345), rounded up."""
    return codec.num_frames(round(note_seconds * codec.sample_rate))


def plan_conditions(plan: pd.DataFrame, clap: np.ndarray) -> Conditions:
    """Conditions ``[B]`` for plan rows: pitch and velocity classes, the ``clap_row`` embedding of
    ``clap`` ``[N, D]``, family/source dropped where the plan says so."""
    n = len(plan)
    cats = encode_categories(plan["pitch"], plan["velocity"], np.zeros(n, int), np.zeros(n, int))
    drop = np.zeros((n, len(CONDITIONS)), dtype=bool)
    drop[:, CONDITIONS.index("family")] = plan["drop_family"].to_numpy(bool)
    drop[:, CONDITIONS.index("source")] = plan["drop_source"].to_numpy(bool)
    rows = plan["clap_row"].to_numpy(np.int64)
    if rows.min() < 0 or rows.max() >= len(clap):
        raise ValueError(f"plan refers to CLAP row {int(rows.max())}, the cache has {len(clap)} rows")
    return Conditions(
        pitch=torch.from_numpy(cats["pitch"]),
        velocity=torch.from_numpy(cats["velocity"]),
        family=torch.from_numpy(cats["family"]),
        source=torch.from_numpy(cats["source"]),
        clap=torch.from_numpy(np.ascontiguousarray(clap[rows], dtype=np.float32)),
        drop=torch.from_numpy(drop),
    )


def instrument_seed(seed: int, instrument: str) -> int:
    return int(np.random.default_rng([seed, zlib.crc32(instrument.encode())]).integers(2**62))


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> float:
    """Write ``audio`` ``[T]`` as 16-bit PCM, atomically; scaled down (never up) to avoid clipping.
    Returns the gain applied."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not np.isfinite(peak):
        raise ValueError(f"generated audio for {path.name} is not finite")
    gain = 1.0 if peak <= 0.999 else 0.999 / peak
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, audio * gain, sample_rate, subtype="PCM_16", format="WAV")
    return gain


def generate_plan(
    model: CodecLM,
    codec: Codec,
    plan: pd.DataFrame,
    clap: np.ndarray,
    n_frames: int,
    out_dir: Path,
    seed: int,
    decoder: Decoder | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> pd.DataFrame:
    """Generate every plan row; WAVs go to ``out_dir/<instrument>/<instrument>-<pitch>-<velocity>.wav``.
    Returns the manifest (one row per note, ``MANIFEST_COLUMNS``); ``progress`` shows a bar (notes)."""
    decoder = decoder or Decoder()
    if n_frames > model.config.max_frames:
        raise ValueError(
            f"{n_frames} frames per note exceed the model's lm.max_frames {model.config.max_frames}"
        )
    device = next(model.parameters()).device
    rows = []
    bar = progress_bar(total=len(plan), desc="generate", unit="note", disable=not progress)
    for instrument, group in plan.groupby("instrument", sort=True):
        inst_seed = instrument_seed(seed, str(instrument))
        generator = torch.Generator(device=device).manual_seed(inst_seed)
        for start in range(0, len(group), batch_size):
            chunk = group.iloc[start : start + batch_size]
            t0 = time.perf_counter()
            codes = decoder.decode(model, plan_conditions(chunk, clap), n_frames, generator)
            audio = codec.decode(codes).squeeze(1).float().cpu().numpy()
            wall = (time.perf_counter() - t0) / len(chunk)
            for (_, note), wave in zip(chunk.iterrows(), audio, strict=True):
                path = (
                    out_dir
                    / str(instrument)
                    / f"{instrument}-{int(note.pitch):03d}-{int(note.velocity):03d}.wav"
                )
                gain = write_wav(path, wave, codec.sample_rate)
                rows.append(
                    [
                        str(instrument),
                        int(note.pitch),
                        int(note.velocity),
                        str(path),
                        inst_seed,
                        model.config.objective,
                        decoder.steps(model, n_frames),
                        round(wall, 4),
                        gain,
                    ]
                )
            bar.update(len(chunk))
    bar.close()
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
