"""Case ``magnet_vs_ar``: wall time of a batch of 4 s notes at paper size with MAGNeT and with AR, both
guided, the decoders' default settings (see ``benchmarks/generation.py``)."""

from __future__ import annotations

from measure import note_frames

from generation_cases.common import (
    Options,
    PassCounter,
    interleaved,
    lm_config,
    median,
    random_model,
)

MAGNET_TARGET = 5.0  # MAGNeT >= 5x faster than AR
CPU_NOTE_BATCH = 1  # a paper-size MAGNeT pass over 2 x 345 positions takes seconds on the 2-core CPU
CPU_NOTE_REPEATS = 2


def run(opts: Options) -> dict:
    import torch

    from instrumentgen.config import load_profile
    from instrumentgen.generate.ar import generate_ar
    from instrumentgen.generate.magnet import MagnetSettings, generate_magnet
    from instrumentgen.generate.sampling import SamplingSettings
    from instrumentgen.testing import random_conditions

    dev = opts.device
    if opts.quick:
        n_frames, batch, magnet, repeats = 12, 2, MagnetSettings(steps=(2, 1, 1, 1)), opts.repeats or 1
    else:
        n_frames = note_frames(load_profile("paper"))
        batch = opts.note_batch or (4 if dev == "cuda" else CPU_NOTE_BATCH)
        magnet, repeats = MagnetSettings(), opts.repeats or (3 if dev == "cuda" else CPU_NOTE_REPEATS)
    ar_model = random_model(lm_config("ar", opts.quick), dev)
    mg_model = random_model(lm_config("magnet", opts.quick), dev, seed=1)
    cond = random_conditions(batch, ar_model.config.clap_dim).to(dev)
    sampling = SamplingSettings()  # top-k 250, temperature 1, CFG 3.0: the AR decoder's defaults
    sampling = SamplingSettings(top_k=min(sampling.top_k, ar_model.config.codebook_size))
    gen = torch.Generator(device=dev).manual_seed(0)
    contenders = {
        "magnet": lambda: generate_magnet(mg_model, cond, n_frames, magnet, gen),
        "ar": lambda: generate_ar(ar_model, cond, n_frames, sampling, gen),
    }
    # warm-up on the same shapes, shorter: AR over a few frames, MAGNeT one step per stage
    generate_ar(ar_model, cond, min(n_frames, 8), sampling, gen)
    generate_magnet(mg_model, cond, n_frames, MagnetSettings(steps=(1,) * len(magnet.steps)), gen)
    print(f"magnet_vs_ar: batch {batch}, {n_frames} frames, {repeats} rounds", flush=True)
    with PassCounter(ar_model) as ar_passes, PassCounter(mg_model) as mg_passes:
        times = interleaved(contenders, repeats, dev)
    passes = {"magnet": mg_passes.count // repeats, "ar": ar_passes.count // repeats}
    med = {n: median(t) for n, t in times.items()}
    speedup = round(med["ar"] / med["magnet"], 3)
    rows = 2 * batch  # both guided: [conditional; null]
    return {
        "case": "magnet_vs_ar",
        "batch": batch,
        "frames": n_frames,
        "note_seconds": None if opts.quick else 4.0,
        "magnet_steps": list(magnet.steps),
        "ar_cfg_coef": sampling.cfg_coef,
        "magnet_cfg": [magnet.cfg_max, magnet.cfg_min],
        "rows_per_pass": rows,
        "forward_passes": passes,
        "tokens_per_pass": {"magnet": rows * n_frames, "ar": rows},
        "token_positions_total": {"magnet": passes["magnet"] * rows * n_frames, "ar": passes["ar"] * rows},
        "rounds": repeats,
        "raw_s": times,
        "median_s": med,
        "min_s": {n: min(t) for n, t in times.items()},
        "s_per_pass": {n: round(med[n] / passes[n], 5) for n in med},
        "notes_per_s": {n: round(batch / med[n], 4) for n in med},
        "speedup_magnet_over_ar": speedup,
        "speedup_of_minima": round(min(times["ar"]) / min(times["magnet"]), 3),
        "per_round_speedups": [round(a / m, 3) for m, a in zip(times["magnet"], times["ar"], strict=True)],
        "target": f"MAGNeT >= {MAGNET_TARGET}x faster than AR",
        "target_met": speedup >= MAGNET_TARGET,
    }
