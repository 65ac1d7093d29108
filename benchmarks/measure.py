"""Run a command and sample the memory of its whole process tree; what a benchmark record says about
the machine and the commit (shared by the benchmarks)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


def git_commit(repo: Path) -> str:
    """The short hash of ``repo``'s HEAD ('' outside a git checkout)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()


def machine_info() -> dict:
    """CPU count, processor and memory of this machine."""
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(sum of RSS over ``proc`` and its descendants, largest single RSS), in bytes."""
    total = largest = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_bytes: int  # summed over the tree: the memory needed at once
    peak_single_rss_bytes: int
    returncode: int


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 interval_s: float = 0.05) -> Measured:
    """Run ``cmd`` in ``cwd`` (output to ``log_path``), sampling the tree's RSS every ``interval_s``."""
    start = time.perf_counter()
    peak_total = peak_single = 0
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            total, single = tree_rss(watched)
            peak_total, peak_single = max(peak_total, total), max(peak_single, single)
            time.sleep(interval_s)
    return Measured(time.perf_counter() - start, peak_total, peak_single, proc.returncode)
