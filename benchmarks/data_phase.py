"""Benchmark: wall time and peak memory of the data phase for the tiny and ci profiles, and of the
whole tiny run so far (every phase the DAG has: `all`).

    make bench            # or: .venv/bin/python benchmarks/data_phase.py [--profiles tiny ci]

Each profile runs from scratch (`snakemake --profile workflow/profiles/<p> --cores 2 data`) in a
fresh copy of the workflow in a temporary folder. Peak RSS is sampled every 50 ms over the
whole process tree (Snakemake plus its jobs and their workers), summed, so it is the memory
the phase needs at once; the largest single process is reported too. Results go to
benchmarks/results/data_phase.json (targets: data phase tiny <= 60 s, ci <= 20 s; whole tiny run
<= 10 min, on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from measure import git_commit, machine_info, run_measured

from instrumentgen.config import REPO_ROOT
from instrumentgen.workspace import OFFLINE_ENV, make_workspace

TARGETS_S = {("tiny", "data"): 60.0, ("ci", "data"): 20.0, ("tiny", "all"): 600.0}
OUT = REPO_ROOT / "benchmarks" / "results" / "data_phase.json"


def run_profile(profile: str, cores: int, target: str = "data") -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{profile}-") as tmp:
        ws = make_workspace(Path(tmp) / "ws")
        cmd = [str(Path(sys.executable).with_name("snakemake")), "--profile", f"workflow/profiles/{profile}",
               "--cores", str(cores), target]
        env = {**os.environ, **OFFLINE_ENV}
        log_path = Path(tmp) / "snakemake.log"
        measured = run_measured(cmd, ws, env, log_path)
        wall, peak_total = measured.wall_s, measured.peak_rss_bytes
        peak_single = measured.peak_single_rss_bytes
        if measured.returncode != 0:
            raise RuntimeError(f"{profile}: snakemake failed\n{log_path.read_text()[-4000:]}")
        notes = sum(len(json.loads(p.read_text()))
                    for p in (ws / "data" / profile).glob("*/nsynth-*/examples.json"))
        kept = sum(int(np.load(p, mmap_mode="r").shape[0])
                   for p in (ws / "data" / profile / "resampled").glob("*.npy"))
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_total / 2**20, 1),
            "peak_single_process_rss_mb": round(peak_single / 2**20, 1), "notes_synthesized": notes,
            "notes_resampled": kept, "target_wall_s": TARGETS_S.get((profile, target)),
            "meets_target": wall <= TARGETS_S.get((profile, target), float("inf"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["tiny", "ci"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data-only", action="store_true", help="skip the whole-run measurement")
    args = ap.parse_args()
    results = {p: run_profile(p, args.cores) for p in args.profiles}
    if not args.data_only:
        results["tiny_all_phases"] = run_profile("tiny", args.cores, "all")
    record = {
        "benchmark": "data phase (nsynth|synthesize -> prune -> resample) per profile, and the whole "
                     "tiny run (`all`), from scratch",
        "command": "make bench",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(REPO_ROOT),
        "machine": machine_info(),
        "cores": args.cores,
        "profiles": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
