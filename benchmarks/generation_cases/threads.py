"""Case ``threads`` (CPU only): AR decoding and one MAGNeT pass at 1 thread and at all cores."""

from __future__ import annotations

import os
from collections.abc import Callable

from generation_cases.common import Options, interleaved, lm_config, median, random_model


def at_threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run without gradients at ``n`` torch threads."""
    import torch

    def run():
        torch.set_num_threads(n)
        with torch.no_grad():
            return fn()

    return run


def run(opts: Options) -> dict:
    """CPU only: AR decoding (batch 8, no CFG) and one MAGNeT pass (1 note, guided: 2 rows x 345 frames)
    at 1 thread and at all cores, interleaved."""
    import torch

    from instrumentgen.generate.ar import generate_ar
    from instrumentgen.generate.conditioning import condition_tokens
    from instrumentgen.generate.sampling import SamplingSettings
    from instrumentgen.testing import random_conditions

    if opts.device != "cpu":
        return {"case": "threads", "skipped": "CPU only"}
    cores = os.cpu_count() or 1
    ar = random_model(lm_config("ar", opts.quick), "cpu")
    mg = random_model(lm_config("magnet", opts.quick), "cpu", seed=1)
    steps, frames = (5, 12) if opts.quick else (10, 345)
    cond8 = random_conditions(8, ar.config.clap_dim)
    settings = SamplingSettings(top_k=min(250, ar.config.codebook_size), cfg_coef=1.0)
    with torch.no_grad():
        tokens = condition_tokens(mg, random_conditions(1, mg.config.clap_dim), guided=True)  # [2, 5, d]
    codes = torch.full((2, mg.config.n_codebooks, frames), mg.config.mask_token)
    gen = torch.Generator().manual_seed(0)
    work = {
        f"ar_{steps}_steps_batch_8": lambda: generate_ar(
            ar, cond8, steps - ar.config.n_codebooks + 1, settings, gen
        ),
        f"magnet_pass_2x{frames}": lambda: mg(codes, tokens),
    }
    contenders = {f"{name}@{n}": at_threads(n, fn) for name, fn in work.items() for n in sorted({1, cores})}
    for fn in contenders.values():
        fn()
    print(f"threads: 1 vs {cores}", flush=True)
    times = interleaved(contenders, opts.repeats or (1 if opts.quick else 2), "cpu")
    med = {n: median(t) for n, t in times.items()}
    return {
        "case": "threads",
        "thread_counts": sorted({1, cores}),
        "raw_s": times,
        "median_s": med,
        "min_s": {n: min(t) for n, t in times.items()},
        "speedup_all_cores_over_1": {
            name: round(med[f"{name}@1"] / med[f"{name}@{cores}"], 3) for name in work
        },
    }
