"""Command line: train (or resume) one variant of the codec LM.

    python -m instrumentgen.train --variant baseline --lm '{"dim": 512, ...}' --settings '{"steps": ...}' \
        --seed 1234 --train-codes ... --train-clap ... [--train-reference ...] --valid-codes ... \
        --valid-clap ... [--valid-reference ...] --model-out M.pt --results-dir DIR --checkpoint-root DIR

Launch under ``torchrun --nproc_per_node N -m instrumentgen.train ...`` for DistributedDataParallel.
Everything is checked (variant, settings, model size, caches) before the first step.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from instrumentgen.checks import json_object
from instrumentgen.train.loop import SplitFiles, TrainRun, train
from instrumentgen.train.settings import TrainSettings
from instrumentgen.variants import VARIANTS, get_variant


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m instrumentgen.train", description=__doc__.split("\n")[0])
    p.add_argument("--variant", required=True, help=f"one of {', '.join(VARIANTS)}")
    p.add_argument("--lm", default="{}", help="JSON object of LM size settings (params.yaml lm)")
    p.add_argument("--settings", default="{}", help="JSON object of training settings (params.yaml train)")
    p.add_argument("--seed", type=int, default=1234)
    for split in ("train", "valid"):
        p.add_argument(f"--{split}-codes", type=Path, required=True)
        p.add_argument(f"--{split}-clap", type=Path, required=True)
        p.add_argument(f"--{split}-reference", type=Path, default=None, help="needed by the fixed variant")
    p.add_argument("--model-out", type=Path, required=True)
    p.add_argument("--results-dir", type=Path, required=True)
    p.add_argument("--checkpoint-root", type=Path, required=True)
    return p.parse_args(argv)


def build_run(args: argparse.Namespace) -> TrainRun:
    variant = get_variant(args.variant)
    for split in ("train", "valid"):
        for kind in ("codes", "clap", "reference"):
            path = getattr(args, f"{split}_{kind}")
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"--{split}-{kind} {path} does not exist")
        if variant.scheme == "fixed" and getattr(args, f"{split}_reference") is None:
            raise ValueError(
                f"variant {variant.name} needs --{split}-reference (the fixed-CLAP reference notes)"
            )
    return TrainRun(
        variant=variant.name,
        lm=json_object(args.lm, "--lm"),
        settings=TrainSettings.from_dict(json_object(args.settings, "--settings")),
        seed=args.seed,
        train=SplitFiles(args.train_codes, args.train_clap, args.train_reference),
        valid=SplitFiles(args.valid_codes, args.valid_clap, args.valid_reference),
        model_out=args.model_out,
        results_dir=args.results_dir,
        checkpoint_root=args.checkpoint_root,
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        run = build_run(args)
        summary = train(run)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: summary[k] for k in ("variant", "steps", "wall_s_total", "final_valid")}))
