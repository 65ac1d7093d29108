"""The offline codec: residual k-means on log-magnitude STFT frames, decoded by Griffin-Lim.

A neural codec trained for minutes on a CPU does not keep pitch (FACTS.md); this fitted codec
does, fits in about a minute and needs no shipped weights. Codes are ``[B, K, F]``: one frame per
``hop_length`` samples (``F = ceil(T / hop)``, centred frames, see :mod:`.spectral`), ``K``
residual stages of ``codebook_size`` centroids in the ``n_fft // 2 + 1``-bin log-magnitude space.

The fitted parameters live in one ``.npz`` file (no pickle): ``centroids`` float32
``[K, C, n_bins]`` and ``config`` (a JSON string).
"""

from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.checks import int_at_least
from instrumentgen.codec import kmeans, spectral
from instrumentgen.codec.base import Codec, CodecFileError, check_codes
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)

FORMAT = "instrumentgen.fitted_codec"
FORMAT_VERSION = 1
DEFAULT_MAX_FRAMES = 60_000
DEFAULT_LOG_FLOOR = 0.03  # ~ -80 dB below the STFT peak of a full-scale sine (256 with a 1024 Hann window)
DEFAULT_WEIGHT_EXPONENT = 1.0
WEIGHT_CORNER_HZ = 700.0


class AudioRows(Protocol):
    """Anything with ``len()`` whose slices ``rows[i:j]`` are float audio ``[j - i, T]``."""

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice) -> np.ndarray: ...


def _check_audio(audio: torch.Tensor) -> torch.Tensor:
    """Validate audio ``[B, 1, T]`` (finite, at least one sample); return it as float32 ``[B, T]``."""
    if audio.ndim != 3 or audio.shape[1] != 1:
        raise ValueError(f"expected mono audio [B, 1, T], got shape {tuple(audio.shape)}")
    if audio.shape[-1] < 1:
        raise ValueError("audio has no samples")
    x = audio[:, 0].float()
    bad = ~torch.isfinite(x).all(dim=1)
    if bad.any():
        raise ValueError(f"audio contains NaN or inf (batch items {bad.nonzero().flatten().tolist()})")
    return x


