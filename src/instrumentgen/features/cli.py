"""Shared command-line plumbing of the feature-caching CLIs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import torch


def parser(prog: str, description: str, *, store: bool = True) -> argparse.ArgumentParser:
    """Arguments every caching CLI takes: ``--model``, ``--out``, ``--device`` (and the store)."""
    ap = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    ap.add_argument("--model", type=Path, required=True,
                    help="model file: .npz (offline models) or pretrained weights (.pth/.pt)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    if store:
        ap.add_argument("--store", type=Path, required=True,
                        help="resampled store prefix, e.g. data/tiny/resampled/train")
        ap.add_argument("--batch-size", type=int, default=16)
    return ap


def run(job: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """Run ``job``; a bad-input error (messages name the note or file) exits 1 with ``error:``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        job(args)
    except (ValueError, OSError) as e:  # FeatureError, CodecFileError, checkpoint/weights errors
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
