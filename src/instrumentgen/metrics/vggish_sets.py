"""VGGish frames of the sets of an evaluation, for FAD-VGGish against the test set (``--vggish-*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instrumentgen.metrics.affinity import cell_mask
from instrumentgen.metrics.embed_notes import read_embeddings
from instrumentgen.metrics.frechet import MetricInputError, fad


class VGGishSets:
    """VGGish frames ``[N * E, 128]`` of the test set, for FAD-VGGish against it (None: not computed)."""

    def __init__(self, test: Path | None, reconstruction: Path | None, s2i: dict[str, Path],
                 t2i: dict[str, Path]) -> None:
        if test is None and (reconstruction or s2i or t2i):
            raise ValueError("--vggish-reconstruction/--vggish-s2i/--vggish-t2i need --vggish-test")
        self.test_path = test
        self.test = None if test is None else self.frames(test, "test set (VGGish)")
        self._s2i_test: np.ndarray | None = None  # the test frames without the S2I query cells, read once
        self.paths = {"codec reconstruction": reconstruction, **{("s2i", v): p for v, p in s2i.items()},
                      **{("t2i", v): p for v, p in t2i.items()}}

    @staticmethod
    def frames(path: Path, label: str, leave_out: pd.DataFrame | None = None) -> np.ndarray:
        """The frames ``[N * E, D]`` of a VGGish embeddings file (embed_notes --embedder vggish), without
        the notes of the cells ``leave_out`` (instrument, pitch, velocity) if given."""
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        kind = meta.get(b"feature", b"?").decode()
        notes, z = read_embeddings(path)
        if kind != "vggish" or z.ndim != 3:
            raise MetricInputError(
                f"{label}: {path} holds {kind!r} embeddings of shape {z.shape}, not VGGish frames [N, E, 128]"
            )
        if leave_out is not None:
            z = z[~cell_mask(notes, leave_out)]
        return z.reshape(-1, z.shape[-1])

    def check(self, s2i: dict[str, Path], t2i: dict[str, Path], reconstruction: bool) -> None:
        """Every set of the tables has VGGish embeddings when the test set has."""
        if self.test is None:
            return
        wanted = [("s2i", v) for v in s2i] + [("t2i", v) for v in t2i]
        wanted += ["codec reconstruction"] if reconstruction else []
        missing = [k for k in wanted if self.paths.get(k) is None]
        if missing:
            raise ValueError(f"--vggish-test is given but these sets have no VGGish embeddings: {missing}")
        unused = [k for k, p in self.paths.items() if p is not None and k not in wanted]
        if unused:
            raise ValueError(f"VGGish embeddings given for sets the tables do not have: {unused}")

    def fad(self, key: Any, label: str, queries: pd.DataFrame | None = None) -> float | None:
        """FAD-VGGish of set ``key`` against the test set; S2I sets (``queries`` given) leave the query
        cells out of both."""
        if self.test is None:
            return None
        if queries is not None and self._s2i_test is None:  # one evaluation has one set of query cells
            self._s2i_test = self.frames(self.test_path, "test set (VGGish)", queries)
        test = self.test if queries is None else self._s2i_test
        if key == "ground truth":
            return fad(test, test, ("test set (VGGish)", label))
        return fad(test, self.frames(self.paths[key], label, queries), ("test set (VGGish)", label))
