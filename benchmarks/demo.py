"""Benchmark: `make demo` from scratch — the whole tiny-profile DAG and its report — wall time and peak
memory, with the time each phase finished.

    make bench-demo       # or: .venv/bin/python benchmarks/demo.py [--cores 2]

Runs exactly the demo's two commands (`snakemake --profile workflow/profiles/tiny`, then `--report
results/tiny/report.html`) in a fresh copy of the workflow in a temporary folder. Peak RSS is sampled
every 50 ms over the whole process tree (Snakemake, its jobs and their workers), summed: the memory the
demo needs at once. Phase times come from Snakemake's log (when the last job of each phase's rules
finished). Targets (issue 6): whole demo <= 15 min and <= 4 GB peak RSS on a 2-core machine. Writes
benchmarks/results/demo_tiny.json and copies the run's Tables 2-3 there, so the README's figures can be
checked against it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from measure import git_commit, machine_info, run_measured

from instrumentgen.config import REPO_ROOT
from instrumentgen.workspace import OFFLINE_ENV, make_workspace

TARGET_WALL_S = 15 * 60
TARGET_RSS_GB = 4.0
OUT = REPO_ROOT / "benchmarks" / "results" / "demo_tiny.json"
_STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]$")
_FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)")


def rule_phases(rules_dir: Path) -> dict[str, str]:
    """``{rule: phase}`` from the file that defines each rule (``workflow/rules/<phase>.smk``)."""
    out = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        for name in re.findall(r"^rule (\w+):", smk.read_text(), re.M):
            out[name] = smk.stem
    return out


def phase_finish_times(log: str, phases: dict[str, str]) -> dict[str, float]:
    """Seconds from the first job's start until the last job of each phase finished."""
    first = None
    stamp = None
    finished: dict[str, float] = {}
    for line in log.splitlines():
        m = _STAMP.match(line.strip())
        if m:
            stamp = datetime.strptime(m.group(1).replace("  ", " "), "%a %b %d %H:%M:%S %Y")
            first = first or stamp
            continue
        m = _FINISHED.match(line.strip())
        if m and stamp is not None and m.group(1) in phases:
            finished[phases[m.group(1)]] = (stamp - first).total_seconds()
    return finished


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=None, help="--cores for Snakemake (default: the profile's)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--keep-results", action="store_true",
                    help="copy the run's results/tiny/ (tables, figures, report, metrics) into the repo")
    ap.add_argument("--workspace", type=Path,
                    help="run in this new folder and keep it (data/, results/, logs/ of the run), instead of "
                         "a temporary one")
    args = ap.parse_args()
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cores = ["--cores", str(args.cores)] if args.cores else []
    env = {**os.environ, **OFFLINE_ENV}
    if args.workspace is not None and args.workspace.exists():
        raise SystemExit(f"--workspace {args.workspace} exists: give a new folder")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        ws = make_workspace(args.workspace or Path(tmp) / "ws")
        run_log, report_log = Path(tmp) / "run.log", Path(tmp) / "report.log"
        run = run_measured([snakemake, "--profile", "workflow/profiles/tiny", *cores], ws, env, run_log)
        if run.returncode != 0:
            raise SystemExit(f"the tiny run failed:\n{run_log.read_text()[-4000:]}")
        report = run_measured(
            [snakemake, "--profile", "workflow/profiles/tiny", "--report", "results/tiny/report.html"],
            ws, env, report_log,
        )
        if report.returncode != 0:
            raise SystemExit(f"the report failed:\n{report_log.read_text()[-4000:]}")
        results = ws / "results" / "tiny"
        phases = phase_finish_times(run_log.read_text(), rule_phases(ws / "workflow" / "rules"))
        evaluation = json.loads((results / "metrics" / "evaluation.json").read_text())
        pitch = json.loads((results / "metrics" / "pitch_accuracy.json").read_text())
        report_mb = (results / "report.html").stat().st_size / 2**20
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for stem in ("table2", "table3"):
            shutil.copy(results / "evaluate" / f"{stem}.md", args.out.with_name(f"demo_tiny_{stem}.md"))
        if args.keep_results:
            shutil.copytree(results, REPO_ROOT / "results" / "tiny", dirs_exist_ok=True)
    wall = run.wall_s + report.wall_s
    peak = max(run.peak_rss_bytes, report.peak_rss_bytes) / 2**30
    single = max(run.peak_single_rss_bytes, report.peak_single_rss_bytes) / 2**30
    record = {
        "benchmark": "make demo from scratch: the tiny profile's whole DAG, then its Snakemake report",
        "command": "make bench-demo",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(REPO_ROOT),
        "machine": machine_info(),
        "wall_s": round(wall, 1),
        "run_wall_s": round(run.wall_s, 1),
        "report_wall_s": round(report.wall_s, 1),
        "phase_finished_after_s": phases,
        "peak_rss_gb": round(peak, 2),
        "peak_single_process_rss_gb": round(single, 2),
        "report_mb": round(report_mb, 2),
        "targets": {"wall_s": TARGET_WALL_S, "peak_rss_gb": TARGET_RSS_GB},
        "meets_targets": wall <= TARGET_WALL_S and peak <= TARGET_RSS_GB,
        "evaluation": evaluation,
        "pitch_accuracy": {k: v.get("share_within") for k, v in pitch.items() if isinstance(v, dict)},
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("evaluation",)}, indent=2))


if __name__ == "__main__":
    main()
