"""Open a CLAP model file as an :class:`AudioTextEmbedder`, by its kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instrumentgen.clap.base import AudioTextEmbedder


def load_embedder(path: str | Path, device: str | None = None, **laion_kwargs: Any) -> AudioTextEmbedder:
    """A small CLAP (``.npz``, :class:`~instrumentgen.clap.small.SmallClap`, CPU; ``device`` is
    ignored) or a LAION-CLAP checkpoint (anything else,
    :meth:`~instrumentgen.clap.laion.LaionClap.from_checkpoint`, checksum-verified, on ``device``;
    ``laion_kwargs`` such as ``amodel``/``tmodel`` go there)."""
    path = Path(path)
    if path.suffix == ".npz":
        from instrumentgen.clap.small import SmallClap

        if laion_kwargs:
            raise ValueError(f"{path}: options {sorted(laion_kwargs)} apply to LAION-CLAP checkpoints only")
        return SmallClap.load(path)
    from instrumentgen.clap.laion import LaionClap

    return LaionClap.from_checkpoint(path, device=device, **laion_kwargs)
