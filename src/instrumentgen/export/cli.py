"""Command line of the export rule: every instrument of a generation manifest as a playable folder.

    python -m instrumentgen.export --manifest data/<p>/generated/<variant>/<task>/manifest.parquet \\
        --out-dir data/<p>/instruments/<variant>/<task>/instruments --index .../index.json

Each instrument goes to ``OUT_DIR/<instrument>/`` (WAVs, SFZ, SF2, demo MIDI and its FluidSynth
render; see :func:`~instrumentgen.export.instrument.export_instrument`); the index lists them with
their files and counts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from instrumentgen.atomic import write_json_atomic
from instrumentgen.export.instrument import export_instrument, file_stem
from instrumentgen.generate.manifest import read_manifest
from instrumentgen.progress import progress_bar

log = logging.getLogger(__name__)


def export_manifest(manifest_path: Path, out_dir: Path) -> dict:
    """Export every instrument of the manifest; returns the index (one entry per instrument)."""
    manifest = read_manifest(manifest_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    groups = manifest.groupby("instrument", sort=True)
    for instrument, cells in progress_bar(groups, total=groups.ngroups, desc="export", unit="instrument"):
        folder = out_dir / file_stem(str(instrument))
        summary = export_instrument(cells[["pitch", "velocity", "path"]], str(instrument), folder)
        entries[str(instrument)] = {k: v for k, v in summary.items() if k != "samples"}
    return {"manifest": str(manifest_path), "n_instruments": len(entries), "instruments": entries}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.export", description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--index", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        index = export_manifest(args.manifest, args.out_dir)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    write_json_atomic(args.index, index)
    log.info("exported %d instruments to %s", index["n_instruments"], args.out_dir)


if __name__ == "__main__":
    main()
