"""Open any codec file of the project by its kind: ``.npz`` fitted codec, ``.pth`` DAC weights."""

from __future__ import annotations

import os
from pathlib import Path

from instrumentgen.codec.base import Codec
from instrumentgen.codec.fitted import FittedCodec


def load_codec(path: str | os.PathLike, n_codebooks: int = 4, device: str = "cpu") -> Codec:
    """A :class:`FittedCodec` for ``*.npz``, a :class:`~instrumentgen.codec.dac_codec.DACCodec` (first
    ``n_codebooks`` codebooks, checksum-verified) for ``*.pth``; ``ValueError`` naming ``path`` otherwise
    (also when a fitted codec does not have ``n_codebooks`` codebooks). ``device`` applies to DAC."""
    path = Path(path)
    if path.suffix == ".npz":
        codec = FittedCodec.load(path)
        if codec.n_codebooks != n_codebooks:
            raise ValueError(f"{path}: fitted codec has {codec.n_codebooks} codebooks, "
                             f"{n_codebooks} requested")
        return codec
    if path.suffix == ".pth":
        from instrumentgen.codec.dac_codec import DACCodec

        return DACCodec.load(path, n_codebooks=n_codebooks, device=device)
    raise ValueError(f"{path}: unknown codec file type (expected a fitted codec .npz or DAC weights .pth)")
