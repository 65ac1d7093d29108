"""(audio, caption) pairs of a resampled split: captions per instrument, batched store reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from instrumentgen.data.store import AudioStore
from instrumentgen.progress import progress_bar


class CaptionError(ValueError):
    """A captions file that is missing, malformed or lacks an instrument (the message names it)."""


def load_captions(path: str | Path) -> dict[str, str]:
    """``{instrument_str: caption}`` from a JSON object; :class:`CaptionError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CaptionError(f"{path}: captions file not found")
    try:
        captions = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CaptionError(f"{path}: not JSON ({e})") from e
    if not isinstance(captions, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                 for k, v in captions.items()):
        raise CaptionError(f"{path}: expected an object mapping instrument names to non-empty captions")
    return captions


def instrument_captions(instruments: list[str], captions: dict[str, str], source: str | Path) -> list[str]:
    """The caption of each of ``instruments``; :class:`CaptionError` naming the missing ones and
    ``source``."""
    missing = sorted({i for i in instruments if i not in captions})
    if missing:
        raise CaptionError(f"{source}: no caption for {len(missing)} instrument(s), e.g. {missing[:5]}")
    return [captions[i] for i in instruments]


def map_store(store: AudioStore, fn: Callable[[np.ndarray, int], np.ndarray], *, batch_size: int = 256,
              desc: str = "embed", progress: bool = True) -> np.ndarray:
    """``fn(audio [B, T], sample_rate) -> [B, D]`` over every note of ``store`` in batches → ``[N, D]``."""
    out = []
    with progress_bar(total=len(store), desc=desc, unit="note", disable=not progress) as bar:
        for start in range(0, len(store), batch_size):
            rows = np.arange(start, min(start + batch_size, len(store)))
            out.append(fn(store.batch(rows), store.sample_rate))
            bar.update(len(rows))
    return np.concatenate(out)
