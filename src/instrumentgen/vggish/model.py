"""The VGGish network with the published torchvggish weights, and an embedder of notes for FAD.

The layer layout (and so the state-dict keys ``features.N.*`` / ``embeddings.N.*``) is that of the
torchvggish port of the AudioSet release, so its weights file loads as published:
``https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth``. As in
FAD practice (Google's FAD, fadtk, frechet-audio-distance), the embedding is the 128-d output of the
last linear layer, before torchvggish's final ReLU and without the PCA-whitening/8-bit
post-processing of the AudioSet release.

The weights file name carries the first 8 hex digits of its SHA-256 (the torch.hub convention). A
download is checked against the full published SHA-256 (or, for another file, the prefix in its name)
before its digest is recorded next to it; every later load is checked against that record.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from instrumentgen.download import fetch_weights, verify_checksum
from instrumentgen.vggish.frontend import EXAMPLE_FRAMES, MEL_BANDS, examples

log = logging.getLogger(__name__)
PAPER_WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
# Its SHA-256: the prefix is the published one (file name); the full digest is a third party's record
# of that file (not downloadable here to re-check).
PAPER_SHA256 = "10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b"
EMBEDDING_DIM = 128
_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")  # name-<sha256 prefix>.pth


class VGGishWeightsError(RuntimeError):
    """The VGGish weights cannot be downloaded, fail their checksum, or do not fit the network."""


def _features() -> nn.Sequential:
    """Conv stack ``[B, 1, 96, 64]`` → ``[B, 512, 6, 4]``: conv3x3+ReLU blocks 64, M, 128, M, 256,
    256, M, 512, 512, M (M: 2x2 max-pool)."""
    layers: list[nn.Module] = []
    channels = 1
    for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """Log-mel examples ``[B, 1, 96, 64]`` → embeddings ``[B, 128]`` (no final ReLU, no PCA)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # [B, 512, 6, 4]
        # The TF original flattens channels-last: [B, 6, 4, 512].
        return self.embeddings(x.permute(0, 2, 3, 1).flatten(1))


def published_digest(path: str | Path, sha256: str | None = None) -> str | None:
    """What ``path`` must hash to: ``sha256`` when given, else the prefix in its torch.hub-style name
    (``vggish-10086976.pth`` → ``10086976``), else nothing."""
    if sha256:
        return sha256
    m = _HASH_PREFIX.search(Path(path).name)
    return m.group(1) if m else None


def fetch_vggish_weights(cache_dir: str | Path, url: str = PAPER_WEIGHTS_URL, *,
                         sha256: str | None = PAPER_SHA256, progress: bool = True, retries: int = 5,
                         timeout: float = 60) -> Path:
    """The torchvggish weights at ``cache_dir/<file name of url>``: downloaded (resumably) unless
    present, checked against ``sha256`` (default: the published file's; ``None``: the prefix in the
    file name) before their SHA-256 is recorded next to them."""
    return fetch_weights(url, cache_dir, what="VGGish weights", error=VGGishWeightsError, progress=progress,
                         published_sha256=published_digest(url, sha256), retries=retries, timeout=timeout)


def load_vggish(path: str | Path, device: str = "cpu", sha256: str | None = None) -> VGGish:
    """The network with the weights of ``path`` (a torchvggish state dict), in eval mode.

    The file is checked (its recorded SHA-256, and ``sha256`` or the prefix in its name) before it is
    read; missing, unexpected or misshapen tensors are named."""
    path = Path(path)
    if not path.is_file():
        raise VGGishWeightsError(f"{path}: VGGish weights not found (rule fetch_weights downloads them)")
    try:
        verify_checksum(path, published=published_digest(path, sha256))
    except RuntimeError as err:
        raise VGGishWeightsError(str(err)) from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, not a torch file
        raise VGGishWeightsError(f"{path}: not a readable torch weights file ({err})") from err
    if not isinstance(state, dict):
        raise VGGishWeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    model = VGGish()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise VGGishWeightsError(
            f"{path}: not torchvggish weights: missing {missing[:4]}, unexpected {unexpected[:4]}, "
            f"misshapen {wrong[:4]}"
        )
    model.load_state_dict(state)
    log.info("loaded VGGish weights %s", path)
    return model.to(device).eval()


class VGGishEmbedder:
    """Notes ``[B, T]`` → VGGish embeddings ``[B, E, 128]`` (float32), E examples of 0.96 s a note."""

    dim = EMBEDDING_DIM

    def __init__(self, model: VGGish, batch_size: int = 64) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", batch_size: int = 64) -> VGGishEmbedder:
        return cls(load_vggish(path, device), batch_size)

    @torch.no_grad()
    def embed_audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        x = examples(audio, sample_rate)  # [B, E, 96, 64]
        b, e = x.shape[:2]
        flat = torch.from_numpy(x.reshape(b * e, 1, EXAMPLE_FRAMES, MEL_BANDS))
        out = [
            self.model(flat[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, len(flat), self.batch_size)
        ]
        return torch.cat(out).numpy().reshape(b, e, EMBEDDING_DIM)
