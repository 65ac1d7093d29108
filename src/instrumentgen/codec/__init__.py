"""Neural audio codecs behind one interface: pretrained DAC (paper) and a fitted codec (offline).

- :class:`~instrumentgen.codec.fitted.FittedCodec`: residual k-means on log-magnitude STFT frames,
  Griffin-Lim decoding (offline profiles; ``python -m instrumentgen.codec.fit``).
- :class:`~instrumentgen.codec.dac_codec.DACCodec`: the ``dac`` package's model, checksum-verified
  before loading (paper profile); :func:`~instrumentgen.codec.dac_codec.fetch_dac_weights`.
- :mod:`~instrumentgen.codec.quality` and ``python -m instrumentgen.codec.evaluate``: pitch kept and
  mel distance of the reconstruction.
"""

from instrumentgen.codec.base import Codec, CodecFileError
from instrumentgen.codec.fitted import FittedCodec
from instrumentgen.codec.loading import load_codec

__all__ = ["Codec", "CodecFileError", "FittedCodec", "load_codec"]
