"""Benchmark: codec-LM training steps/s and peak memory, at paper size and at the tiny profile's size.

    make bench-train                      # this machine (CPU), writes benchmarks/results/training_cpu.json
    python benchmarks/training.py --device cuda --out benchmarks/results/training_gpu.json   # on a GPU

Each case runs the real training step (``instrumentgen.train.loop.Trainer.train_step``: batch assembly
with CLAP pairing and condition dropout, forward, loss, backward, clipping, AdamW, schedule) on
synthetic feature caches written in the pipeline's Parquet format (random codes: step time does not
depend on their values), in its own process so that its peak memory is its own. Sizes are read from
params.yaml (paper) and the tiny profile; ``--steps`` timed steps follow ``--warmup`` untimed ones
(compilation happens in the warm-up). The projected time for the paper's 1M steps is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from measure import note_frames, print_result, run_case_process  # noqa: E402

from instrumentgen.config import load_profile  # noqa: E402

PAPER_STEPS = 1_000_000


def run_case(args: argparse.Namespace) -> dict:
    """One case in this process; prints its JSON result."""
    import torch

    from instrumentgen.config import load_profile
    from instrumentgen.testing import synthetic_splits, train_run
    from instrumentgen.train.loop import Trainer
    from instrumentgen.train.settings import settings_for_objective
    from instrumentgen.variants import get_variant

    params = load_profile(args.size)
    lm = dict(params["lm"])
    train = settings_for_objective(params["train"], get_variant(args.variant).objective)
    settings = {**train, "compile": args.compile, "precision": args.precision, "threads": args.threads}
    if args.batch:
        settings["batch_size"] = args.batch
    frames = args.frames or int(lm.get("max_frames", 512))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        card, clap_dim, notes = (
            params["codec"]["codebook_size"],
            lm.get("clap_dim", 512),
            settings["batch_size"] * 4,
        )
        paths = synthetic_splits(folder, notes // 16, 16, frames, card, clap_dim)
        lm["codebook_size"] = params["codec"]["codebook_size"]
        trainer = Trainer(train_run(folder, paths, args.variant, lm, settings, seed=0))
        trainer.build()
        cuda = trainer.dist.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        for _ in range(args.warmup):
            trainer.train_step()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            out, _ = trainer.train_step()
        loss = out.loss.item()
        sync()
        dt = (time.perf_counter() - t0) / args.steps
    result = {
        "size": args.size,
        "variant": args.variant,
        "device": str(trainer.dist.device),
        "device_name": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch": settings["batch_size"],
        "frames": frames,
        "parameters": trainer.model.count_parameters(),
        "bf16": trainer.bf16,
        "compile": trainer.compile,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "s_per_step": round(dt, 4),
        "steps_per_s": round(1 / dt, 3),
        "last_loss": round(loss, 3),
        "projected_hours_1M_steps": round(PAPER_STEPS * dt / 3600, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if cuda:
        result["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print_result(result)
    return result


CASES_CPU = [  # (size, variant, compile, precision, warm-up steps, timed steps, torch threads; 0 = all cores)
    ("paper", "baseline", "false", "fp32", 1, 2, 0),
    ("paper", "magnet", "false", "fp32", 1, 2, 0),
    # the tiny profile's jobs: one thread each, two side by side in make demo
    ("tiny", "baseline", "false", "fp32", 5, 40, 1),
    ("tiny", "baseline", "false", "bf16", 5, 40, 1),
    ("tiny", "magnet", "false", "fp32", 5, 40, 1),
    ("tiny", "magnet", "false", "bf16", 5, 40, 1),
]
CASES_CUDA = [
    ("paper", "baseline", "false", "fp32", 10, 30, 0),
    ("paper", "baseline", "false", "bf16", 10, 50, 0),
    ("paper", "baseline", "true", "bf16", 30, 100, 0),
    ("paper", "magnet", "true", "bf16", 30, 100, 0),
    ("tiny", "baseline", "false", "bf16", 10, 100, 0),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", default="paper")
    p.add_argument("--variant", default="baseline")
    p.add_argument("--compile", default="false")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads of a case (0: all cores)")
    p.add_argument("--sizes", nargs="+", default=["paper", "tiny"], help="run only the cases of these sizes")
    p.add_argument(
        "--frames", type=int, default=0, help="frames per note (default: the profile's lm.max_frames)"
    )
    args = p.parse_args()
    if args.case:
        run_case(args)
        return
    out = args.out or ROOT / "benchmarks" / "results" / f"training_{args.device}.json"
    cases = CASES_CPU if args.device == "cpu" else CASES_CUDA
    results = []
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0")}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    for size, variant, compile_, precision, warmup, steps, threads in cases:
        if size not in args.sizes:
            continue
        frames = note_frames(load_profile(size))  # paper: 4 s of DAC frames; tiny: 1 s of the fitted codec's
        cmd = [
            sys.executable,
            __file__,
            "--case",
            "--size",
            size,
            "--variant",
            variant,
            "--compile",
            compile_,
            "--precision",
            precision,
            "--warmup",
            str(warmup),
            "--steps",
            str(steps),
            "--frames",
            str(frames),
            "--threads",
            str(threads),
        ]
        print("running", " ".join(cmd[2:]), flush=True)
        proc = run_case_process(cmd, env)
        if proc.result is None:
            results.append(
                {
                    "size": size,
                    "variant": variant,
                    "compile": compile_,
                    "precision": precision,
                    "error": proc.stderr[-2000:],
                }
            )
            print(proc.stderr[-2000:], flush=True)
            continue
        results.append(proc.result)
        print_result(proc.result)
    kept = []  # rows of the sizes not run this time stay, with the date they were measured
    if out.exists() and set(args.sizes) != {"paper", "tiny"}:
        earlier = json.loads(out.read_text())
        kept = [{"date": earlier["date"], **r} for r in earlier["results"] if r.get("size") not in args.sizes]
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "results": kept + results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
