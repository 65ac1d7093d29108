"""Fit the small CLAP of the offline profiles from a train split's (audio, caption) pairs.

    python -m instrumentgen.clap.train_small --store data/tiny/resampled/train \\
        --captions data/tiny/synthetic/captions.json --out PATH.npz --seed 1234

Every note pairs with its instrument's caption. Writes one ``.npz`` (atomically); see
:mod:`instrumentgen.clap.small`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from instrumentgen.clap.features import FeatureConfig, FeatureExtractor
from instrumentgen.clap.pairs import instrument_captions, load_captions, map_store
from instrumentgen.clap.small import FitConfig, SmallClap, fit_small_clap
from instrumentgen.data.store import open_store

log = logging.getLogger("instrumentgen.clap.train_small")


def train_small_clap(store_prefix: str | Path, captions_path: str | Path, out: str | Path, *,
                     features: FeatureConfig | None = None, config: FitConfig | None = None,
                     batch_size: int = 256, progress: bool = True) -> SmallClap:
    """Describe every note of ``store_prefix``, fit on its caption pairs, save to ``out``."""
    features = features or FeatureConfig()
    store = open_store(store_prefix)
    note_instruments = store.index["instrument_str"].astype(str).tolist()
    captions = instrument_captions(note_instruments, load_captions(captions_path), captions_path)
    t0 = time.perf_counter()
    descriptors = map_store(store, FeatureExtractor(features, batch_size), batch_size=batch_size,
                            desc="describe", progress=progress)
    t_describe = time.perf_counter() - t0
    model = fit_small_clap(descriptors, captions, features=features, config=config,
                           meta={"store": str(store_prefix), "instruments": len(set(note_instruments)),
                                 "describe_s": round(t_describe, 3)})
    model.meta["fit_s"] = round(time.perf_counter() - t0 - t_describe, 3)
    model.save(out)
    corr = model.meta["canonical_correlations"]
    log.info("small CLAP: %d notes of %d instruments, %d captions, vocabulary %d, PCA %d, CCA %d dims "
             "(correlations %.3f..%.3f); describe %.1f s, fit %.1f s -> %s", len(store),
             model.meta["instruments"], model.meta["captions"], model.meta["vocabulary_size"],
             model.meta["pca_dims_used"], model.meta["cca_dims_used"], corr[0], corr[-1], t_describe,
             model.meta["fit_s"], out)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="resampled split prefix, e.g. data/tiny/resampled/train")
    p.add_argument("--captions", required=True, help="JSON {instrument_str: caption}")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--seed", type=int, default=FitConfig.seed, help="seed of the orthonormal lift to --dim")
    p.add_argument("--window-s", type=float, default=FeatureConfig.window_s, help="analysis window (s)")
    p.add_argument("--pca-dims", type=int, default=FitConfig.pca_dims)
    p.add_argument("--cca-dims", type=int, default=FitConfig.cca_dims)
    p.add_argument("--text-reg", type=float, default=FitConfig.text_reg)
    p.add_argument("--dim", type=int, default=FitConfig.dim, help="embedding size (512 = LAION-CLAP's)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    train_small_clap(args.store, args.captions, args.out, features=FeatureConfig(window_s=args.window_s),
                     config=FitConfig(pca_dims=args.pca_dims, cca_dims=args.cca_dims,
                                      text_reg=args.text_reg, dim=args.dim, seed=args.seed),
                     batch_size=args.batch_size, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
