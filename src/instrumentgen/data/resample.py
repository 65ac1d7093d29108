"""Resample a split's notes to the codec's rate with soxr into the audio store (see ``store``).

Every source WAV is re-checked (rate, length) while read; every output has exactly
``resampled_length(frames, sample_rate, target_rate)`` samples; nothing is clipped (``store.quantize``).

Resumable: rows are written into ``<out>.partial`` (a memory-mapped ``.npy``) chunk by chunk,
and a sidecar ``<out>.partial.gains.npy`` (NaN = not done yet) plus ``<out>.partial.json``
(a fingerprint of the manifest and parameters) record progress. A killed run restarted with
the same inputs continues with the unfinished chunks; different inputs start afresh. The
final files appear (atomically) only when every note is done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pyarrow as pa
import soxr
from tqdm import tqdm

from instrumentgen.atomic import atomic_path, write_json_atomic
from instrumentgen.data.audio_io import AudioFileError, expected_frames, read_wav
from instrumentgen.data.manifest import read_manifest, write_table
from instrumentgen.data.store import quantize
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)
QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


class ResampleError(ValueError):
    """Bad parameters, a bad source file or a length mismatch; the message names it."""


def resampled_length(n: int, in_rate: int, out_rate: int) -> int:
    """Samples soxr returns for ``n`` input samples: ``n * out_rate / in_rate`` rounded half up."""
    return (2 * n * out_rate + in_rate) // (2 * in_rate)


def resample_note(audio: np.ndarray, in_rate: int, out_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``[T_in]`` float audio to ``[resampled_length(T_in)]`` float32, length verified."""
    out = soxr.resample(audio, in_rate, out_rate, quality=quality)
    expected = resampled_length(len(audio), in_rate, out_rate)
    if len(out) != expected:
        raise ResampleError(f"soxr returned {len(out)} samples, expected {expected}")
    return out.astype(np.float32, copy=False)


def _process_chunk(partial: str, start: int, paths: list[str], in_rate: int, out_rate: int,
                   quality: str, in_frames: int) -> tuple[int, np.ndarray]:
    """Resample notes ``paths`` into rows ``start:start+len(paths)`` of the partial array.

    Returns ``(start, gains [len(paths)])``; rows are flushed to disk before returning.
    """
    mm = np.load(partial, mmap_mode="r+")
    gains = np.empty(len(paths), dtype=np.float64)
    for j, path in enumerate(paths):
        try:
            y = resample_note(read_wav(path, in_rate, in_frames), in_rate, out_rate, quality)
        except ResampleError as e:
            raise ResampleError(f"{path}: {e}") from e
        mm[start + j], gains[j] = quantize(y)
    mm.flush()
    del mm
    return start, gains


