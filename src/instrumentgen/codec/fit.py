"""CLI of the ``bootstrap_codec`` rule: fit the offline codec on a resampled split.

``python -m instrumentgen.codec.fit --store data/tiny/resampled/train --out PATH.npz
--n-codebooks 4 --codebook-size 1024 --seed 1234 --max-frames 60000``; logs to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from instrumentgen.codec.fitted import (
    DEFAULT_LOG_FLOOR,
    DEFAULT_MAX_FRAMES,
    DEFAULT_WEIGHT_EXPONENT,
    FittedCodec,
)
from instrumentgen.data.store import AudioStore, StoreError, open_store

log = logging.getLogger(__name__)


class StoreRows:
    """A store's notes as float32 rows ``[N, T]`` sliceable like an array (read lazily)."""

    def __init__(self, store: AudioStore):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.store.batch(np.arange(len(self.store))[rows])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.codec.fit",
                                 description="Fit the offline residual k-means codec on a resampled split.")
    ap.add_argument("--store", type=Path, required=True, help="store prefix, e.g. data/tiny/resampled/train")
    ap.add_argument("--out", type=Path, required=True, help="codec file to write (.npz)")
    ap.add_argument("--n-codebooks", type=int, default=4)
    ap.add_argument("--codebook-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                    help="STFT frames drawn at random from the split to fit on")
    ap.add_argument("--n-fft", type=int, default=1024)
    ap.add_argument("--hop-length", type=int, default=480)
    ap.add_argument("--log-floor", type=float, default=DEFAULT_LOG_FLOOR)
    ap.add_argument("--weight-exponent", type=float, default=DEFAULT_WEIGHT_EXPONENT)
    ap.add_argument("--griffin-lim-iters", type=int, default=32)
    ap.add_argument("--median-frames", type=int, default=1,
                    help="decoding: per-bin median over this many (odd) frames; 1 = off")
    ap.add_argument("--max-epochs", type=int, default=20, help="bound on passes per k-means stage")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if args.out.suffix != ".npz":
        ap.error(f"--out must end in .npz, got {args.out}")
    t0 = time.perf_counter()
    try:
        store = open_store(args.store)
        log.info("fitting on %s: %d notes of %d samples at %d Hz", args.store, len(store), store.num_frames,
                 store.sample_rate)
        codec = FittedCodec.fit(
            StoreRows(store), store.sample_rate, n_codebooks=args.n_codebooks,
            codebook_size=args.codebook_size, seed=args.seed, max_frames=args.max_frames, n_fft=args.n_fft,
            hop_length=args.hop_length,
            log_floor=args.log_floor, weight_exponent=args.weight_exponent,
            griffin_lim_iters=args.griffin_lim_iters,
            median_frames=args.median_frames, max_epochs=args.max_epochs, progress=True)
    except (StoreError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    codec.save(args.out)
    log.info("fitted %r in %.1f s -> %s", codec, time.perf_counter() - t0, args.out)


if __name__ == "__main__":
    main()
