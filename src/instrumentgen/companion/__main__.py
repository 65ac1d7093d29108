"""Build the companion page of a profile from the pipeline's files (rule ``companion_page``).

    python -m instrumentgen.companion --title "instrumentgen · tiny profile" \\
        --test-store data/tiny/resampled/test --prompts workflow/prompts/offline.yaml \\
        --s2i baseline=data/tiny/generated/baseline/s2i/manifest.parquet ... \\
        --s2i-exports baseline=data/tiny/instruments/baseline/s2i/index.json ... \\
        --t2i baseline=data/tiny/generated/baseline/t2i/manifest.parquet ... \\
        --t2i-exports baseline=data/tiny/instruments/baseline/t2i/index.json ... \\
        --out results/tiny/companion

Serve the result with ``python -m http.server --directory results/tiny/companion`` (the keyboard
fetches its samples, which browsers refuse to do for pages opened from disk).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from instrumentgen.companion.cards import build_groups
from instrumentgen.companion.page import write_page
from instrumentgen.data.store import open_store
from instrumentgen.export.index import read_index
from instrumentgen.generate.manifest import read_manifest
from instrumentgen.prompts import load_prompts
from instrumentgen.variant_args import parse_pairs

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m instrumentgen.companion", description=__doc__.split("\n")[0])
    p.add_argument("--title", required=True)
    p.add_argument("--test-store", type=Path, required=True, help="resampled test split prefix")
    p.add_argument("--prompts", type=Path, required=True, help="the profile's T2I prompt file")
    for task in ("s2i", "t2i"):
        p.add_argument(f"--{task}", nargs="+", required=True, help=f"VARIANT={task.upper()} manifest")
        p.add_argument(f"--{task}-exports", nargs="+", required=True,
                       help=f"VARIANT={task.upper()} export index.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=1, help="cards written at once (threads)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        manifests, exports = {}, {}
        for task in ("s2i", "t2i"):
            pairs = parse_pairs(getattr(args, task), f"--{task}")
            export_pairs = parse_pairs(getattr(args, f"{task}_exports"), f"--{task}-exports")
            if list(pairs) != list(export_pairs):
                raise ValueError(f"--{task} and --{task}-exports must name the same variants in the same "
                                 f"order, got {list(pairs)} and {list(export_pairs)}")
            manifests[task] = {v: read_manifest(p) for v, p in pairs.items()}
            exports[task] = {v: read_index(p) for v, p in export_pairs.items()}
        prompts = {p.id: p.text for p in load_prompts(args.prompts)}
        store = open_store(args.test_store)
        groups = build_groups(manifests["s2i"], manifests["t2i"], exports, store, prompts)
        table = write_page(args.out, args.title, groups, workers=args.workers)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    log.info("companion page: %d groups, %d cards -> %s", len(groups), len(table), args.out)


if __name__ == "__main__":
    main()
