"""The paper's codec: Descript Audio Codec (``dac`` package) behind the :class:`Codec` interface.

DAC's loader unpickles (``torch.load`` / ``torch.package``), so a weights file is checked against
its ``<file>.sha256`` record (written on first use, see :mod:`instrumentgen.download`) *before*
``dac.DAC.load`` sees it: a file whose checksum does not match is never unpickled.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from instrumentgen.codec.base import Codec, check_codes
from instrumentgen.download import DownloadError, fetch_weights, verify_checksum

if TYPE_CHECKING:
    import dac

log = logging.getLogger(__name__)

DAC_44KHZ_URL = "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth"
"""The 44.1 kHz, 8 kbps DAC weights (tag 0.0.1): 9 codebooks x 1024, hop 512."""


class DACWeightsError(RuntimeError):
    """DAC weights that cannot be fetched, verified or loaded; the message names the file or URL."""


def fetch_dac_weights(cache_dir: str | os.PathLike, url: str = DAC_44KHZ_URL, *, progress: bool = True,
                      **download_kwargs: object) -> Path:
    """The DAC weights at ``cache_dir/<file name of url>`` (e.g. ``weights.pth``), downloaded unless
    present and checked against their SHA-256 record; :class:`DACWeightsError` names the URL and,
    without network, where a pre-downloaded copy can be placed (see :func:`fetch_weights`)."""
    return fetch_weights(url, cache_dir, what="DAC weights", error=DACWeightsError, progress=progress,
                         **download_kwargs)


class DACCodec(Codec):
    """A ``dac.DAC`` model: audio ``[B, 1, T]`` at ``sample_rate`` ↔ codes ``[B, K, F]`` of its first
    ``K = n_codebooks`` codebooks, ``F = ceil(T / hop_length)`` (DAC pads the input to a multiple of
    its hop). Decoding returns exactly ``F * hop_length`` samples (the decoder's output, zero-padded
    or cropped by the few samples its convolutions may differ by)."""

    def __init__(self, model: dac.DAC, n_codebooks: int = 4, device: str | torch.device = "cpu"):
        if not 1 <= n_codebooks <= model.n_codebooks:
            raise ValueError(f"n_codebooks must be in 1..{model.n_codebooks} (the model's codebooks), "
                             f"got {n_codebooks}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.n_codebooks = int(n_codebooks)
        self.codebook_size = int(model.codebook_size)
        self.sample_rate = int(model.sample_rate)
        self.hop_length = int(model.hop_length)

    @classmethod
    def load(cls, path: str | os.PathLike, n_codebooks: int = 4,
             device: str | torch.device = "cpu") -> DACCodec:
        """Verify ``path`` against ``<path>.sha256`` (recording it on first use), then ``dac.DAC.load`` it.

        Raises :class:`DACWeightsError` naming the file if it is missing, its checksum does not
        match (nothing is unpickled then) or it is not a ``dac.DAC`` checkpoint of a matching
        architecture.
        """
        path = Path(path)
        if not path.is_file():
            raise DACWeightsError(f"{path}: DAC weights file not found (see fetch_dac_weights)")
        try:
            verify_checksum(path)
        except DownloadError as e:
            raise DACWeightsError(str(e)) from e
        import dac  # heavy import (audiotools); only where a DAC is loaded

        try:
            model = dac.DAC.load(str(path), strict=True)
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, OSError, EOFError,
                pickle.UnpicklingError, zipfile.BadZipFile) as e:
            raise DACWeightsError(
                f"{path}: not a loadable dac.DAC checkpoint ({type(e).__name__}: {e})") from e
        if not isinstance(model, dac.DAC):
            raise DACWeightsError(f"{path}: holds a {type(model).__name__}, not a dac.DAC")
        log.info("loaded DAC %s: %d Hz, hop %d, %d codebooks (using %d)", path, model.sample_rate,
                 model.hop_length, model.n_codebooks, n_codebooks)
        return cls(model, n_codebooks=n_codebooks, device=device)

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, 1, T]`` → codes ``[B, n_codebooks, ceil(T / hop)]`` int64."""
        if audio.ndim != 3 or audio.shape[1] != 1 or audio.shape[-1] < 1:
            raise ValueError(f"expected mono audio [B, 1, T >= 1], got shape {tuple(audio.shape)}")
        x = audio.float().to(self.device)
        if not torch.isfinite(x).all():
            raise ValueError("audio contains NaN or inf")
        x = self.model.preprocess(x, self.sample_rate)
        _, codes, _, _, _ = self.model.encode(x)
        return codes[:, :self.n_codebooks].long().cpu()

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, n_codebooks, F]`` → audio ``[B, 1, F * hop_length]`` float32."""
        codes = check_codes(codes, self.n_codebooks, self.codebook_size).to(self.device)
        z_q, _, _ = self.model.quantizer.from_codes(codes)
        audio = self.model.decode(z_q).float().cpu()
        length = codes.shape[-1] * self.hop_length
        if audio.shape[-1] < length:
            audio = torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))
        return audio[..., :length]
