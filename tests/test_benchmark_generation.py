"""The generation benchmark's quick mode runs and writes the fields its README section reports.

The ``ar_vs_transformers`` case is left out: importing transformers alone takes ~6 s here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from instrumentgen.config import load_profile

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
BENCH = BENCH_DIR / "generation.py"


def test_quick_mode_writes_the_reported_fields(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # generation.py imports generation_cases/ next to it
    spec = importlib.util.spec_from_file_location("bench_generation", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    instrument_case = importlib.import_module("generation_cases.instrument")
    target = importlib.import_module("generation_cases.magnet_vs_ar").MAGNET_TARGET
    monkeypatch.setattr(instrument_case, "TINY", tmp_path / "no-demo")  # random tiny models, not the demo's
    started = datetime.now(UTC).replace(microsecond=0)
    out = tmp_path / "generation.json"
    threads = torch.get_num_threads()
    try:  # one thread: these small ops only lose from threading, and a busy machine makes it much worse
        cases = "magnet_vs_ar,batch_sweep,instrument"
        bench.main(["--quick", "--in-process", "--threads", "1", "--cases", cases, "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    record = json.loads(out.read_text())
    assert record["quick"] and record["machine"]["torch"] == torch.__version__
    assert record["machine"]["cpu_count"] == os.cpu_count()
    magnet, sweep, instrument = record["results"]
    assert magnet["threads"] == instrument["threads"] == 1
    assert started <= datetime.fromisoformat(magnet["date"]) <= datetime.now(UTC)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the cases ran in this process
    assert 0 < magnet["peak_rss_mb"] <= round(peak_mb)
    assert magnet["case"] == "magnet_vs_ar"
    assert magnet["forward_passes"] == {"magnet": 5, "ar": 12 + 3}  # sum(steps); frames + K - 1
    assert len(magnet["raw_s"]["magnet"]) == len(magnet["raw_s"]["ar"]) == magnet["rounds"]
    for name, raw in magnet["raw_s"].items():
        assert magnet["median_s"][name] == pytest.approx(statistics.median(raw), abs=1e-4)
    speedup = magnet["median_s"]["ar"] / magnet["median_s"]["magnet"]
    assert magnet["speedup_magnet_over_ar"] == pytest.approx(speedup, abs=1e-3)
    assert magnet["target_met"] is (magnet["speedup_magnet_over_ar"] >= target)
    assert sweep["case"] == "batch_sweep"
    tiny_sweep = sweep["sizes"]["tiny"]
    magnet_steps = sum(load_profile("tiny")["generate"]["magnet"]["steps"])
    assert tiny_sweep["forward_passes"] == {"ar": 12 + 3, "magnet": magnet_steps}
    for batch, row in tiny_sweep["batches"].items():
        assert row["magnet_method"] == "timed" and len(row["ar_raw_s"]) == tiny_sweep["rounds"]
        assert row["ar_ms_per_note"] == pytest.approx(1000 * row["ar_s"] / int(batch), rel=1e-2, abs=1e-3)
        speedup = row["ar_s"] / row["magnet_s"]
        assert row["speedup_magnet_over_ar"] == pytest.approx(speedup, rel=1e-2, abs=1e-3)
    slower = [int(b) for b, r in tiny_sweep["batches"].items() if r["speedup_magnet_over_ar"] < 1]
    assert tiny_sweep["crossover_batch"] == (min(slower) if slower else None)
    assert instrument["case"] == "instrument"
    tiny = load_profile("tiny")
    pitches = range(tiny["data"]["pitch_min"], tiny["data"]["pitch_max"] + 1, tiny["synthetic"]["pitch_step"])
    grid = instrument["grids"]["data_grid"]
    assert grid["notes"] == len(pitches[::11]) * len(tiny["data"]["velocities"])  # quick: every 11th pitch
    for variant in ("baseline", "magnet"):
        run = grid["variants"][variant]["median_run"]
        assert run["lm_s"] > 0 and run["codec_s"] > 0 and run["total_s"] >= run["lm_s"] + run["codec_s"]
        assert len(run["lm_batch_s"]) == run["batches"] and instrument["profile"][variant]["top_ops"]