class FittedCodec(Codec):
    """Residual k-means codec: audio ``[B, 1, T]`` ↔ codes ``[B, K, F]``, ``F = ceil(T / hop_length)``.

    Encoding: log-magnitude frames ``log(|STFT| + log_floor)`` ``[B, F, n_bins]``, greedily
    quantised stage by stage (nearest centroid of the residual). Distances are weighted per bin
    by ``(1 + f / 700 Hz) ** -weight_exponent`` (fitting included): without it the ~400 bins above
    2.5 kHz dominate the distance and low notes lose their harmonic comb (measured on 100-300
    notes of the tiny test split: ~90% kept their pitch unweighted, 94-98% weighted). The floor
    (default 0.03, ~-80 dB below a full-scale sine's peak) keeps inaudible detail out of the
    distance as well. Decoding: sum of the chosen
    centroids → per bin, the median over ``median_frames`` consecutive frames (1: off; see
    :func:`.spectral.median_over_frames`) → magnitude → ``griffin_lim_iters`` iterations of fast
    Griffin-Lim from a fixed random phase (seed ``phase_seed``) → audio ``[B, 1, F * hop_length]``.
    """

    def __init__(self, centroids: np.ndarray | torch.Tensor, *, sample_rate: int = 24000, n_fft: int = 1024,
                 hop_length: int = 480, log_floor: float = DEFAULT_LOG_FLOOR,
                 weight_exponent: float = DEFAULT_WEIGHT_EXPONENT, griffin_lim_iters: int = 32,
                 phase_seed: int = 0, median_frames: int = 1):
        centroids = torch.as_tensor(np.asarray(centroids, dtype=np.float32))
        n_bins = n_fft // 2 + 1
        if centroids.ndim != 3 or centroids.shape[2] != n_bins or min(centroids.shape) < 1:
            raise ValueError(f"centroids must be [K, C, {n_bins}] for n_fft={n_fft}, "
                             f"got {tuple(centroids.shape)}")
        if not torch.isfinite(centroids).all():
            raise ValueError("centroids contain NaN or inf")
        integers = (("sample_rate", sample_rate, 1), ("n_fft", n_fft, 2), ("hop_length", hop_length, 1),
                    ("griffin_lim_iters", griffin_lim_iters, 0), ("median_frames", median_frames, 1))
        for name, value, least in integers:
            int_at_least(name, value, least)
        if median_frames % 2 == 0:
            raise ValueError(f"median_frames must be odd (a centred window), got {median_frames}")
        if hop_length > n_fft:
            raise ValueError(f"hop_length {hop_length} > n_fft {n_fft}: frames would not overlap")
        if not log_floor > 0:
            raise ValueError(f"log_floor must be > 0, got {log_floor!r}")
        if not math.isfinite(weight_exponent) or weight_exponent < 0:
            raise ValueError(f"weight_exponent must be finite and >= 0, got {weight_exponent!r}")
        self.centroids = centroids
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.log_floor = float(log_floor)
        self.weight_exponent = float(weight_exponent)
        self.bin_weights = bin_weights(self.n_fft, self.sample_rate, self.weight_exponent)
        self._weighted = centroids * self.bin_weights
        self.griffin_lim_iters = int(griffin_lim_iters)
        self.phase_seed = int(phase_seed)
        self.median_frames = int(median_frames)
        self.n_codebooks = int(centroids.shape[0])
        self.codebook_size = int(centroids.shape[1])

    # ------------------------------------------------------------------ config

    def config(self) -> dict[str, Any]:
        """The constructor arguments other than the centroids (JSON-serialisable)."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "log_floor": self.log_floor, "weight_exponent": self.weight_exponent,
                "griffin_lim_iters": self.griffin_lim_iters,
                "phase_seed": self.phase_seed, "median_frames": self.median_frames}

    def __repr__(self) -> str:
        return (f"FittedCodec(K={self.n_codebooks}, C={self.codebook_size}, "
                + ", ".join(f"{k}={v}" for k, v in self.config().items()) + ")")

    # ------------------------------------------------------------------ features

    def log_magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, T]`` → log-magnitude frames ``[B, F, n_bins]``."""
        return spectral.log_magnitude(audio, self.n_fft, self.hop_length, self.log_floor)

    def quantize_frames(self, frames: torch.Tensor,
                        n_stages: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``[M, n_bins]`` → codes ``[M, n_stages]`` and reconstruction ``[M, n_bins]`` from the
        first ``n_stages`` stages (all by default)."""
        codes, recon = kmeans.quantize(frames.float() * self.bin_weights, self._weighted[:n_stages])
        return codes, recon / self.bin_weights

    def frame_error(self, frames: torch.Tensor, n_stages: int | None = None) -> float:
        """Mean weighted squared error per frame of ``frames [M, n_bins]`` quantised with ``n_stages``
        stages (the distortion the fit minimises; ``n_stages=0``: error of the zero reconstruction)."""
        frames = frames.float()
        recon = self.quantize_frames(frames, n_stages)[1] if n_stages != 0 else torch.zeros_like(frames)
        return float((((frames - recon) * self.bin_weights) ** 2).sum(dim=1).mean())

    def codes_to_log_magnitude(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` → log-magnitude frames ``[B, F, n_bins]`` (sum of the chosen centroids)."""
        codes = check_codes(codes, self.n_codebooks, self.codebook_size)
        out = torch.zeros(
            codes.shape[0], codes.shape[2], self.centroids.shape[2], device=self.centroids.device
        )
        for k in range(self.n_codebooks):
            out += self.centroids[k][codes[:, k]]
        return out

    # ------------------------------------------------------------------ Codec

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, T]`` → codes ``[B, K, F]`` int64, ``F = ceil(T / hop_length)``."""
        x = _check_audio(audio).cpu()
        frames = self.log_magnitude(x)  # [B, F, n_bins]
        b, f, d = frames.shape
        codes, _ = self.quantize_frames(frames.reshape(b * f, d))
        return codes.reshape(b, f, self.n_codebooks).transpose(1, 2).contiguous()

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` → audio ``[B, 1, F * hop_length]`` float32."""
        log_mag = spectral.median_over_frames(self.codes_to_log_magnitude(codes.cpu()), self.median_frames)
        audio = spectral.griffin_lim(log_mag, self.n_fft, self.hop_length, self.log_floor,
                                     self.griffin_lim_iters, self.phase_seed)
        return audio[:, None, :]

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, audio: np.ndarray | AudioRows, sample_rate: int, *, n_codebooks: int = 4,
            codebook_size: int = 1024, seed: int = 0, max_frames: int = DEFAULT_MAX_FRAMES,
            n_fft: int = 1024, hop_length: int = 480, log_floor: float = DEFAULT_LOG_FLOOR,
            weight_exponent: float = DEFAULT_WEIGHT_EXPONENT, griffin_lim_iters: int = 32,
            median_frames: int = 1, batch_notes: int = 256, max_epochs: int = 20,
            progress: bool = False) -> FittedCodec:
        """Fit on notes ``audio [N, T]`` (an array or :class:`AudioRows`, e.g. a memory-mapped store).

        ``max_frames`` frames are drawn uniformly at random (seed ``seed``) from all ``N * F``
        frames; each of the ``n_codebooks`` stages is a ``MiniBatchKMeans`` with
        ``codebook_size`` centroids (seed ``seed + stage``) fitted in the weighted space. The
        Griffin-Lim start phase is seeded with ``seed`` too. Same inputs and seed → same codec.
        """
        codec = cls(np.zeros((1, 1, n_fft // 2 + 1), np.float32), sample_rate=sample_rate, n_fft=n_fft,
                    hop_length=hop_length, log_floor=log_floor, weight_exponent=weight_exponent,
                    griffin_lim_iters=griffin_lim_iters, phase_seed=seed, median_frames=median_frames)
        frames = codec.sample_frames(audio, max_frames=max_frames, seed=seed, batch_notes=batch_notes,
                                     progress=progress)
        log.info("fitting %d x %d centroids on %d frames of %d bins", n_codebooks, codebook_size,
                 frames.shape[0], frames.shape[1])
        w = codec.bin_weights.numpy()
        centroids = kmeans.fit_residual_kmeans(frames * w, n_codebooks, codebook_size, seed,
                                               max_epochs=max_epochs) / w
        return cls(centroids, **codec.config())

    def sample_frames(self, audio: np.ndarray | AudioRows, *, max_frames: int, seed: int,
                      batch_notes: int = 256, progress: bool = False) -> np.ndarray:
        """``min(max_frames, N * F)`` log-magnitude frames ``[M, n_bins]`` drawn at random (``seed``)
        from all frames of ``audio [N, T]``, in note order."""
        n = len(audio)
        if n == 0:
            raise ValueError("no notes to fit the codec on")
        first = np.asarray(audio[0:1], dtype=np.float32)
        if first.ndim != 2:
            raise ValueError(f"expected audio [N, T], got rows of shape {first.shape}")
        f = spectral.num_frames(first.shape[1], self.hop_length)
        total = n * f
        take = np.sort(np.random.default_rng(seed).choice(total, size=min(max_frames, total), replace=False))
        out = np.empty((len(take), self.n_fft // 2 + 1), np.float32)
        filled = 0
        with progress_bar(total=n, desc="codec frames", unit="note", disable=not progress) as bar:
            for start in range(0, n, batch_notes):
                stop = min(start + batch_notes, n)
                lo, hi = np.searchsorted(take, [start * f, stop * f])
                if hi > lo:
                    x = torch.from_numpy(np.asarray(audio[start:stop], dtype=np.float32))
                    if not torch.isfinite(x).all():
                        raise ValueError(f"notes {start}..{stop - 1} contain NaN or inf")
                    frames = self.log_magnitude(x).reshape(-1, self.n_fft // 2 + 1)
                    out[filled:filled + hi - lo] = frames[take[lo:hi] - start * f].numpy()
                    filled += hi - lo
                bar.update(stop - start)
        return out

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write the codec to ``path`` atomically: ``.npz`` with centroids float32 ``[K, C, n_bins]`` and
        a JSON config."""
        path = Path(path)
        config = {"format": FORMAT, "version": FORMAT_VERSION, **self.config()}
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, centroids=self.centroids.numpy().astype(np.float32),
                     config=np.array(json.dumps(config)))
        log.info("saved %r to %s", self, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FittedCodec:
        """Read a codec written by :meth:`save`; :class:`CodecFileError` naming ``path`` if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise CodecFileError(f"{path}: fitted codec file not found")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = {"centroids", "config"} - set(npz.files)
                if missing:
                    raise CodecFileError(f"{path}: not a fitted codec file (missing {sorted(missing)})")
                centroids = npz["centroids"]
                config = json.loads(str(npz["config"]))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as e:
            if isinstance(e, CodecFileError):
                raise
            raise CodecFileError(f"{path}: not a readable fitted codec file ({type(e).__name__}: {e})") from e
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise CodecFileError(f"{path}: not a fitted codec file (config format is not {FORMAT!r})")
        if config.get("version") != FORMAT_VERSION:
            raise CodecFileError(f"{path}: fitted codec format version {config.get('version')!r}, "
                                 f"this code reads version {FORMAT_VERSION}")
        kwargs = {k: config[k] for k in (*_CONFIG_KEYS, *_OPTIONAL_CONFIG_KEYS) if k in config}
        if not set(_CONFIG_KEYS) <= set(kwargs):
            raise CodecFileError(f"{path}: config lacks {sorted(set(_CONFIG_KEYS) - set(kwargs))}")
        n_bins = int(kwargs["n_fft"]) // 2 + 1
        if centroids.dtype != np.float32 or centroids.ndim != 3 or centroids.shape[2] != n_bins:
            raise CodecFileError(f"{path}: centroids must be float32 [K, C, {n_bins}] "
                                 f"(n_fft={kwargs['n_fft']}), got {centroids.dtype} {centroids.shape}")
        try:
            return cls(centroids, **kwargs)
        except (TypeError, ValueError) as e:
            raise CodecFileError(f"{path}: invalid fitted codec: {e}") from e


_CONFIG_KEYS: Sequence[str] = ("sample_rate", "n_fft", "hop_length", "log_floor", "weight_exponent",
                               "griffin_lim_iters", "phase_seed")
# Keys added after FORMAT_VERSION 1 was written; a file without them gets the constructor's default.
_OPTIONAL_CONFIG_KEYS: Sequence[str] = ("median_frames",)


def bin_weights(n_fft: int, sample_rate: int, exponent: float) -> torch.Tensor:
    """Per-bin distance weights ``(1 + f / 700 Hz) ** -exponent`` ``[n_fft // 2 + 1]`` (float32)."""
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    return ((1.0 + freqs / WEIGHT_CORNER_HZ) ** -exponent).float()
