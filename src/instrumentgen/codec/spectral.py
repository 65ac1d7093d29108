"""Log-magnitude STFT frames and their inversion by (fast) Griffin-Lim, in torch, batched.

Framing (shared by analysis and synthesis): a signal of ``T`` samples gives
``F = ceil(T / hop)`` frames. It is zero-padded on the right to ``L = F * hop`` samples and
analysed with *centred* frames (``torch.stft(center=True, pad_mode="constant")``): frame ``f``
is centred on sample ``f * hop``. The centred STFT of ``L`` samples has ``F + 1`` frames; the
last one (centred on sample ``L``, half of it padding) is dropped, so ``F`` agrees with
:meth:`instrumentgen.codec.base.Codec.num_frames`. Synthesis re-creates that last frame as a
copy of frame ``F - 1`` and returns exactly ``L = F * hop`` samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch

GL_MOMENTUM = 0.99  # fast Griffin-Lim (Perraudin et al. 2013), as in librosa and torchaudio


def num_frames(num_samples: int, hop_length: int) -> int:
    """``ceil(num_samples / hop_length)``: frames for ``num_samples`` samples."""
    return math.ceil(num_samples / hop_length)


def _window(n_fft: int, device: torch.device) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device=device)


def _stft(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Centred complex STFT of ``[B, L]`` → ``[B, n_fft // 2 + 1, L // hop + 1]``."""
    return torch.stft(audio, n_fft, hop_length=hop_length, window=_window(n_fft, audio.device),
                      center=True, pad_mode="constant", return_complex=True)


def _istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of :func:`_stft`: ``[B, n_bins, F + 1]`` → ``[B, length]``."""
    return torch.istft(spec, n_fft, hop_length=hop_length, window=_window(n_fft, spec.device),
                       center=True, length=length)


def log_magnitude(audio: torch.Tensor, n_fft: int, hop_length: int, floor: float) -> torch.Tensor:
    """Audio ``[B, T]`` → log-magnitude frames ``[B, F, n_fft // 2 + 1]``, ``F = ceil(T / hop)``.

    Values are ``log(|X| + floor)`` (natural log), so silence maps to ``log(floor)``.
    """
    if audio.ndim != 2:
        raise ValueError(f"expected audio [B, T], got shape {tuple(audio.shape)}")
    n = audio.shape[-1]
    if n < 1:
        raise ValueError("audio has no samples")
    f = num_frames(n, hop_length)
    padded = torch.nn.functional.pad(audio.float(), (0, f * hop_length - n))
    spec = _stft(padded, n_fft, hop_length)[..., :f]
    return torch.log(spec.abs() + floor).transpose(1, 2)


def initial_phase(n_frames: int, n_bins: int, seed: int) -> torch.Tensor:
    """A fixed random phase ``[n_bins, n_frames]`` (radians) from ``seed``.

    Drawn frame by frame, so the first ``F`` frames are the same whatever ``n_frames ≥ F``.
    """
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=(n_frames, n_bins)).astype(np.float32)).T


def median_over_frames(log_mag: torch.Tensor, frames: int) -> torch.Tensor:
    """Per bin, the median of ``frames`` (odd) consecutive frames of ``log_mag`` ``[B, F, n_bins]``
    (edges repeated); same shape. Removes a spike or dip up to ``frames // 2`` frames long and keeps
    a step (an onset, a release) where it is. ``frames == 1`` returns ``log_mag`` unchanged.

    Why: a language model's sampled codes now and then put one frame's whole-spectrum centroid out
    of line with its neighbours; decoded, that frame is a broadband click (a vertical stripe in the
    spectrogram) that every generated note shares, whatever its condition. Measured on the tiny
    profile (benchmarks/README.md, "Timbre"): a 5-frame median raises the S2I CLAP similarity of
    generated notes to their instrument by about a tenth and leaves the reconstruction's as it was.
    """
    if frames < 1 or frames % 2 == 0:
        raise ValueError(f"median window must be an odd number of frames >= 1, got {frames}")
    if frames == 1 or log_mag.shape[1] < 2:
        return log_mag
    pad = frames // 2
    x = torch.nn.functional.pad(log_mag.transpose(1, 2), (pad, pad), mode="replicate")  # [B, bins, F + 2p]
    return x.unfold(2, frames, 1).median(dim=-1).values.transpose(1, 2).contiguous()


def griffin_lim(log_mag: torch.Tensor, n_fft: int, hop_length: int, floor: float, n_iter: int,
                seed: int) -> torch.Tensor:
    """Log-magnitude frames ``[B, F, n_bins]`` → audio ``[B, F * hop_length]``.

    Fast Griffin-Lim (momentum 0.99), ``n_iter`` iterations, starting from the fixed phase of
    :func:`initial_phase` (deterministic; each item of a batch gets the same start, so a note
    decodes identically alone or in a batch).
    """
    if log_mag.ndim != 3 or log_mag.shape[-1] != n_fft // 2 + 1:
        raise ValueError(f"expected log-magnitude [B, F, {n_fft // 2 + 1}], got shape {tuple(log_mag.shape)}")
    mag = (log_mag.float().exp() - floor).clamp_min(0.0).transpose(1, 2)  # [B, n_bins, F]
    mag = torch.cat([mag, mag[..., -1:]], dim=-1)  # re-create the dropped last frame
    n_bins, n_spec = mag.shape[1], mag.shape[2]
    length = (n_spec - 1) * hop_length
    angles = torch.polar(torch.ones_like(mag), initial_phase(n_spec, n_bins, seed).to(mag.device))
    prev = torch.zeros_like(angles)
    alpha = GL_MOMENTUM / (1 + GL_MOMENTUM)
    for _ in range(n_iter):
        rebuilt = _stft(_istft(mag * angles, n_fft, hop_length, length), n_fft, hop_length)
        angles = rebuilt - alpha * prev
        angles = angles / (angles.abs() + 1e-16)
        prev = rebuilt
    return _istft(mag * angles, n_fft, hop_length, length)
