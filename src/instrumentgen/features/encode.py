"""CLIs of the feature-caching rules: codec codes and CLAP audio embeddings of a split, CLAP
text embeddings of the T2I prompts; each to one Parquet file (see :mod:`features.cache`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from instrumentgen.atomic import atomic_path
from instrumentgen.clap import load_embedder
from instrumentgen.codec import load_codec
from instrumentgen.data.store import open_store
from instrumentgen.download import sha256_file
from instrumentgen.features.cache import cache_features, fixed_size_array
from instrumentgen.prompts import load_prompts

log = logging.getLogger(__name__)


def codes_fn(codec):
    """``audio [B, T]`` → codes ``[B, K, F]`` int16 with the codec."""

    def encode(audio: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            codes = codec.encode(torch.from_numpy(audio)[:, None, :])
        if codes.min() < 0 or codes.max() >= codec.codebook_size:
            raise ValueError(f"codec returned codes outside [0, {codec.codebook_size})")
        return codes.numpy().astype(np.int16)

    return encode


def _embedder(args: argparse.Namespace):
    """The CLAP model of ``args.model`` (``.npz``: small CLAP; else a LAION-CLAP checkpoint)."""
    if args.model.suffix == ".npz":
        return load_embedder(args.model)
    return load_embedder(args.model, device=args.device)


def cache_codes(args: argparse.Namespace) -> None:
    codec = load_codec(args.model, args.n_codebooks, device=args.device)
    store = open_store(args.store)
    if store.sample_rate != codec.sample_rate:
        raise ValueError(f"{args.store}: audio at {store.sample_rate} Hz, the codec expects "
                         f"{codec.sample_rate} Hz")
    params = {"model_sha256": sha256_file(args.model), "n_codebooks": args.n_codebooks}
    cache_features(store, args.out, codes_fn(codec), name="codes", params=params, batch_size=args.batch_size)


def cache_audio_embeddings(args: argparse.Namespace) -> None:
    model = _embedder(args)
    store = open_store(args.store)
    params = {"model_sha256": sha256_file(args.model)}
    cache_features(store, args.out, lambda a: model.embed_audio(a, store.sample_rate), name="clap_audio",
                   params=params, batch_size=args.batch_size)


def cache_text_embeddings(args: argparse.Namespace) -> None:
    prompts = load_prompts(args.prompts)
    model = _embedder(args)
    emb = np.asarray(model.embed_text([p.text for p in prompts]), dtype=np.float32)
    if emb.shape[0] != len(prompts) or not np.isfinite(emb).all():
        raise ValueError(f"{args.model}: bad text embeddings for {args.prompts} (shape {emb.shape})")
    table = pa.table({"id": [p.id for p in prompts], "text": [p.text for p in prompts],
                      "source": [p.source for p in prompts], "feature": fixed_size_array(emb)})
    with atomic_path(args.out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    log.info("%s: %d prompt embeddings of dim %d", args.out, len(prompts), emb.shape[1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.features.encode", description=__doc__)
    sub = ap.add_subparsers(dest="what", required=True)
    codes = sub.add_parser("codes", help="codec codes [K, F] int16 per note")
    codes.add_argument("--n-codebooks", type=int, required=True)
    audio = sub.add_parser("clap-audio", help="CLAP audio embeddings per note")
    text = sub.add_parser("clap-text", help="CLAP text embeddings of the T2I prompts")
    for p in (codes, audio):
        p.add_argument("--store", type=Path, required=True,
                       help="resampled store prefix, e.g. data/tiny/resampled/train")
        p.add_argument("--batch-size", type=int, default=16)
    text.add_argument("--prompts", type=Path, required=True)
    for p in (codes, audio, text):
        p.add_argument("--model", type=Path, required=True,
                       help="codec/CLAP file: .npz (offline models) or pretrained weights (.pth/.pt)")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run = {"codes": cache_codes, "clap-audio": cache_audio_embeddings, "clap-text": cache_text_embeddings}
    try:
        run[args.what](args)
    except ValueError as e:  # FeatureError, CodecFileError, PromptFileError, ...: messages name the cause
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
