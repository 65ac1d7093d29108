"""Load the frozen encoders a profile uses, by kind: ``dac``/``fitted`` codecs, ``laion``/``small`` CLAP."""

from __future__ import annotations

from pathlib import Path

from instrumentgen.clap.base import AudioTextEmbedder
from instrumentgen.codec.base import Codec

CODEC_KINDS = ("dac", "fitted")
CLAP_KINDS = ("laion", "small")


def load_codec(kind: str, path: str | Path, n_codebooks: int) -> Codec:
    """The codec of ``kind`` from its model file (DAC weights are checksum-verified before loading)."""
    if kind == "dac":
        from instrumentgen.codec.dac_codec import DACCodec

        return DACCodec.load(path, n_codebooks=n_codebooks)
    if kind == "fitted":
        from instrumentgen.codec.fitted import FittedCodec

        codec = FittedCodec.load(path)
        if codec.n_codebooks != n_codebooks:
            raise ValueError(f"{path}: fitted codec has {codec.n_codebooks} codebooks, "
                             f"params ask for {n_codebooks}")
        return codec
    raise ValueError(f"unknown codec kind {kind!r}; expected one of {list(CODEC_KINDS)}")


def load_embedder(kind: str, path: str | Path) -> AudioTextEmbedder:
    """The CLAP model of ``kind`` from its checkpoint (LAION weights are checksum-verified first)."""
    if kind == "laion":
        from instrumentgen.clap.laion import LaionClap

        return LaionClap.load(path)
    if kind == "small":
        from instrumentgen.clap.small import SmallClap

        return SmallClap.load(path)
    raise ValueError(f"unknown CLAP kind {kind!r}; expected one of {list(CLAP_KINDS)}")
