"""Benchmark: encoder throughput, batched vs one note at a time, and peak memory.

    make bench-encoders   # or: .venv/bin/python benchmarks/encoders.py

Cases (each in its own process, so its peak RSS is its own):
- fitted codec (the offline profiles' codec, K=4 x 1024, built by `make demo` at
  data/tiny/models/codec.npz; fitted here on the fly if absent): encode 1 s notes at 24 kHz;
- small CLAP (data/tiny/models/clap.npz, likewise): audio embeddings of the same notes;
- DAC 44.1 kHz at full size (76M parameters, randomly initialised: the pretrained weights cannot be
  downloaded here; throughput does not depend on the weights' values): encode 4 s notes;
- LAION-CLAP HTSAT-base at full size (randomly initialised, text branch 'transformer' since only
  audio is embedded): embed 4 s notes.
Notes are harmonic tones with a decaying envelope (throughput does not depend on the content).
Writes benchmarks/results/encoders.json. All on this CPU; a GPU run belongs to the device tool.
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

import numpy as np
from measure import git_commit, print_result, run_case_process

from instrumentgen.config import REPO_ROOT

OUT = REPO_ROOT / "benchmarks" / "results" / "encoders.json"
CASES = {"fitted_codec": (24000, 1.0, 64, 32), "small_clap": (24000, 1.0, 64, 32),
         "dac_44k_full": (44100, 4.0, 4, 4), "htsat_base_full": (44100, 4.0, 8, 8)}


def tones(n: int, sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """``[n, T]`` float32 harmonic tones (random pitch in MIDI 36..96) with a decaying envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    out = np.zeros((n, len(t)), np.float32)
    for i, midi in enumerate(rng.integers(36, 97, n)):
        f0 = 440 * 2 ** ((midi - 69) / 12)
        for k in range(1, 9):
            if k * f0 < sample_rate / 2:
                out[i] += np.sin(2 * np.pi * k * f0 * t) / k
    return 0.3 * out * np.exp(-2 * t) / np.abs(out).max(axis=1, keepdims=True)


def build(case: str, audio: np.ndarray):
    """The encoder of ``case`` as a function ``audio [B, T] -> features``."""
    import torch

    if case == "fitted_codec":
        from instrumentgen.codec.fitted import FittedCodec

        path = REPO_ROOT / "data/tiny/models/codec.npz"
        if path.is_file():
            codec = FittedCodec.load(path)
        else:
            codec = FittedCodec.fit(tones(400, 24000, 1.0, seed=1), 24000, n_codebooks=4, codebook_size=1024,
                                    seed=0, max_frames=20000)
        return lambda a: codec.encode(torch.from_numpy(a)[:, None])
    if case == "small_clap":
        from instrumentgen.clap.small import SmallClap

        path = REPO_ROOT / "data/tiny/models/clap.npz"
        if not path.is_file():
            raise SystemExit(f"{path} missing: run `make demo` first")
        model = SmallClap.load(path)
        return lambda a: model.embed_audio(a, 24000)
    if case == "dac_44k_full":
        import dac

        from instrumentgen.codec.dac_codec import DACCodec

        torch.manual_seed(0)
        codec = DACCodec(dac.DAC(), n_codebooks=4)
        return lambda a: codec.encode(torch.from_numpy(a)[:, None])
    if case == "htsat_base_full":
        from instrumentgen.clap.laion import LaionClap, build_model

        torch.manual_seed(0)
        model, cfg = build_model("HTSAT-base", "transformer", "cpu")
        clap = LaionClap(model, cfg, "transformer", batch_size=8)
        return lambda a: clap.embed_audio(a, 44100)
    raise ValueError(f"unknown case {case!r}")


def run_case(case: str) -> dict:
    import torch

    sample_rate, seconds, n, batch = CASES[case]
    audio = tones(n, sample_rate, seconds)
    encode = build(case, audio)
    with torch.inference_mode():
        encode(audio[:1])  # warm-up
        start = time.perf_counter()
        for b in range(0, n, batch):
            encode(audio[b:b + batch])
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(n):
            encode(audio[i:i + 1])
        single = time.perf_counter() - start
    return {"note_seconds": seconds, "sample_rate": sample_rate, "notes": n, "batch_size": batch,
            "notes_per_s_batched": round(n / batched, 2), "notes_per_s_single": round(n / single, 2),
            "speedup_batched": round(single / batched, 2), "torch_threads": torch.get_num_threads(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), help="run one case and print its JSON (internal)")
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.case:
        print_result(run_case(args.case))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results = {}
    for case in args.cases:
        proc = run_case_process([sys.executable, __file__, "--case", case], env)
        if proc.result is None:
            raise RuntimeError(f"{case} failed:\n{proc.stderr[-3000:]}")
        results[case] = proc.result
        print(case, results[case], flush=True)
    commit = git_commit(REPO_ROOT)
    record = {"benchmark": "encoder throughput, batched vs one note at a time",
              "command": "make bench-encoders",
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": commit,
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
              "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
