"""Command line of the generate rules: one variant, one protocol (S2I or T2I) → WAVs + manifest Parquet.

    python -m instrumentgen.generate --task s2i --model data/<p>/lm/baseline.pt --codec CODEC \\
        --clap-cache data/<p>/features/clap_audio/test.parquet --note-seconds 4.0 --seed 1234 \\
        --decoding '{"sampling": {...}, "magnet": {...}}' --out-dir DIR/audio --manifest DIR/manifest.parquet
    python -m instrumentgen.generate --task t2i ... \\
        --clap-cache data/<p>/features/clap_text/prompts.parquet \\
        --grid '{"pitches": [21, ..., 108], "velocities": [25, 50, 75, 100, 127]}'

S2I takes every instrument of the CLAP audio cache (its rows are the notes; each instrument's seeded
query note conditions all its cells); T2I takes every prompt of the text cache over the grid. The manifest
has one row per note: instrument, pitch, velocity, path (relative to the manifest's folder), seed,
decoder, decoding_steps, wall_s, gain, and the plan's clap_source, clap_row, query_note, task, variant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from instrumentgen.checks import json_object, positive_int
from instrumentgen.features.cache import read_features
from instrumentgen.generate.manifest import write_manifest
from instrumentgen.generate.protocols import s2i_plan, t2i_plan
from instrumentgen.generate.session import GenerationSession
from instrumentgen.generate.settings import decoder_from_dict

log = logging.getLogger(__name__)
TASKS = ("s2i", "t2i")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m instrumentgen.generate", description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--model", type=Path, required=True, help="trained LM file (data/<p>/lm/<variant>.pt)")
    p.add_argument("--codec", type=Path, required=True, help="codec file (.npz fitted, .pth DAC)")
    p.add_argument(
        "--clap-cache",
        type=Path,
        required=True,
        help="S2I: CLAP audio cache of the test split; T2I: CLAP text cache of the prompts",
    )
    p.add_argument("--grid", default=None, help='T2I: JSON {"pitches": [...], "velocities": [...]}')
    p.add_argument("--note-seconds", type=float, required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--decoding", default="{}", help='JSON {"sampling": {...}, "magnet": {...}}')
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out-dir", type=Path, required=True, help="WAVs go to OUT_DIR/<instrument>/")
    p.add_argument("--manifest", type=Path, required=True)
    return p.parse_args(argv)


def build_plan(task: str, clap_cache: Path, grid: str | None, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The plan of ``task`` and the CLAP matrix ``[N, D]`` its ``clap_row`` column indexes."""
    meta, clap = read_features(clap_cache)
    table = meta.to_pandas()
    if task == "s2i":
        missing = {"instrument_str", "pitch", "velocity", "note_str"} - set(table.columns)
        if missing:
            raise ValueError(f"{clap_cache} is not a CLAP audio cache of notes (no {sorted(missing)[0]!r})")
        return s2i_plan(table[["instrument_str", "pitch", "velocity", "note_str"]], seed), clap
    if grid is None:
        raise ValueError("T2I needs --grid (the pitches and velocities to generate)")
    if "id" not in table.columns:
        raise ValueError(f"{clap_cache} is not a CLAP text cache of prompts (no 'id' column)")
    spec = json_object(grid, "--grid")
    unknown = sorted(set(spec) - {"pitches", "velocities"})
    if unknown or not {"pitches", "velocities"} <= set(spec):
        raise ValueError(f"--grid needs exactly the keys pitches and velocities, got {sorted(spec)}")
    return t2i_plan(table, spec["pitches"], spec["velocities"]), clap


def run(args: argparse.Namespace) -> pd.DataFrame:
    decoder = decoder_from_dict(json_object(args.decoding, "--decoding"))
    positive_int("--batch-size", args.batch_size)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    plan, clap = build_plan(args.task, args.clap_cache, args.grid, args.seed)
    session = GenerationSession.open(args.model, args.codec, decoder, args.note_seconds, args.device)
    session.check_clap(clap, args.clap_cache)
    log.info(
        "%s %s: %d notes of %d instruments, %d frames each, decoder %s",
        session.variant,
        args.task,
        len(plan),
        plan["instrument"].nunique(),
        session.n_frames,
        session.model.config.objective,
    )
    t0 = time.perf_counter()
    manifest = session.generate(
        plan, clap, args.out_dir, args.seed, batch_size=args.batch_size, progress=True
    )
    log.info("generated %d notes in %.1f s", len(manifest), time.perf_counter() - t0)
    keys = ["instrument", "pitch", "velocity"]
    extra = plan[keys + ["clap_source", "clap_row", "query_note"]].astype({"instrument": str})
    manifest = manifest.merge(extra, on=keys, how="left", validate="one_to_one")
    root = args.manifest.parent.resolve()
    manifest["path"] = [os.path.relpath(Path(p).resolve(), root) for p in manifest["path"]]
    manifest["task"] = args.task
    manifest["variant"] = session.variant
    write_manifest(manifest, args.manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, OSError) as err:  # checkpoint, codec, cache and settings errors name the file/key
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