def _fingerprint(manifest: Path, paths: list[str], **params) -> str:
    """Identity of a resampling job: the manifest, the parameters, and each source WAV's size and
    modification time (so re-rendered audio behind an unchanged manifest is not resumed)."""
    h = hashlib.sha256(manifest.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    for path in paths:
        st = os.stat(path)
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def resample_split(
    manifest: str | Path, out_audio: str | Path, out_index: str | Path, *, target_rate: int,
    quality: str = "HQ", sample_rate: int = 16000, note_seconds: float = 4.0, chunk_notes: int = 512,
    workers: int = 1, progress: bool = True,
) -> int:
    """Resample every note of ``manifest`` into ``out_audio`` (int16 ``[N, T]``) + ``out_index``.

    Returns:
        The number of notes written.
    """
    manifest, out_audio, out_index = Path(manifest), Path(out_audio), Path(out_index)
    if quality not in QUALITIES:
        raise ResampleError(f"quality {quality!r} is not one of {list(QUALITIES)}")
    if target_rate < 8000 or chunk_notes < 1 or workers < 1:
        raise ResampleError(f"bad parameters: target_rate={target_rate} (>= 8000), "
                            f"chunk_notes={chunk_notes} (>= 1), workers={workers} (>= 1)")
    df = read_manifest(manifest)
    in_frames = expected_frames(sample_rate, note_seconds)
    wrong = df[(df["sample_rate"] != sample_rate) | (df["num_frames"] != in_frames)]
    if len(wrong):
        raise ResampleError(f"{manifest}: {len(wrong)} note(s) are not {in_frames} frames at "
                            f"{sample_rate} Hz, e.g. {wrong['note_str'].iloc[0]!r}")
    out_frames = resampled_length(in_frames, sample_rate, target_rate)
    n = len(df)
    partial = out_audio.with_name(out_audio.name + ".partial")
    gains_path = out_audio.with_name(out_audio.name + ".partial.gains.npy")
    state_path = out_audio.with_name(out_audio.name + ".partial.json")
    paths = df["path"].tolist()
    fingerprint = _fingerprint(manifest, paths, target_rate=target_rate, quality=quality, sample_rate=sample_rate,
                               note_seconds=note_seconds, shape=[n, out_frames])
    gains = _resume_state(partial, gains_path, state_path, fingerprint, (n, out_frames))
    if gains is None:
        out_audio.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.int16, shape=(n, out_frames)).flush()
        gains = np.full(n, np.nan)
        _save_gains(gains_path, gains)
        write_json_atomic(state_path, {"fingerprint": fingerprint})
    else:
        log.info("resuming %s: %d of %d notes already done", partial, int(np.isfinite(gains).sum()), n)

    todo = [s for s in range(0, n, chunk_notes) if np.isnan(gains[s:s + chunk_notes]).any()]
    args = [(str(partial), s, paths[s:s + chunk_notes], sample_rate, target_rate, quality, in_frames)
            for s in todo]
    bar = progress_bar(total=n, initial=n - sum(len(a[2]) for a in args), desc=f"resample {out_audio.stem}",
               unit="note", disable=not progress)
    try:
        if workers == 1 or len(args) <= 1:
            for a in args:
                _record(*_process_chunk(*a), gains, gains_path, bar)
        else:
            _run_parallel(args, min(workers, len(args)), gains, gains_path, bar)
    except AudioFileError as e:
        raise ResampleError(str(e)) from e
    finally:
        bar.close()

    index = df.rename(columns={"path": "source_path"})
    index["sample_rate"] = target_rate
    index["num_frames"] = out_frames
    index["row"] = np.arange(n)
    index["gain"] = gains
    write_table(pa.Table.from_pandas(index, preserve_index=False), out_index)
    os.replace(partial, out_audio)
    for p in (gains_path, state_path):
        p.unlink(missing_ok=True)
    clipped = int((gains > 1).sum())
    log.info("%s: %d notes, %d -> %d Hz, %d samples each; %d note(s) scaled down to avoid clipping "
             "(max gain %.4f)", out_audio, n, sample_rate, target_rate, out_frames, clipped, gains.max())
    return n


def _record(start: int, g: np.ndarray, gains: np.ndarray, gains_path: Path, bar: tqdm) -> None:
    """Mark rows ``start:start+len(g)`` done (their audio is already flushed)."""
    gains[start:start + len(g)] = g
    _save_gains(gains_path, gains)
    bar.update(len(g))


def _run_parallel(args: list[tuple], workers: int, gains: np.ndarray, gains_path: Path, bar: tqdm) -> None:
    """Run chunks in worker processes; on the first failure cancel what has not started, keep
    (and record, for a resume) what finished, then raise that failure."""
    error: BaseException | None = None
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_process_chunk, *a) for a in args]
        for future in as_completed(futures):
            if future.cancelled():
                continue
            try:
                start, g = future.result()
            except Exception as e:  # re-raised below, after the finished chunks are recorded
                if error is None:
                    error = e
                    pool.shutdown(wait=False, cancel_futures=True)
                continue
            _record(start, g, gains, gains_path, bar)
    if error is not None:
        raise error


def _save_gains(path: Path, gains: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, gains)


def _resume_state(partial: Path, gains_path: Path, state_path: Path, fingerprint: str,
                  shape: tuple[int, int]) -> np.ndarray | None:
    """Gains of an earlier interrupted run with the same fingerprint, else ``None`` (and clean up)."""
    try:
        state = json.loads(state_path.read_text())
        gains = np.load(gains_path)
        arr = np.load(partial, mmap_mode="r")
        ok = state.get("fingerprint") == fingerprint and arr.shape == shape and gains.shape == (shape[0],)
        del arr
    except (OSError, ValueError):
        ok = False
    if ok:
        return gains
    for p in (partial, gains_path, state_path):
        p.unlink(missing_ok=True)
    return None


def main(argv: list[str] | None = None) -> None:
    """CLI used by the ``resample`` rule."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True, type=Path)
    ap.add_argument("--out-audio", required=True, type=Path)
    ap.add_argument("--out-index", required=True, type=Path)
    ap.add_argument("--target-rate", required=True, type=int)
    ap.add_argument("--quality", default="HQ", choices=QUALITIES)
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--note-seconds", type=float, default=4.0)
    ap.add_argument("--chunk-notes", type=int, default=512)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        resample_split(args.manifest, args.out_audio, args.out_index, target_rate=args.target_rate,
                       quality=args.quality, sample_rate=args.sample_rate, note_seconds=args.note_seconds,
                       chunk_notes=args.chunk_notes, workers=args.workers)
    except ValueError as e:  # ResampleError, ManifestError, StoreError: messages name the file
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
