"""Benchmark: codec-LM generation speed (AR against transformers' MusicGen, MAGNeT against AR, and one
whole tiny-profile instrument).

    make bench-generate                           # this CPU, writes benchmarks/results/generation_cpu.json
    python benchmarks/generation.py --device cuda  # on a GPU, writes benchmarks/results/generation_gpu.json
    python benchmarks/generation.py --quick        # smoke run: tiny dims, seconds (generation_cpu_quick.json)

Cases (each in its own process, so its peak memory is its own; ``--cases`` picks some):

- ``ar_vs_transformers``: AR decoding frames/s at paper size (``lm`` of params.yaml: 12 layers, 16 heads,
  d 512, 4 x 1024 codes; random weights, speed does not depend on their values) with our ``generate_ar``
  against ``transformers.MusicgenForCausalLM`` built with the same dimensions: batch 8, exactly 100
  decoding steps (= forward passes, counted by hooks), no CFG, top-k 250 sampling at temperature 1, KV
  cache, eval mode, both through their own no-grad generate functions, both attending to 5 condition
  tokens (ours: its condition encoder's; transformers: the same tokens as ``encoder_hidden_states``).
  transformers is given an explicit ``EncoderDecoderCache``: its default cache in ``generate`` stores the
  cross-attention keys in the self-attention cache (checked here on a small model, recorded in the
  result: cached decoding then differs from uncached decoding). Target: ours >= 2x transformers. When the
  target is missed, both are profiled (torch.profiler) and the top operators are recorded.
- ``magnet_vs_ar``: wall time of a batch of 4 s notes at paper size (345 DAC frames) with MAGNeT
  ([20, 10, 10, 10] steps, always guided) and with AR (CFG 3.0), the decoders' defaults; batch 4 notes
  on a GPU, 1 on a CPU (``--note-batch``). Forward passes are counted. Target: MAGNeT >= 5x faster.
- ``instrument``: one whole tiny-profile instrument (T2I plan of one prompt with its CLAP text
  embedding) through ``generate.run.generate_plan`` with the tiny demo's trained models
  (``data/tiny/lm/{baseline,magnet}.pt``, codec ``data/tiny/models/codec.npz``; ``make demo`` builds
  them) and the tiny profile's ``generate`` settings, on two grids: every pitch of the tiny data x its
  velocities, and the profile's own T2I grid; wall time split into LM decoding, codec decoding and the
  rest (conditions, WAVs), plus a profile of one batch's LM decoding.
- ``threads`` (CPU only): the same AR decoding and one MAGNeT pass at 1 thread and at all cores.

With ``--cases`` (a subset), the other cases' results already in the output file are kept, so one case
can be re-run alone (each result carries its own date and machine load).

Contenders are interleaved (the order alternates between repeats) after untimed warm-up runs; every raw
time is recorded with the medians and minima. Threads on a CPU: 1 unless ``--threads`` (the ``threads``
case measures why: on the project's shared 2-core machine a second thread does not speed decoding up,
and any other busy process makes 2-thread runs several times slower); on a GPU torch's default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from generation_cases import ar_vs_transformers, batch_sweep, instrument, magnet_vs_ar, threads  # noqa: E402
from generation_cases.common import Options  # noqa: E402
from measure import print_result, run_case_process  # noqa: E402

CASE_RUNS = {
    "ar_vs_transformers": ar_vs_transformers.run,
    "magnet_vs_ar": magnet_vs_ar.run,
    "batch_sweep": batch_sweep.run,
    "instrument": instrument.run,
    "threads": threads.run,
}
CASES = tuple(CASE_RUNS)


def machine(device: str) -> dict:
    import torch

    info = {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def run_case(name: str, opts: Options) -> dict:
    """One case in this process."""
    import torch

    threads = opts.threads or (1 if opts.device == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = CASE_RUNS[name](opts)
    result.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        case_wall_s=round(time.perf_counter() - t0, 1),
        threads=threads,
        loadavg_1min={"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )
    if opts.device == "cuda":
        result["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def option_args(opts: Options) -> list[str]:
    args = [
        "--device",
        opts.device,
        "--threads",
        str(opts.threads),
        "--repeats",
        str(opts.repeats),
        "--ar-batch",
        str(opts.ar_batch),
        "--ar-steps",
        str(opts.ar_steps),
        "--note-batch",
        str(opts.note_batch),
        "--profile",
        opts.profile,
    ]
    return args + (["--quick"] if opts.quick else [])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny dims, few steps")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: 1 on a CPU, torch's default on a GPU)"
    )
    p.add_argument("--repeats", type=int, default=0, help="timed rounds per case (0: the case's default)")
    p.add_argument("--ar-batch", type=int, default=8)
    p.add_argument("--ar-steps", type=int, default=100)
    p.add_argument(
        "--note-batch",
        type=int,
        default=0,
        help=f"notes per batch in magnet_vs_ar (0: 4 on a GPU, {magnet_vs_ar.CPU_NOTE_BATCH} on a CPU)",
    )
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--in-process", action="store_true", help="run the cases in this process (tests)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    return p


def options(args: argparse.Namespace) -> Options:
    return Options(
        device=args.device,
        quick=args.quick,
        threads=args.threads,
        repeats=args.repeats,
        ar_batch=args.ar_batch,
        ar_steps=args.ar_steps,
        note_batch=args.note_batch,
        profile=args.profile,
    )


def run_cases(cases: list[str], opts: Options, in_process: bool) -> list[dict]:
    """Each case's result, each in its own process unless ``in_process`` (a failed one: its error)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if opts.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    results = []
    for case in cases:
        print(f"running {case}", flush=True)
        if in_process:
            results.append(run_case(case, opts))
            continue
        proc = run_case_process([sys.executable, __file__, "--case", case, *option_args(opts)], env)
        print(proc.output, flush=True)
        if proc.result is None:
            print(proc.stderr[-3000:], flush=True)
            results.append({"case": case, "error": proc.stderr[-3000:]})
            continue
        results.append(proc.result)
    return results


def with_earlier(results: list[dict], cases: list[str], out: Path) -> list[dict]:
    """``results`` of a subset of the cases, with the other cases' earlier results in ``out`` kept."""
    if set(cases) == set(CASES) or not out.is_file():
        return results
    try:
        earlier = json.loads(out.read_text()).get("results", [])
    except (OSError, ValueError):
        earlier = []
    kept = [r for r in earlier if r.get("case") in CASES and r.get("case") not in cases]
    return sorted(kept + results, key=lambda r: CASES.index(r["case"]))


def main(argv: list[str] | None = None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    opts = options(args)
    if args.case:
        print_result(run_case(args.case, opts))
        return {}
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    name = f"generation_{'gpu' if args.device == 'cuda' else 'cpu'}{'_quick' if args.quick else ''}.json"
    out = args.out or ROOT / "benchmarks" / "results" / name
    t0 = time.perf_counter()
    results = with_earlier(run_cases(cases, opts, args.in_process), cases, out)
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cases_run": cases,
        "command": " ".join([Path(sys.executable).name, "benchmarks/generation.py", *(argv or sys.argv[1:])]),
        "device": args.device,
        "quick": args.quick,
        "machine": machine(args.device),
        "total_wall_s": round(time.perf_counter() - t0, 1),
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
