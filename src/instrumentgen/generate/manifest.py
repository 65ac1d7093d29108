"""The generation manifest: one Parquet row per generated note (instrument, pitch, velocity, path, ...).

Paths are stored relative to the manifest's folder (the folder can move, e.g. after ``dvc pull`` into
another clone); :func:`read_manifest` returns them as paths a reader can open.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from instrumentgen.atomic import atomic_path

REQUIRED = ("instrument", "pitch", "velocity", "path")


class ManifestError(ValueError):
    """A missing, foreign or empty manifest; the message names it."""


def write_manifest(manifest: pd.DataFrame, path: str | Path) -> None:
    """Write ``manifest`` atomically as Parquet."""
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(pa.Table.from_pandas(manifest, preserve_index=False), tmp)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A generation manifest with its ``path`` column joined to the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    manifest = pd.read_parquet(path)
    missing = [c for c in REQUIRED if c not in manifest.columns]
    if missing:
        raise ManifestError(f"{path} is not a generation manifest (no {missing[0]!r} column)")
    if manifest.empty:
        raise ManifestError(f"manifest {path} lists no notes")
    manifest = manifest.copy()
    manifest["path"] = [str(path.parent / p) for p in manifest["path"]]
    return manifest
