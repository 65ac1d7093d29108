"""Neural audio codecs behind one interface: pretrained DAC (paper) and a fitted codec (offline)."""

from instrumentgen.codec.base import Codec

__all__ = ["Codec"]
