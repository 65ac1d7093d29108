"""Feature caching: Parquet schema and dtypes, resume after a kill, bad audio named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instrumentgen.data.store import open_store, quantize
from instrumentgen.features.cache import FeatureError, cache_features, read_features

N, T, SR = 23, 400, 24000


def make_store(root: Path, audio: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, (N, T)).astype(np.float32) if audio is None else audio
    q = np.stack([quantize(a)[0] for a in audio])
    np.save(root / "train.npy", q)
    index = pd.DataFrame({"note_str": [f"bass_synthetic_001-{40 + i:03d}-100" for i in range(N)],
                          "instrument_str": "bass_synthetic_001", "pitch": np.arange(40, 40 + N),
                          "velocity": 100, "sample_rate": SR, "num_frames": T, "row": np.arange(N),
                          "gain": 1.0, "source_path": "x.wav"})
    pq.write_table(pa.Table.from_pandas(index, preserve_index=False), root / "train.parquet")
    return root / "train"


def stats(audio: np.ndarray) -> np.ndarray:
    """``[B, T]`` → ``[B, 2, 3]`` int16 (a 2-D feature like codec codes)."""
    q = np.round(audio * 1000).astype(np.int16)
    return np.stack([q[:, :3], q[:, -3:]], axis=1)


def killed_at_batch(n: int, calls: list[int]):
    """A feature function that records batch sizes in ``calls`` and is 'killed' at batch ``n``."""

    def compute(audio):
        calls.append(len(audio))
        if len(calls) == n:
            raise KeyboardInterrupt
        return stats(audio)

    return compute


def test_cached_table_schema_and_values(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    out = tmp_path / "codes" / "train.parquet"
    assert cache_features(store, out, stats, name="codes", params={"k": 1}, batch_size=4, progress=False) == N
    meta, values = read_features(out)
    assert values.shape == (N, 2, 3) and values.dtype == np.int16
    np.testing.assert_array_equal(values, stats(store.batch(np.arange(N))))
    assert meta.column("note_str").to_pylist() == store.index["note_str"].tolist()
    assert "row" not in meta.column_names and "gain" not in meta.column_names
    schema = pq.read_schema(out)
    outer = schema.field("feature").type
    assert pa.types.is_fixed_size_list(outer) and outer.list_size == 2
    assert outer.value_type.list_size == 3 and outer.value_type.value_type == pa.int16()
    assert schema.metadata[b"feature"] == b"codes"
    assert not (tmp_path / "codes" / "train.parquet.parts").exists()


def test_embeddings_are_float32(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    emb = lambda a: (a[:, :8] / np.linalg.norm(a[:, :8], axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    cache_features(store, tmp_path / "e.parquet", emb, name="clap", params={}, batch_size=5, progress=False)
    _, values = read_features(tmp_path / "e.parquet")
    assert values.shape == (N, 8) and values.dtype == np.float32


def test_resume_after_kill_computes_only_missing_chunks(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    out = tmp_path / "cache" / "train.parquet"
    with pytest.raises(KeyboardInterrupt):  # batches of 4, chunks of 2 batches: batch 5 is in chunk 3
        cache_features(store, out, killed_at_batch(5, []), name="codes", params={}, batch_size=4,
                       chunk_batches=2, progress=False)
    assert not out.exists() and len(list((tmp_path / "cache" / "train.parquet.parts").glob("part-*"))) == 2
    calls = []
    cache_features(store, out, lambda a: calls.append(len(a)) or stats(a), name="codes", params={},
                   batch_size=4, chunk_batches=2, progress=False)
    assert sum(calls) == N - 16  # two chunks of 8 notes were kept
    np.testing.assert_array_equal(read_features(out)[1], stats(store.batch(np.arange(N))))


def test_changed_params_start_afresh(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    out = tmp_path / "cache" / "train.parquet"
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        cache_features(store, out, killed_at_batch(3, calls), name="codes", params={"model": "a"},
                       batch_size=4, chunk_batches=1, progress=False)
    calls.clear()
    cache_features(store, out, lambda a: calls.append(len(a)) or stats(a), name="codes",
                   params={"model": "b"}, batch_size=4, chunk_batches=1, progress=False)
    assert sum(calls) == N  # nothing of model "a" was reused


def test_silent_note_named(tmp_path: Path):
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (N, T)).astype(np.float32)
    audio[7] = 0.0
    store = open_store(make_store(tmp_path, audio))
    with pytest.raises(FeatureError, match=r"note 'bass_synthetic_001-047-100': audio is silent"):
        cache_features(store, tmp_path / "x.parquet", stats, name="codes", params={}, progress=False)
    assert not (tmp_path / "x.parquet").exists()


def test_non_finite_note_named(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    store._gain[7] = np.nan  # a corrupt gain makes the note's samples NaN
    with pytest.raises(FeatureError, match=r"note 'bass_synthetic_001-047-100': audio contains NaN"):
        cache_features(store, tmp_path / "x.parquet", stats, name="codes", params={}, progress=False)


def test_wrong_result_count_named(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    with pytest.raises(FeatureError, match="got 1 results for a batch of 4"):
        cache_features(store, tmp_path / "x.parquet", lambda a: stats(a)[:1], name="codes", params={},
                       batch_size=4, progress=False)


def test_changed_batch_size_restarts_cleanly(tmp_path: Path):
    store = open_store(make_store(tmp_path))
    out = tmp_path / "cache" / "train.parquet"
    with pytest.raises(KeyboardInterrupt):
        cache_features(store, out, killed_at_batch(2, []), name="codes", params={}, batch_size=4,
                       chunk_batches=1, progress=False)
    cache_features(store, out, stats, name="codes", params={}, batch_size=5, chunk_batches=1, progress=False)
    np.testing.assert_array_equal(read_features(out)[1], stats(store.batch(np.arange(N))))
