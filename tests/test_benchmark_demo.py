"""The demo benchmark's helpers: phase times read from a Snakemake log, memory of a process tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phase_times_come_from_the_last_finished_job_of_each_phase(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # demo.py imports measure.py next to it
    demo = load("demo")
    log = """Building DAG of jobs...
[Fri Dec  4 01:31:55 2026]
rule synthesize:
[Fri Dec  4 01:32:05 2026]
Finished jobid: 3 (Rule: synthesize)
[Fri Dec  4 01:32:40 2026]
Finished jobid: 9 (Rule: resample)
[Fri Dec  4 01:45:15 2026]
Finished jobid: 1 (Rule: train_variant)
[Fri Dec  4 01:46:15 2026]
Finished jobid: 0 (Rule: all)
"""
    phases = {"synthesize": "data", "resample": "data", "train_variant": "train"}
    assert demo.phase_finish_times(log, phases) == {"data": 45.0, "train": 800.0}
    rules = demo.rule_phases(Path(__file__).resolve().parents[1] / "workflow" / "rules")
    assert rules["evaluate_tables"] == "evaluate" and rules["train_variant"] == "train"


def test_run_measured_sees_the_memory_of_children(tmp_path: Path):
    measure = load("measure")
    child = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.5)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    result = measure.run_measured([sys.executable, "-c", code], tmp_path, {}, tmp_path / "log.txt")
    assert result.returncode == 0 and result.wall_s > 0.5
    assert result.peak_single_rss_bytes > 200 * 2**20  # the child's buffer
    assert result.peak_rss_bytes > result.peak_single_rss_bytes  # plus the parent, summed
