"""CLI: reconstruction quality of a codec on a resampled split, written as JSON.

``python -m instrumentgen.codec.evaluate --codec PATH --store data/tiny/resampled/test
--out results/.../codec_quality.json [--max-notes N]``. Only notes with MIDI pitch in 36..96 (the
range pYIN tracks reliably) are evaluated; ``--max-notes`` draws a seeded random subset of them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instrumentgen.atomic import write_json_atomic
from instrumentgen.codec import quality
from instrumentgen.codec.base import Codec, CodecFileError
from instrumentgen.codec.loading import load_codec
from instrumentgen.data.store import AudioStore, StoreError, open_store
from instrumentgen.download import DownloadError
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)

TARGET_SHARE = 0.95


def select_notes(store: AudioStore, pitch_range: tuple[int, int], max_notes: int | None,
                 seed: int) -> np.ndarray:
    """Rows of the notes with pitch in ``pitch_range`` (inclusive); at most ``max_notes``, drawn with
    ``seed`` (sorted)."""
    pitch = store.index["pitch"].to_numpy()
    rows = np.flatnonzero((pitch >= pitch_range[0]) & (pitch <= pitch_range[1]))
    if max_notes is not None and max_notes < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_notes, replace=False))
    return rows


def reconstruct(codec: Codec, store: AudioStore, rows: np.ndarray,
                batch_size: int) -> tuple[np.ndarray, dict[str, float]]:
    """Encode and decode notes ``rows``: reconstructions ``[N, T]`` (cropped to T) and timings."""
    out = np.empty((len(rows), store.num_frames), np.float32)
    t_enc = t_dec = 0.0
    with progress_bar(total=len(rows), desc="codec round trip", unit="note") as bar:
        for start in range(0, len(rows), batch_size):
            x = torch.from_numpy(store.batch(rows[start:start + batch_size]))[:, None]
            t0 = time.perf_counter()
            codes = codec.encode(x)
            t1 = time.perf_counter()
            y = codec.decode(codes)
            t2 = time.perf_counter()
            t_enc, t_dec = t_enc + t1 - t0, t_dec + t2 - t1
            out[start:start + len(x)] = y[:, 0, :store.num_frames].numpy()
            bar.update(len(x))
    n = max(len(rows), 1)
    return out, {"encode_s_per_note": t_enc / n, "decode_s_per_note": t_dec / n, "batch_size": batch_size}


def _by_family(families: np.ndarray, cents: dict[str, list], tolerance: float) -> dict[str, dict[str, float]]:
    """Share of notes within ``tolerance`` per family, for the reconstruction and the original."""
    out = {}
    for fam in sorted(set(families)):
        mask = families == fam
        row: dict[str, Any] = {"n_notes": int(mask.sum())}
        for which in ("reconstruction", "original"):
            c = np.array([np.nan if v is None else v for v in cents[which]], dtype=np.float64)[mask]
            row[f"share_{which}"] = float(np.mean(np.abs(np.nan_to_num(c, nan=np.inf)) <= tolerance))
        out[str(fam)] = row
    return out


def evaluate(codec_path: Path, store_prefix: Path, *, max_notes: int | None = None, seed: int = 0,
             batch_size: int = 32, pitch_range: tuple[int, int] = quality.PITCH_RANGE,
             n_codebooks: int = 4, device: str = "cpu") -> dict[str, Any]:
    """The quality report of the codec at ``codec_path`` on the store ``store_prefix`` (see module doc)."""
    codec = load_codec(codec_path, n_codebooks=n_codebooks, device=device)
    store = open_store(store_prefix)
    if store.sample_rate != codec.sample_rate:
        raise ValueError(f"{store_prefix}: stored at {store.sample_rate} Hz but the codec {codec_path} "
                         f"runs at {codec.sample_rate} Hz")
    rows = select_notes(store, pitch_range, max_notes, seed)
    if len(rows) == 0:
        raise ValueError(f"{store_prefix}: no note with MIDI pitch in {pitch_range[0]}..{pitch_range[1]}")
    log.info("evaluating %s on %d notes of %s", codec_path, len(rows), store_prefix)
    recon, timing = reconstruct(codec, store, rows, batch_size)
    original = store.batch(rows)
    index = store.index.iloc[rows]
    t0 = time.perf_counter()
    pitch = quality.pitch_accuracy(original, recon, store.sample_rate, index["pitch"].to_numpy())
    log.info("pitch tracking took %.1f s", time.perf_counter() - t0)
    cents = pitch.pop("per_note_cents")
    rec = pitch["reconstruction"]
    notes = zip(index["note_str"], index["pitch"], cents["reconstruction"], cents["original"], strict=True)
    misses = [{"note_str": n, "pitch": int(p), "cents_reconstruction": c, "cents_original": o}
              for n, p, c, o in notes if c is None or abs(c) > pitch["tolerance_cents"]]
    subset = max_notes is not None and len(rows) == max_notes
    return {
        "codec": str(codec_path), "codec_repr": repr(codec), "store": str(store_prefix),
        "sample_rate": store.sample_rate, "note_seconds": store.num_frames / store.sample_rate,
        "n_notes_in_store": len(store),
        "pitch_range_midi": list(pitch_range),
        "selection": (f"notes with MIDI pitch in {pitch_range[0]}..{pitch_range[1]} (the range pYIN tracks "
                      f"reliably)" + (f", {len(rows)} drawn at random with seed {seed}" if subset
                                      else ", all of them")),
        "n_notes_evaluated": len(rows),
        "pitch_tracker": (f"librosa.pyin, median f0 of voiced frames within {quality.GATE_DB:g} dB of the "
                          f"note's loudest frame, search range ±1 octave (< 0.45 sr)"),
        **pitch,
        "target_share": TARGET_SHARE,
        "meets_target": bool(rec["share_within"] >= TARGET_SHARE),
        "by_family": _by_family(index["instrument_family_str"].to_numpy(), cents, pitch["tolerance_cents"]),
        "misses": misses,
        "mel_distance": quality.mel_distance(original, recon, store.sample_rate),
        "mel_distance_definition": "mean |log10 mel power (floor 1e-5) difference|, n_fft 512/1024/2048, "
                                   "hop n_fft/4, 40/80/128 mel bands; 'mean' averages the scales",
        "timing": timing,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.codec.evaluate",
                                 description="Reconstruction quality of a codec (pitch kept, mel distance).")
    ap.add_argument("--codec", type=Path, required=True, help="fitted codec .npz or DAC weights .pth")
    ap.add_argument("--store", type=Path, required=True, help="store prefix, e.g. data/tiny/resampled/test")
    ap.add_argument("--out", type=Path, required=True, help="JSON report to write")
    ap.add_argument("--max-notes", type=int, default=0, help="evaluate a random subset of this size (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the --max-notes subset")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n-codebooks", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="for DAC")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if args.max_notes < 0:
        ap.error(f"--max-notes must be >= 0, got {args.max_notes}")
    try:
        report = evaluate(args.codec, args.store, max_notes=args.max_notes or None, seed=args.seed,
                          batch_size=args.batch_size, n_codebooks=args.n_codebooks, device=args.device)
    except (CodecFileError, StoreError, DownloadError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    write_json_atomic(args.out, report)
    rec, orig = report["reconstruction"], report["original"]
    log.info("pitch within ±%g cents: reconstruction %d/%d (%.1f%%), original %d/%d (%.1f%%); "
             "mel distance %.3f -> %s", report["tolerance_cents"], rec["n_within"], rec["n_notes"],
             100 * rec["share_within"], orig["n_within"], orig["n_notes"], 100 * orig["share_within"],
             report["mel_distance"]["mean"], args.out)


if __name__ == "__main__":
    main()
