"""CLI used by the ``synthesize`` rule: ``python -m instrumentgen.synth --out-root DIR ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from instrumentgen.synth import synthesize_dataset


def _per_family(text: str) -> dict[str, int]:
    """``train=4,valid=1,test=1`` → ``{"train": 4, "valid": 1, "test": 1}``."""
    try:
        return {k: int(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected split=count[,split=count...], got {text!r}") from None


def _dropout(text: str) -> float | dict[str, float]:
    """``0.05`` (every split) or ``train=0.8,valid=0.05,test=0.05`` (per split)."""
    try:
        if "=" not in text:
            return float(text)
        return {k: float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a probability or split=probability[,split=probability...], got {text!r}"
        ) from None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.synth",
                                 description="Build a synthetic NSynth-format dataset.")
    ap.add_argument("--out-root", type=Path, required=True, help="gets nsynth-<split>/ and captions.json")
    # No defaults: the rule passes every value from params.yaml (the single source of parameters).
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--instruments-per-family", type=_per_family, required=True,
                    help="e.g. train=4,valid=1,test=1")
    ap.add_argument("--pitch-step", type=int, required=True)
    ap.add_argument("--cell-dropout", type=_dropout, required=True,
                    help="e.g. 0.05, or train=0.8,valid=0.05,test=0.05")
    ap.add_argument("--sample-rate", type=int, required=True)
    ap.add_argument("--note-seconds", type=float, required=True)
    ap.add_argument("--velocities", type=int, nargs="+", required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        counts = synthesize_dataset(
            args.out_root, seed=args.seed, instruments_per_family=args.instruments_per_family,
            sample_rate=args.sample_rate, note_seconds=args.note_seconds, pitch_step=args.pitch_step,
            velocities=args.velocities, cell_dropout=args.cell_dropout, workers=args.workers,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    logging.getLogger(__name__).info("synthesized %s notes into %s", counts, args.out_root)


if __name__ == "__main__":
    main()
