"""The note manifest: one Parquet table per split, one row per note.

Columns: NSynth's metadata fields (``note_str`` … ``instrument_source_str``), plus ``path``
(the source WAV), ``num_frames`` and ``duration_s``. Rows are sorted by
(``instrument_str``, ``pitch``, ``velocity``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from instrumentgen.atomic import atomic_path

SCHEMA = pa.schema([
    ("note_str", pa.string()),
    ("note", pa.int64()),
    ("instrument", pa.int64()),
    ("instrument_str", pa.string()),
    ("pitch", pa.int16()),
    ("velocity", pa.int16()),
    ("sample_rate", pa.int32()),
    ("qualities", pa.list_(pa.int8())),
    ("qualities_str", pa.list_(pa.string())),
    ("instrument_family", pa.int8()),
    ("instrument_family_str", pa.string()),
    ("instrument_source", pa.int8()),
    ("instrument_source_str", pa.string()),
    ("path", pa.string()),
    ("num_frames", pa.int64()),
    ("duration_s", pa.float64()),
])
SORT_KEYS = ["instrument_str", "pitch", "velocity"]


class ManifestError(ValueError):
    """A manifest that is missing, empty or lacks columns."""


def to_table(rows: list[dict], schema: pa.Schema = SCHEMA) -> pa.Table:
    """Rows (dicts with the schema's columns) → a sorted Arrow table with the manifest schema."""
    df = pd.DataFrame(rows, columns=schema.names).sort_values(SORT_KEYS, kind="stable")
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def write_table(table: pa.Table, out: str | Path) -> None:
    """Write ``table`` to ``out`` atomically (zstd-compressed Parquet)."""
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest(path: str | Path, required: list[str] | None = None) -> pd.DataFrame:
    """Read a manifest Parquet; checks that it exists, is non-empty and has ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    df = pq.read_table(path).to_pandas()
    missing = [c for c in (required or SCHEMA.names) if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise ManifestError(f"{path}: manifest has no notes")
    return df
