"""What the generation benchmark's cases share: options, timing, interleaved rounds, forward-pass
counting, model sizes and profiling."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Options:
    device: str = "cpu"
    quick: bool = False
    threads: int = 0  # 0: 1 on a CPU, torch's default on a GPU
    repeats: int = 0  # 0: the case's default
    ar_batch: int = 8
    ar_steps: int = 100
    note_batch: int = 0  # 0: 4 on a GPU, the CPU default (magnet_vs_ar.CPU_NOTE_BATCH) on a CPU
    profile: str = "auto"  # auto: when the AR target is missed; always; never


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int, device: str) -> dict[str, list]:
    """Raw seconds per contender: ``repeats`` rounds, each running every contender once, the order
    reversed every other round (so that drift in the machine's load hits both alike)."""
    names = list(contenders)
    times: dict[str, list] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(round(timed(contenders[name], device), 4))
            print(f"  {name}: {times[name][-1]:.3f} s", flush=True)
    return times


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


class PassCounter:
    """Counts forward calls of a module (a forward pre-hook) while active."""

    def __init__(self, module):
        self.module, self.count, self.handle = module, 0, None

    def __enter__(self) -> PassCounter:
        self.handle = self.module.register_forward_pre_hook(lambda *_: setattr(self, "count", self.count + 1))
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def lm_config(objective: str, quick: bool):
    """Paper size (params.yaml ``lm`` and ``codec``) or, with ``quick``, a few-second debug size."""
    from instrumentgen.config import load_profile
    from instrumentgen.lm.config import LMConfig
    from instrumentgen.testing import tiny_config

    if quick:
        return tiny_config(dim=64, n_heads=4, codebook_size=64, clap_dim=16, clap_bins=16, category_dim=8,
                           max_frames=64, objective=objective)
    params = load_profile("paper")
    lm = dict(params["lm"])
    lm.update(
        n_codebooks=params["codec"]["n_codebooks"],
        codebook_size=params["codec"]["codebook_size"],
        objective=objective,
    )
    return LMConfig.from_dict(lm)


def random_model(config, device: str, seed: int = 0):
    """A randomly initialised :class:`CodecLM` on ``device`` in eval mode with its CLAP quantiser seeded
    (speed does not depend on the weights' values)."""
    from instrumentgen.testing import random_model as build

    return build(config, seed).to(device)


def profile_top(fn: Callable[[], object], device: str, rows: int = 12) -> dict:
    """Wall time of one ``fn()`` under torch.profiler and its top operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Profiler clears events")
        with profile(activities=activities) as prof:
            wall = timed(fn, device)
    events = [e for e in prof.key_averages() if e.key != "ProfilerStep*"]
    attr = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6
    return {
        "wall_s": round(wall, 3),
        "sum_self_cpu_s": round(total_self, 3),
        "top_ops": [
            {
                "op": e.key,
                "calls": e.count,
                "self_s": round(getattr(e, attr) / 1e6, 4),
                "share": round(getattr(e, attr) / 1e6 / wall, 3),
            }
            for e in events[:rows]
        ],
    }
