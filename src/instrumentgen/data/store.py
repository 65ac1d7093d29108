"""The resampled audio store of a split: ``{split}.npy`` + ``{split}.parquet``.

Format (chosen for fast reads by the encoder stages and by data loaders):

- ``{split}.npy``: int16 ``[N, T]``, every note of the split at the codec rate, one row per
  note. A plain NumPy array file opens with ``mmap_mode='r'`` in microseconds and gives O(1)
  random access to any note or batch with no decoding, from any number of worker processes;
  int16 halves the size of float32 (the paper's 44.1 kHz train split is ~100 GB instead of
  ~200 GB) at the 16-bit resolution of the NSynth source. One large file per split also keeps
  DVC fast (it is slow on many small files).
- ``{split}.parquet``: the manifest rows in the same order, with ``row`` (index into the
  array), ``gain`` (see below), the stored ``sample_rate`` and ``num_frames``, and
  ``source_path`` (the 16 kHz WAV it came from).

No clipping: a resampled note whose peak would exceed int16 full scale (interpolation can
overshoot) is scaled down by ``gain`` ≥ 1 before quantisation, and readers multiply it back:
``audio = int16 / 32768 * gain``. Notes that fit keep ``gain == 1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

FULL_SCALE = 32768.0
INT16_PEAK = 32767.0 / FULL_SCALE


class StoreError(ValueError):
    """A store whose array and index disagree, or that is missing."""


def quantize(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Float audio ``[T]`` → (int16 ``[T]``, gain) without clipping; ``audio ≈ q / 32768 * gain``."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = max(1.0, peak / INT16_PEAK)
    q = np.round(audio.astype(np.float64) * (FULL_SCALE / gain))
    # After scaling the peak is at most 32767 (up to rounding): the clip below changes nothing
    # but guards the dtype conversion.
    return np.clip(q, -FULL_SCALE, FULL_SCALE - 1).astype(np.int16), gain


def dequantize(q: np.ndarray, gain: np.ndarray | float) -> np.ndarray:
    """int16 ``[..., T]`` and gain (scalar or ``[...]``) → float32 ``[..., T]``."""
    gain = np.asarray(gain, dtype=np.float32)
    scale = (gain[..., None] if gain.ndim else gain) / np.float32(FULL_SCALE)
    return q.astype(np.float32) * scale


class AudioStore:
    """Read access to a resampled split.

    ``store[i]`` is note ``i`` as float32 ``[T]``; ``store.batch(rows)`` is ``[B, T]``;
    ``store.index`` is the Parquet index (a DataFrame in row order).
    """

    def __init__(self, audio_path: str | Path, index_path: str | Path):
        audio_path, index_path = Path(audio_path), Path(index_path)
        for p in (audio_path, index_path):
            if not p.is_file():
                raise StoreError(f"{p}: resampled store file not found")
        try:
            self.audio = np.load(audio_path, mmap_mode="r")
        except (ValueError, OSError) as e:
            raise StoreError(f"{audio_path}: not a readable .npy array (truncated?): {e}") from e
        self.index: pd.DataFrame = pq.read_table(index_path).to_pandas()
        if self.audio.ndim != 2 or self.audio.dtype != np.int16:
            raise StoreError(f"{audio_path}: expected int16 [N, T], got {self.audio.dtype} "
                             f"{self.audio.shape}")
        rows = self.index["row"].to_numpy()
        if len(rows) != self.audio.shape[0] or not (rows == np.arange(len(rows))).all():
            raise StoreError(f"{index_path}: {len(self.index)} index rows do not match the "
                             f"{self.audio.shape[0]} rows of {audio_path}")
        rates = self.index["sample_rate"].unique()
        if len(rates) != 1:
            raise StoreError(f"{index_path}: mixed sample rates {sorted(rates)}")
        self.sample_rate = int(rates[0])
        self._gain = self.index["gain"].to_numpy(np.float32)
        self._rows = {name: i for i, name in enumerate(self.index["note_str"])}

    def __len__(self) -> int:
        return self.audio.shape[0]

    @property
    def num_frames(self) -> int:
        """Samples per note ``T``."""
        return self.audio.shape[1]

    def __getitem__(self, i: int) -> np.ndarray:
        return dequantize(np.asarray(self.audio[i]), self._gain[i])

    def batch(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """Notes ``rows`` as float32 ``[B, T]``."""
        rows = np.asarray(rows)
        return dequantize(np.asarray(self.audio[rows]), self._gain[rows])

    def row_of(self, note_str: str) -> int:
        """Row of the note named ``note_str``."""
        try:
            return self._rows[note_str]
        except KeyError:
            raise StoreError(f"note {note_str!r} is not in this store") from None


def open_store(prefix: str | Path) -> AudioStore:
    """Open ``<prefix>.npy`` + ``<prefix>.parquet`` (e.g. ``data/tiny/resampled/train``)."""
    prefix = Path(prefix)
    return AudioStore(prefix.with_suffix(".npy"), prefix.with_suffix(".parquet"))
