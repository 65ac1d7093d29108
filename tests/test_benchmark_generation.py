"""The generation benchmark's quick mode runs and writes the fields its README section reports.

The ``ar_vs_transformers`` case is left out: importing transformers alone takes ~6 s here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from instrumentgen.config import load_profile

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "generation.py"


def test_quick_mode_writes_the_reported_fields(tmp_path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_generation", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "TINY", tmp_path / "no-demo")  # random tiny models, whatever the demo built
    out = tmp_path / "generation.json"
    threads = torch.get_num_threads()
    try:  # one thread: these small ops only lose from threading, and a busy machine makes it much worse
        cases = "magnet_vs_ar,batch_sweep,instrument"
        bench.main(["--quick", "--in-process", "--threads", "1", "--cases", cases, "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    record = json.loads(out.read_text())
    assert record["quick"] and record["machine"]["torch"] and record["machine"]["cpu_count"] >= 1
    magnet, sweep, instrument = record["results"]
    assert magnet["threads"] == instrument["threads"] == 1 and magnet["date"] and magnet["peak_rss_mb"] > 0
    assert magnet["case"] == "magnet_vs_ar"
    assert magnet["forward_passes"] == {"magnet": 5, "ar": 12 + 3}  # sum(steps); frames + K - 1
    assert len(magnet["raw_s"]["magnet"]) == len(magnet["raw_s"]["ar"]) == magnet["rounds"]
    assert magnet["speedup_magnet_over_ar"] > 0 and isinstance(magnet["target_met"], bool)
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
