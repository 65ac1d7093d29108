"""Run a command and sample the memory of its whole process tree; run one benchmark case in its own
process and read its result back; the codec frames of a profile's note; what a benchmark record says
about the machine and the commit (shared by the benchmarks)."""

from __future__ import annotations

import json
import math
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


RESULT = "RESULT "
"""Starts the stdout line that carries a case's JSON result (:func:`print_result`)."""


def print_result(result: dict) -> None:
    """Print a case's ``result`` as the line :func:`run_case_process` reads back."""
    print(RESULT + json.dumps(result), flush=True)


@dataclass(frozen=True)
class CaseProcess:
    result: dict | None  # None: the process failed or printed no result
    output: str  # its other stdout lines
    stderr: str
    returncode: int


def run_case_process(cmd: list[str], env: dict[str, str]) -> CaseProcess:
    """Run one benchmark case in its own process (so that its peak memory is its own) and read back the
    result it printed with :func:`print_result`."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = proc.stdout.splitlines()
    found = [x for x in lines if x.startswith(RESULT)]
    result = json.loads(found[0][len(RESULT):]) if found and proc.returncode == 0 else None
    output = "\n".join(x for x in lines if not x.startswith(RESULT))
    return CaseProcess(result, output, proc.stderr, proc.returncode)


def dac_hop_length() -> int:
    """The hop of the paper's codec, DAC 44.1 kHz: the product of ``dac.DAC``'s encoder strides (the 44.1
    kHz model's are the class's defaults), read from the class without building or loading a model."""
    import inspect

    import dac

    return math.prod(inspect.signature(dac.DAC).parameters["encoder_rates"].default)


def note_frames(params: dict) -> int:
    """Codec frames of one note of a profile's ``params`` (``data.note_seconds`` at the resampled rate):
    its fitted codec's hop, or DAC's."""
    codec = params["codec"]
    hop = codec["fitted"]["hop_length"] if codec["kind"] == "fitted" else dac_hop_length()
    return math.ceil(round(params["data"]["note_seconds"] * params["resample"]["target_rate"]) / hop)
