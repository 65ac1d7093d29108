"""Cache per-note features of a resampled split to one Parquet file, in batches, resumably.

A feature is a fixed-shape array per note (codec codes ``[K, F]`` int16, CLAP embeddings ``[D]``
float32). The output Parquet has the note metadata of the store's index (keyed by ``note_str``)
and a ``feature`` column (fixed-size lists, nested for 2-D features).

Resumable: finished chunks are written as part files into ``<out>.parts/`` together with a
fingerprint of the inputs; a killed run restarted with the same inputs computes only the missing
chunks, different inputs start afresh. The output file appears (atomically) only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instrumentgen.atomic import atomic_path, write_json_atomic
from instrumentgen.data.store import AudioStore
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)
DROP_COLUMNS = ("row", "gain", "source_path")
# A note whose peak is at most this holds no signal at all (-120 dBFS, below the smallest step of 16-bit
# audio, 3e-5): digital silence, which has no timbre to embed.
DIGITAL_SILENCE_PEAK = 1e-6


class FeatureError(ValueError):
    """Bad audio or a feature of the wrong shape; the message names the note."""


def fixed_size_array(values: np.ndarray) -> pa.Array:
    """``[N, *shape]`` → an Arrow array of (nested) fixed-size lists, one per row."""
    flat = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        flat = pa.FixedSizeListArray.from_arrays(flat, size)
    return flat


def feature_array(table: pa.Table, column: str = "feature") -> np.ndarray:
    """The ``feature`` column of a cached table as ``[N, *shape]`` (shape from the list sizes)."""
    col = table.column(column).combine_chunks()
    shape = []
    typ = col.type
    while pa.types.is_fixed_size_list(typ):
        shape.append(typ.list_size)
        typ = typ.value_type
    flat = col
    for _ in shape:
        flat = flat.flatten()
    return flat.to_numpy(zero_copy_only=False).reshape(len(table), *shape)


def read_features(path: str | Path) -> tuple[pa.Table, np.ndarray]:
    """Read a cached feature Parquet: (metadata table without the feature column, ``[N, *shape]``)."""
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: feature cache not found")
    table = pq.read_table(path)
    if "feature" not in table.column_names or table.num_rows == 0:
        raise FeatureError(f"{path}: not a feature cache (no rows or no 'feature' column)")
    return table.drop(["feature"]), feature_array(table)


def check_finite_and_audible(batch: np.ndarray, names: list[str]) -> None:
    """Reject notes ``[B, T]`` with NaN or infinite samples, or digitally silent; names the first bad one."""
    finite = np.isfinite(batch).all(axis=1)
    if not finite.all():
        raise FeatureError(f"note {names[int(np.argmin(finite))]!r}: audio contains NaN or infinite samples")
    peak = np.abs(batch).max(axis=1)
    if (peak <= DIGITAL_SILENCE_PEAK).any():
        raise FeatureError(f"note {names[int(np.argmax(peak <= DIGITAL_SILENCE_PEAK))]!r}: audio is silent "
                           f"(peak {peak.min():.2g})")


def _fingerprint(store: AudioStore, name: str, params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"feature": name, **params}, sort_keys=True, default=str).encode())
    h.update(_store_identity(store))
    return h.hexdigest()


def _store_identity(store: AudioStore) -> bytes:
    """Bytes identifying the store's notes and audio file (names, gains, array size and mtime)."""
    stat = Path(store.audio.filename).stat()
    names = "\n".join(store.index["note_str"]).encode()
    return names + store.index["gain"].to_numpy().tobytes() + f"{stat.st_size}:{stat.st_mtime_ns}".encode()


def cache_features(
    store: AudioStore, out: str | Path, compute: Callable[[np.ndarray], np.ndarray], *, name: str,
    params: dict, batch_size: int = 16, chunk_batches: int = 8, progress: bool = True,
) -> int:
    """Compute ``compute(audio [B, T]) -> [B, *shape]`` for every note of ``store`` into ``out``.

    ``params`` (everything the result depends on, e.g. model checksum, settings, code digest) goes
    into the resume fingerprint, with the chunk size. Returns the number of notes cached.
    """
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    n, chunk = len(store), batch_size * chunk_batches
    fingerprint = _fingerprint(store, name, {**params, "chunk_notes": chunk})
    state = parts / "fingerprint.json"
    stale = not state.is_file() or json.loads(state.read_text()).get("fingerprint") != fingerprint
    if parts.exists() and stale:
        log.info("%s: inputs changed since the interrupted run; starting afresh", parts)
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state, {"fingerprint": fingerprint})

    names = store.index["note_str"].tolist()
    starts = list(range(0, n, chunk))
    done = {s for s in starts if (parts / f"part-{s:09d}.parquet").is_file()}
    if done:
        log.info("%s: resuming, %d of %d chunks already cached", out.name, len(done), len(starts))
    bar = progress_bar(total=n, initial=sum(min(chunk, n - s) for s in done), desc=f"{name} {out.stem}",
                       unit="note", disable=not progress)
    with bar:
        for start in starts:
            if start in done:
                continue
            values = []
            for b in range(start, min(start + chunk, n), batch_size):
                rows = np.arange(b, min(b + batch_size, n))
                audio = store.batch(rows)
                check_finite_and_audible(audio, names[b:b + len(rows)])
                values.append(_checked(compute(audio), names[b:b + len(rows)], name))
                bar.update(len(rows))
            with atomic_path(parts / f"part-{start:09d}.parquet", suffix=".parquet") as tmp:
                pq.write_table(pa.table({"feature": fixed_size_array(np.concatenate(values))}), tmp)

    features = pa.concat_tables([pq.read_table(parts / f"part-{s:09d}.parquet") for s in starts])
    if features.num_rows != n:
        raise FeatureError(f"{parts}: {features.num_rows} cached rows for {n} notes; delete the folder")
    meta = pa.Table.from_pandas(store.index.drop(columns=[c for c in DROP_COLUMNS if c in store.index]),
                                preserve_index=False)
    table = meta.append_column("feature", features.column("feature"))
    table = table.replace_schema_metadata({"feature": name, "params": json.dumps(params, default=str),
                                           "sample_rate": str(store.sample_rate)})
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    shutil.rmtree(parts)
    return n


def _checked(values: np.ndarray, names: list[str], name: str) -> np.ndarray:
    if values.shape[0] != len(names):
        raise FeatureError(f"{name}: got {values.shape[0]} results for a batch of {len(names)} notes "
                           f"starting at {names[0]!r}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int(np.argmin(np.isfinite(values.reshape(len(names), -1)).all(axis=1)))
        raise FeatureError(f"note {names[bad]!r}: {name} produced NaN or infinite values")
    return values
