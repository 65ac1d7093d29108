"""Joint audio–text embedders behind one interface: LAION-CLAP (paper) and a small CLAP (offline).

- :mod:`instrumentgen.clap.laion`: ``LaionClap`` (laion_clap's ``CLAP``, checksum-verified checkpoints);
- :mod:`instrumentgen.clap.small`: ``SmallClap`` (fitted from (audio, caption) pairs; ``train_small`` CLI);
- :mod:`instrumentgen.clap.evaluate`: text→audio retrieval report of either.

Submodules are imported on demand: laion_clap and torch are slow to import.
"""

from instrumentgen.clap.base import AudioTextEmbedder
from instrumentgen.clap.loading import load_embedder

__all__ = ["AudioTextEmbedder", "load_embedder"]
