"""Joint audio–text embedders behind one interface: LAION-CLAP (paper) and a small CLAP (offline)."""

from instrumentgen.clap.base import AudioTextEmbedder

__all__ = ["AudioTextEmbedder"]
