"""CLAP or VGGish audio embeddings of the notes an evaluation compares: generated notes (a generation
manifest's WAVs), the codec's reconstruction of a split (its cached codes, decoded) or a split itself
(its resampled store).

    python -m instrumentgen.metrics.embed_notes --model CLAP \\
        --manifest data/<p>/generated/<v>/<task>/manifest.parquet \\
        --out data/<p>/evaluation/clap/<v>_<task>.parquet
    python -m instrumentgen.metrics.embed_notes --model CLAP --codes data/<p>/features/codes/test.parquet \\
        --codec CODEC --out data/<p>/evaluation/clap/reconstruction_test.parquet
    python -m instrumentgen.metrics.embed_notes --embedder vggish --model VGGISH.pth \\
        --store data/<p>/resampled/test --out data/<p>/evaluation/vggish/test.parquet

The output Parquet has one row per note: ``instrument``, ``pitch``, ``velocity`` and ``feature``
(CLAP: ``[D]``; VGGish: ``[E, 128]``, one 128-d frame per 0.96 s example), float32, written
atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.features.cache import DIGITAL_SILENCE_PEAK, FeatureError, fixed_size_array, read_features
from instrumentgen.generate.manifest import read_manifest
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)
NOTE_COLUMNS = ["instrument", "pitch", "velocity"]


def note_table(meta: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """A cache's (or store index's) note metadata with the instrument *name* as ``instrument`` (split
    caches carry NSynth's numeric ``instrument`` id and the name in ``instrument_str``)."""
    notes = meta.to_pandas() if isinstance(meta, pa.Table) else meta
    if "instrument_str" in notes.columns:
        notes = notes.drop(columns=["instrument"], errors="ignore")
        notes = notes.rename(columns={"instrument_str": "instrument"})
    return notes


AudioBatches = Iterator[tuple[pd.DataFrame, np.ndarray]]


def manifest_batches(manifest: pd.DataFrame, batch_size: int) -> tuple[int, AudioBatches]:
    """Sample rate and batches (notes, audio ``[B, T]``) of a generation manifest's WAVs (paths resolved)."""
    if manifest.empty:
        raise FeatureError("the manifest lists no generated notes")
    rate = sf.info(manifest["path"].iloc[0]).samplerate

    def batches() -> AudioBatches:
        for start in range(0, len(manifest), batch_size):
            rows = manifest.iloc[start : start + batch_size]
            waves = []
            for path in rows["path"]:
                try:
                    audio, sr = sf.read(path, dtype="float32", always_2d=True)
                except (OSError, RuntimeError) as err:
                    raise FeatureError(f"generated note {path} cannot be read ({err})") from None
                if sr != rate:
                    raise FeatureError(f"generated note {path} is at {sr} Hz, the others at {rate} Hz")
                waves.append(audio.mean(axis=1))
            length = max(len(w) for w in waves)
            audio = np.stack([np.pad(w, (0, length - len(w))) for w in waves])
            yield rows[NOTE_COLUMNS], audio

    return rate, batches()


def read_code_cache(codes_path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Notes and codes ``[N, K, F]`` of a split's code cache."""
    meta, codes = read_features(codes_path)
    notes = note_table(meta)
    missing = set(NOTE_COLUMNS) - set(notes.columns)
    if missing or codes.ndim != 3:
        raise FeatureError(
            f"{codes_path} is not a code cache of notes ([N, K, F] codes with instrument, pitch, velocity)"
        )
    return notes, codes


def reconstruction_batches(notes: pd.DataFrame, codes: np.ndarray, codec, batch_size: int) -> AudioBatches:
    """Batches (notes, audio ``[B, T]``) of the codec's decoding of ``codes`` ``[N, K, F]``."""

    def batches() -> AudioBatches:
        for start in range(0, len(notes), batch_size):
            chunk = torch.from_numpy(codes[start : start + batch_size].astype(np.int64))
            with torch.no_grad():
                audio = codec.decode(chunk).squeeze(1).float().cpu().numpy()
            yield notes.iloc[start : start + batch_size][NOTE_COLUMNS], audio

    return batches()


def store_batches(store, batch_size: int) -> AudioBatches:
    """Batches (notes, audio ``[B, T]``) of a split's resampled store."""
    notes = note_table(store.index)

    def batches() -> AudioBatches:
        for start in range(0, len(store), batch_size):
            rows = np.arange(start, min(start + batch_size, len(store)))
            yield notes.iloc[rows][NOTE_COLUMNS], store.batch(rows)

    return batches()


def embed(batches: AudioBatches, total: int, embed_fn: Callable[[np.ndarray], np.ndarray],
          source: str = "notes") -> pd.DataFrame:
    """Run ``embed_fn(audio [B, T]) -> [B, D]`` over ``batches``; returns notes with a ``feature`` column.

    ``embed_fn`` may return ``[B, E, D]`` (frames per note) as long as every batch has the same E.
    Non-finite audio is an error; silent notes are embedded like any other (a model may generate
    silence, and the metrics must see it) and counted in the log. Errors name ``source`` (the manifest,
    store or code cache) and the first note of the batch."""
    frames, features, silent = [], [], 0
    with progress_bar(total=total, desc="embed", unit="note") as bar:
        for notes, audio in batches:
            names = [f"{r.instrument}-{r.pitch}-{r.velocity}" for r in notes.itertuples()]
            finite = np.isfinite(audio).all(axis=1)
            if not finite.all():
                raise FeatureError(
                    f"{source}: note {names[int(np.argmin(finite))]}: audio contains NaN or infinite samples"
                )
            silent += int((np.abs(audio).max(axis=1) <= DIGITAL_SILENCE_PEAK).sum())
            try:
                values = np.asarray(embed_fn(audio), dtype=np.float32)
            except ValueError as err:  # e.g. notes too short for VGGish
                raise FeatureError(f"{source}: notes {names[0]}…: {err}") from None
            if values.shape[0] != len(notes) or not np.isfinite(values).all():
                raise FeatureError(
                    f"{source}: the embedder returned {values.shape} / non-finite values for notes "
                    f"{names[0]}…"
                )
            if features and values.shape[1:] != features[0].shape[1:]:
                raise FeatureError(
                    f"{source}: notes {names[0]}…: embeddings of shape {values.shape[1:]}, earlier notes "
                    f"{features[0].shape[1:]} (notes of different lengths?)"
                )
            frames.append(notes)
            features.append(values)
            bar.update(len(notes))
    if silent:
        log.warning("%d of %d notes are silent (peak <= %g)", silent, total, DIGITAL_SILENCE_PEAK)
    table = pd.concat(frames, ignore_index=True)
    table["feature"] = list(np.concatenate(features))
    return table


def write_embeddings(table: pd.DataFrame, out: Path, params: dict, feature: str = "clap_audio") -> None:
    """``table`` (NOTE_COLUMNS + ``feature``) → Parquet at ``out``, atomically."""
    values = np.stack(table["feature"].to_numpy())
    arrow = pa.Table.from_pandas(table[NOTE_COLUMNS].astype({"instrument": str}), preserve_index=False)
    arrow = arrow.append_column("feature", fixed_size_array(values))
    arrow = arrow.replace_schema_metadata(
        {"feature": feature, "params": json.dumps(params, default=str)}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Notes (NOTE_COLUMNS) and embeddings ``[N, D]`` (VGGish: ``[N, E, 128]``) of an embeddings Parquet
    (this module's output, or a CLAP audio cache of a split, whose ``instrument_str`` is renamed)."""
    meta, values = read_features(path)
    notes = note_table(meta)
    missing = set(NOTE_COLUMNS) - set(notes.columns)
    if missing:
        raise FeatureError(f"{path} has no {sorted(missing)[0]!r} column: not embeddings of notes")
    return notes[NOTE_COLUMNS].astype({"instrument": str}), np.asarray(values, dtype=np.float64)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m instrumentgen.metrics.embed_notes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--embedder", choices=["clap", "vggish"], default="clap")
    p.add_argument(
        "--model", type=Path, required=True,
        help="CLAP model file (.npz offline, LAION checkpoint) or VGGish weights (torchvggish .pth)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="generation manifest (its WAVs are embedded)")
    source.add_argument(
        "--codes", type=Path, help="code cache of a split (decoded with --codec, then embedded)"
    )
    source.add_argument("--store", type=Path, help="resampled store of a split (data/<p>/resampled/<split>)")
    p.add_argument("--codec", type=Path, help="codec file, with --codes")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    return p.parse_args(argv)


def load_model(args: argparse.Namespace):
    """The embedder of ``--embedder``: ``embed_audio(audio [B, T], rate)``."""
    if args.embedder == "vggish":
        from instrumentgen.vggish.model import VGGishEmbedder

        return VGGishEmbedder.load(args.model, device=args.device, batch_size=args.batch_size)
    from instrumentgen.clap.loading import load_embedder

    return load_embedder(args.model, device=args.device)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.codes is not None and args.codec is None:
        raise ValueError("--codes needs --codec (the codec that decodes them)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.manifest is not None:
        manifest = read_manifest(args.manifest)
        rate, batches = manifest_batches(manifest, args.batch_size)
        total, source = len(manifest), {"manifest": str(args.manifest)}
    elif args.store is not None:
        from instrumentgen.data.store import open_store

        store = open_store(args.store)
        total, rate, source = len(store), store.sample_rate, {"store": str(args.store)}
        batches = store_batches(store, args.batch_size)
    else:
        from instrumentgen.codec.loading import load_codec

        notes, codes = read_code_cache(args.codes)
        codec = load_codec(args.codec, n_codebooks=codes.shape[1], device=args.device)
        total, rate = len(notes), codec.sample_rate
        batches = reconstruction_batches(notes, codes, codec, args.batch_size)
        source = {"codes": str(args.codes), "codec": str(args.codec)}
    model = load_model(args)
    where = " + ".join(str(v) for v in source.values())
    table = embed(batches, total, lambda audio: model.embed_audio(audio, rate), where)
    feature = "vggish" if args.embedder == "vggish" else "clap_audio"
    write_embeddings(table, args.out, {**source, "model": str(args.model), "sample_rate": rate}, feature)
    log.info("embedded %d notes -> %s", len(table), args.out)
    return len(table)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, OSError, RuntimeError) as err:  # FeatureError, ManifestError, model/codec files
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
