"""Cache codec codes ``[K, F]`` int16 of every note of a split (rule ``encode_codes``).

    python -m instrumentgen.features.codes --model CODEC --store data/<p>/resampled/<split>
        --out data/<p>/features/codes/<split>.parquet --n-codebooks 4
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from instrumentgen.codec.base import Codec
from instrumentgen.codec.loading import load_codec
from instrumentgen.codedeps import loaded_code_digest
from instrumentgen.data.store import open_store
from instrumentgen.download import loaded_file_digest
from instrumentgen.features import cli
from instrumentgen.features.cache import FeatureError, cache_features


def codes_fn(codec: Codec):
    """``audio [B, T]`` → codes ``[B, K, F]`` int16 with ``codec``."""

    def encode(audio: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            codes = codec.encode(torch.from_numpy(audio)[:, None, :]).cpu()
        if codes.min() < 0 or codes.max() >= codec.codebook_size:
            raise FeatureError(f"codec returned codes outside [0, {codec.codebook_size})")
        return codes.numpy().astype(np.int16)

    return encode


def cache_codes(args: argparse.Namespace) -> None:
    codec = load_codec(args.model, args.n_codebooks, device=args.device)
    store = open_store(args.store)
    if store.sample_rate != codec.sample_rate:
        raise FeatureError(f"{args.store}: audio at {store.sample_rate} Hz, the codec {args.model} expects "
                           f"{codec.sample_rate} Hz")
    params = {"model_sha256": loaded_file_digest(args.model), "n_codebooks": args.n_codebooks,
              "code": loaded_code_digest()}
    cache_features(store, args.out, codes_fn(codec), name="codes", params=params, batch_size=args.batch_size)


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser("instrumentgen.features.codes", __doc__)
    ap.add_argument("--n-codebooks", type=int, required=True)
    cli.run(cache_codes, ap.parse_args(argv))


if __name__ == "__main__":
    main()
