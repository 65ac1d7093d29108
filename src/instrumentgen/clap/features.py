"""Fixed audio descriptors of a note for the small CLAP: log-mel statistics, envelope, modulation.

A note is resampled to 16 kHz, cropped or silence-padded to a fixed window (1 s by default) and
turned into a 64-band log-mel spectrogram (n_fft 1024, hop 256) in dB relative to the note's
own peak (so loudness drops out, timbre stays). Per note, ``[B, 288]``:

- per band, over time: mean, standard deviation, mean rise and mean absolute change (4 × 64);
- the frame-energy envelope at 16 points, relative to its peak (attack, decay, release);
- the log magnitude of the envelope's first 12 modulation frequencies (tremolo, swells);
- mean and standard deviation of the spectral centroid and flatness (brightness, noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import librosa
import numpy as np
import torch

from instrumentgen.audio import check_mono_batch, resample_batch
from instrumentgen.checks import positive_int
from instrumentgen.clap.audio import zero_pad

ENVELOPE_POINTS = 16
MODULATION_BINS = 12
FLOOR_DB = 80.0


@dataclass(frozen=True)
class FeatureConfig:
    """The analysis settings; stored with a fitted model."""

    sample_rate: int = 16000
    window_s: float = 1.0
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 8000.0

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.window_s)

    @property
    def dim(self) -> int:
        """Descriptor size: ``4 * n_mels + 16 + 12 + 4``."""
        return 4 * self.n_mels + ENVELOPE_POINTS + MODULATION_BINS + 4

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first bad setting."""
        for name in ("sample_rate", "n_fft", "hop", "n_mels"):
            positive_int(name, getattr(self, name))
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"bad mel range {self.fmin}..{self.fmax} Hz at {self.sample_rate} Hz")
        if self.window_samples < self.n_fft:
            raise ValueError(f"window {self.window_s} s is shorter than n_fft={self.n_fft}")


class FeatureExtractor:
    """``audio [B, T] at sr`` → float64 descriptors ``[B, config.dim]``."""

    def __init__(self, config: FeatureConfig | None = None, batch_size: int = 256):
        config = config or FeatureConfig()
        config.validate()
        self.config = config
        self.batch_size = batch_size

    @cached_property
    def _mel(self) -> torch.Tensor:
        c = self.config
        return torch.from_numpy(librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels,
                                                    fmin=c.fmin, fmax=c.fmax)).float()

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` → log-mel in dB relative to each note's peak, floored at −80 dB ``[B, M, frames]``."""
        c = self.config
        spec = torch.stft(audio, c.n_fft, c.hop, window=torch.hann_window(c.n_fft), return_complex=True)
        db = 10.0 * torch.log10(self._mel @ spec.abs().square() + 1e-10)
        return torch.clamp(db - db.amax(dim=(1, 2), keepdim=True), min=-FLOOR_DB)

    def _describe(self, mel_db: torch.Tensor) -> torch.Tensor:
        """``[B, M, frames]`` → ``[B, dim]``."""
        delta = torch.diff(mel_db, dim=2)
        power = torch.pow(10.0, mel_db / 10.0)  # relative power, peak 1
        energy = 10.0 * torch.log10(power.sum(dim=1) + 1e-10)  # [B, frames]
        energy = energy - energy.amax(dim=1, keepdim=True)
        envelope = torch.nn.functional.interpolate(energy[:, None], size=ENVELOPE_POINTS, mode="linear",
                                                   align_corners=True)[:, 0]
        lin = torch.pow(10.0, energy / 20.0)
        lin = (lin - lin.mean(dim=1, keepdim=True)) * torch.hann_window(lin.shape[1], periodic=False)
        modulation = torch.log(torch.fft.rfft(lin, dim=1).abs()[:, 1:1 + MODULATION_BINS] + 1e-3)
        if modulation.shape[1] < MODULATION_BINS:
            modulation = torch.nn.functional.pad(modulation, (0, MODULATION_BINS - modulation.shape[1]))
        weights = power / power.sum(dim=1, keepdim=True)
        bands = torch.arange(mel_db.shape[1], dtype=mel_db.dtype)
        centroid = (weights * bands[None, :, None]).sum(dim=1)
        flatness = torch.log(power + 1e-10).mean(dim=1) - torch.log(power.mean(dim=1) + 1e-10)
        shape = torch.stack([centroid.mean(1), centroid.std(1), flatness.mean(1), flatness.std(1)], dim=1)
        return torch.cat([mel_db.mean(2), mel_db.std(2), delta.clamp(min=0).mean(2), delta.abs().mean(2),
                          envelope, modulation, shape], dim=1)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono ``[B, T]`` at ``sample_rate`` → descriptors float64 ``[B, dim]``."""
        c = self.config
        audio = resample_batch(check_mono_batch(audio, sample_rate), sample_rate, c.sample_rate)
        audio = zero_pad(audio, c.window_samples)
        out = []
        with torch.no_grad():
            for start in range(0, len(audio), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(audio[start:start + self.batch_size]))
                out.append(self._describe(self.log_mel(chunk)).double().numpy())
        return np.concatenate(out)
