"""The benchmarks' shared helpers (benchmarks/measure.py: memory of a process tree, a case run in its own
process, frames per note) and the demo benchmark's: phase times read from a Snakemake log."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

import dac

from instrumentgen.codec.dac_codec import DACCodec
from instrumentgen.config import load_profile

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
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


def test_run_case_process_reads_back_the_printed_result():
    measure = load("measure")
    env = {**os.environ, "PYTHONPATH": str(BENCH_DIR)}
    code = "from measure import print_result; print('working'); print_result({'case': 'x', 'n': [1, 2]})"
    done = measure.run_case_process([sys.executable, "-c", code], env)
    assert done.result == {"case": "x", "n": [1, 2]} and done.output == "working" and done.returncode == 0
    failed = measure.run_case_process([sys.executable, "-c", code + "; raise SystemExit('broken')"], env)
    assert failed.result is None and failed.returncode == 1 and "broken" in failed.stderr
    silent = measure.run_case_process([sys.executable, "-c", "print('no result')"], env)
    assert silent.result is None and silent.output == "no result" and silent.returncode == 0


def test_note_frames_follow_each_codecs_hop():
    measure = load("measure")
    rates = inspect.signature(dac.DAC).parameters["encoder_rates"].default  # the 44.1 kHz model's strides
    small = dac.DAC(encoder_dim=8, encoder_rates=rates, decoder_dim=16, decoder_rates=rates[::-1])
    assert measure.dac_hop_length() == DACCodec(small).hop_length == 512  # DAC 44.1 kHz (FACTS.md)
    assert measure.note_frames(load_profile("paper")) == 345  # 4 s at 44.1 kHz, hop 512 (DESIGN.md)
    assert measure.note_frames(load_profile("tiny")) == 25  # 1 s at 24 kHz, the fitted codec's hop 960
