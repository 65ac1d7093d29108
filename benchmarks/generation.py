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
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CASES = ("ar_vs_transformers", "magnet_vs_ar", "batch_sweep", "instrument", "threads")
AR_TARGET = 2.0  # ours >= 2x transformers' frames/s
MAGNET_TARGET = 5.0  # MAGNeT >= 5x faster than AR
TINY = ROOT / "data" / "tiny"


@dataclass
class Options:
    device: str = "cpu"
    quick: bool = False
    threads: int = 0  # 0: 1 on a CPU, torch's default on a GPU
    repeats: int = 0  # 0: the case's default
    ar_batch: int = 8
    ar_steps: int = 100
    note_batch: int = 0  # 0: 4 on a GPU, the CPU default below on a CPU
    profile: str = "auto"  # auto: when the AR target is missed; always; never


# ----------------------------------------------------------------------------- helpers


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

    if quick:
        return LMConfig(
            dim=64,
            n_layers=2,
            n_heads=4,
            codebook_size=64,
            clap_dim=16,
            clap_n_q=2,
            clap_bins=16,
            category_dim=8,
            max_frames=64,
            objective=objective,
        )
    params = load_profile("paper")
    lm = dict(params["lm"])
    lm.update(
        n_codebooks=params["codec"]["n_codebooks"],
        codebook_size=params["codec"]["codebook_size"],
        objective=objective,
    )
    return LMConfig.from_dict(lm)


def random_model(config, device: str, seed: int = 0):
    """A randomly initialised :class:`CodecLM` in eval mode with its CLAP quantiser seeded."""
    import torch

    from instrumentgen.lm.model import CodecLM

    torch.manual_seed(seed)
    model = CodecLM(config)
    g = torch.Generator().manual_seed(seed)
    model.conditions.initialize_clap(torch.randn(2 * config.clap_bins, config.clap_dim, generator=g), g)
    return model.to(device).eval()


def random_conditions(batch: int, clap_dim: int, seed: int = 1):
    import torch

    from instrumentgen.lm.conditioners import Conditions

    g = torch.Generator().manual_seed(seed)
    return Conditions(
        pitch=torch.randint(0, 88, (batch,), generator=g),
        velocity=torch.randint(0, 5, (batch,), generator=g),
        family=torch.randint(0, 11, (batch,), generator=g),
        source=torch.randint(0, 3, (batch,), generator=g),
        clap=torch.randn(batch, clap_dim, generator=g),
    )


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


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


# ----------------------------------------------------------------------------- case 1


def musicgen(config, device: str):
    """transformers' MusicgenForCausalLM with the dimensions of ``config`` (random weights, eval mode)."""
    import torch
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    card = config.codebook_size
    hf_config = MusicgenDecoderConfig(
        vocab_size=card,
        hidden_size=config.dim,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        ffn_dim=config.ffn_mult * config.dim,
        num_codebooks=config.n_codebooks,
        max_position_embeddings=config.max_frames + config.n_codebooks,
        activation_function="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=card,
        bos_token_id=card,
        decoder_start_token_id=card,
    )
    torch.manual_seed(0)
    return MusicgenForCausalLM(hf_config).to(device).eval()


def musicgen_generate(model, enc, steps: int, top_k: int, cache: str = "encoder_decoder"):
    """One ``generate`` call: exactly ``steps`` sampled steps for the ``B`` rows of ``enc`` ``[B, C, d]``."""
    import torch
    from transformers import GenerationConfig
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    card, k, b = model.config.vocab_size, model.config.num_codebooks, enc.shape[0]
    sampled = top_k > 0
    gen_config = GenerationConfig(
        do_sample=sampled,
        top_k=top_k if sampled else None,
        temperature=1.0 if sampled else None,
        guidance_scale=None,
        max_new_tokens=steps,
        min_new_tokens=steps,
        pad_token_id=card,
        bos_token_id=card,
        decoder_start_token_id=card,
        use_cache=cache != "none",
        num_return_sequences=1,
    )
    ids = torch.full((b * k, 1), card, dtype=torch.long, device=enc.device)
    kwargs = {"attention_mask": torch.ones_like(ids)}
    if cache == "encoder_decoder":
        kwargs["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
    return model.generate(ids, generation_config=gen_config, encoder_hidden_states=enc, **kwargs)


def transformers_cache_check(device: str) -> dict:
    """Greedy decoding of a small random MusicGen: does cached decoding equal uncached decoding with
    transformers' default cache, and with an explicit ``EncoderDecoderCache``?"""
    import torch

    from instrumentgen.lm.config import LMConfig

    model = musicgen(
        LMConfig(dim=32, n_layers=2, n_heads=2, codebook_size=16, max_frames=24, clap_dim=8), device
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    enc = torch.randn(3, 5, 32, generator=torch.Generator().manual_seed(0)).to(device)
    ref = musicgen_generate(model, enc, 12, 0, cache="none")
    return {
        f"{cache}_cache_equals_uncached": bool(torch.equal(musicgen_generate(model, enc, 12, 0, cache), ref))
        for cache in ("default", "encoder_decoder")
    }


def case_ar_vs_transformers(opts: Options) -> dict:
    import torch
    import transformers

    from instrumentgen.generate.ar import condition_tokens, generate_ar
    from instrumentgen.generate.sampling import SamplingSettings

    transformers.logging.set_verbosity_error()  # the min_new_tokens/min_length notice on every call
    dev = opts.device
    b, steps = (2, 10) if opts.quick else (opts.ar_batch, opts.ar_steps)
    repeats = opts.repeats or (1 if opts.quick else 3)
    config = lm_config("ar", opts.quick)
    k, card = config.n_codebooks, config.codebook_size
    n_frames = steps - k + 1  # S = T + K - 1 decoding steps for T frames
    top_k = min(250, card)
    ours = random_model(config, dev)
    hf = musicgen(config, dev)
    cond = random_conditions(b, config.clap_dim).to(dev)
    with torch.no_grad():
        enc = condition_tokens(ours, cond, guided=False)  # [B, 5, d]: the same 5 tokens for both
    settings = SamplingSettings(temperature=1.0, top_k=top_k, top_p=0.0, cfg_coef=1.0)
    gen = torch.Generator(device=dev).manual_seed(0)
    torch.manual_seed(0)
    contenders = {
        "ours": lambda: generate_ar(ours, cond, n_frames, settings, gen),
        "transformers": lambda: musicgen_generate(hf, enc, steps, top_k),
    }
    passes, shapes, warmup = {}, {}, 1 if opts.quick else 2
    for name, model in (("ours", ours), ("transformers", hf)):
        with PassCounter(model) as counter:  # warm-up (untimed), the first run counting forward passes
            out = contenders[name]()
        passes[name], shapes[name] = counter.count, list(out.shape)
        for _ in range(warmup - 1):
            contenders[name]()
    if passes["ours"] != steps or passes["transformers"] != steps or shapes["ours"] != shapes["transformers"]:
        raise RuntimeError(f"unequal work: forward passes {passes}, output shapes {shapes}")
    print(f"ar_vs_transformers: batch {b}, {steps} steps, {repeats} rounds", flush=True)
    times = interleaved(contenders, repeats, dev)
    med = {n: median(t) for n, t in times.items()}
    fps = {n: round(b * steps / med[n], 2) for n in med}
    best = {n: min(t) for n, t in times.items()}
    ratio = round(med["transformers"] / med["ours"], 3)
    pair_ratios = [round(h / o, 3) for o, h in zip(times["ours"], times["transformers"], strict=True)]
    result = {
        "case": "ar_vs_transformers",
        "transformers_version": transformers.__version__,
        "transformers_class": "MusicgenForCausalLM",
        "transformers_attn_implementation": hf.config._attn_implementation,
        "config": {
            "dim": config.dim,
            "n_layers": config.n_layers,
            "n_heads": config.n_heads,
            "ffn_dim": config.ffn_mult * config.dim,
            "n_codebooks": k,
            "codebook_size": card,
        },
        "parameters": {
            "ours_total": sum(p.numel() for p in ours.parameters()),
            "ours_without_condition_encoder": sum(p.numel() for p in ours.parameters())
            - sum(p.numel() for p in ours.conditions.parameters()),
            "transformers_total": sum(p.numel() for p in hf.parameters()),
        },
        "batch": b,
        "decoding_steps": steps,
        "frames_out": n_frames,
        "forward_passes": passes,
        "output_shape": shapes["ours"],
        "condition_tokens": int(enc.shape[1]),
        "sampling": {"top_k": top_k, "temperature": 1.0, "cfg": "none", "kv_cache": True},
        "transformers_cache": "EncoderDecoderCache passed to generate (cache=...)",
        "transformers_cache_check": transformers_cache_check(dev),
        "warmup_runs": warmup,
        "rounds": repeats,
        "raw_s": times,
        "median_s": med,
        "min_s": best,
        "frames_per_s": fps,  # batch x steps / median wall time (one frame of K codes per row and step)
        "steps_per_s": {n: round(steps / med[n], 2) for n in med},
        "ratio_ours_over_transformers": ratio,
        "ratio_of_minima": round(best["transformers"] / best["ours"], 3),
        "per_round_ratios": pair_ratios,
        "target": f"ours >= {AR_TARGET}x transformers",
        "target_met": ratio >= AR_TARGET,
    }
    if opts.profile == "always" or (opts.profile == "auto" and ratio < AR_TARGET):
        p_steps = min(steps, 10 if opts.quick else 40)
        result["profile"] = {
            "decoding_steps": p_steps,
            "ours": profile_top(lambda: generate_ar(ours, cond, p_steps - k + 1, settings, gen), dev),
            "transformers": profile_top(lambda: musicgen_generate(hf, enc, p_steps, top_k), dev),
        }
    return result


# ----------------------------------------------------------------------------- case 2


def case_magnet_vs_ar(opts: Options) -> dict:
    import torch

    from instrumentgen.config import load_profile
    from instrumentgen.generate.ar import generate_ar
    from instrumentgen.generate.magnet import MagnetSettings, generate_magnet
    from instrumentgen.generate.sampling import SamplingSettings

    dev = opts.device
    if opts.quick:
        n_frames, batch, magnet, repeats = 12, 2, MagnetSettings(steps=(2, 1, 1, 1)), opts.repeats or 1
    else:
        params = load_profile("paper")
        hop = 512  # DAC 44.1 kHz
        n_frames = math.ceil(round(params["data"]["note_seconds"] * params["resample"]["target_rate"]) / hop)
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


CPU_NOTE_BATCH = 1  # a paper-size MAGNeT pass over 2 x 345 positions takes seconds on the 2-core CPU
CPU_NOTE_REPEATS = 2


# ----------------------------------------------------------------------------- case 2b

SWEEP_BATCHES = {  # notes decoded together; the last is the instrument batch (generate.batch_size)
    "tiny": (1, 2, 4, 8, 16, 24, 64),  # 24: one T2I prompt's grid (8 pitches x 3 velocities)
    "paper": (1, 4, 16, 64),
}
CPU_PAPER_BATCHES = (1, 4, 16)  # a paper-size MAGNeT pass over 2 x 64 x 345 positions takes >1 min here
LM_FIELDS = ("dim", "n_layers", "n_heads", "n_codebooks", "codebook_size")
FULL_MAGNET_LIMIT_S = 40.0  # slower predicted full MAGNeT decodes are timed one pass per stage instead


def profile_size(profile: str, objective: str, quick: bool):
    """(LM config, frames per note, Decoder) of a profile's model size and generation settings; ``quick``:
    the few-second debug model and 12 frames."""
    from instrumentgen.config import load_profile
    from instrumentgen.generate.settings import decoder_from_dict
    from instrumentgen.lm.config import LMConfig
    from instrumentgen.lm.objective import OBJECTIVES

    params = load_profile(profile)
    gen = params["generate"]
    decoder = decoder_from_dict({o.decoding_section: gen[o.decoding_section] for o in OBJECTIVES.values()})
    if quick:
        config = lm_config(objective, True)
        return config, 12, dataclasses.replace(
            decoder,
            sampling=dataclasses.replace(
                decoder.sampling, top_k=min(decoder.sampling.top_k, config.codebook_size)
            ),
        )
    codec = params["codec"]
    hop = codec["fitted"]["hop_length"] if codec["kind"] == "fitted" else 512  # DAC 44.1 kHz: 512
    n_frames = math.ceil(round(params["data"]["note_seconds"] * params["resample"]["target_rate"]) / hop)
    lm = dict(params["lm"], n_codebooks=codec["n_codebooks"], codebook_size=codec["codebook_size"])
    return LMConfig.from_dict({**lm, "objective": objective}), n_frames, decoder


def case_batch_sweep(opts: Options) -> dict:
    """AR against MAGNeT LM decoding time per note as the note batch grows, at the tiny and the paper
    model size, each with its profile's decoding settings (random weights: speed does not depend on
    them). AR's cost per note falls with the batch (a KV cache: each pass adds one position per row, and
    a small batch leaves the hardware idle); MAGNeT computes every position of every row at each of its
    passes, so once a pass fills the hardware its cost grows with the batch and the steps it saves stop
    paying. ``crossover_batch``: the smallest measured batch from which AR is faster per note."""
    import torch

    from instrumentgen.generate.magnet import MagnetSettings

    dev = opts.device
    sizes = ("tiny",) if opts.quick else ("tiny", "paper")
    result: dict = {"case": "batch_sweep", "sizes": {}}
    for size in sizes:
        ar_config, n_frames, decoder = profile_size(size, "ar", opts.quick)
        mg_config, _, _ = profile_size(size, "magnet", opts.quick)
        ar_model = random_model(ar_config, dev)
        mg_model = random_model(mg_config, dev, seed=1)
        batches = SWEEP_BATCHES[size]
        if opts.quick:
            batches = (1, 4)
        elif size == "paper" and dev == "cpu":
            batches = CPU_PAPER_BATCHES
        repeats = opts.repeats or (1 if opts.quick or (size == "paper" and dev == "cpu") else 3)
        one_pass = dataclasses.replace(decoder, magnet=MagnetSettings(
            **{**dataclasses.asdict(decoder.magnet), "steps": (1,) * mg_config.n_codebooks}
        ))
        ar_passes = decoder.steps(ar_model, n_frames)
        mg_passes = decoder.steps(mg_model, n_frames)
        entry = result["sizes"][size] = {
            "lm": {k: getattr(ar_config, k) for k in LM_FIELDS},
            "frames_per_note": n_frames,
            "sampling": dataclasses.asdict(decoder.sampling),
            "magnet": dataclasses.asdict(decoder.magnet),
            "forward_passes": {"ar": ar_passes, "magnet": mg_passes},
            "rounds": repeats,
            "batches": {},
        }
        gen = torch.Generator(device=dev).manual_seed(0)
        for batch in batches:
            cond = random_conditions(batch, ar_config.clap_dim).to(dev)
            decoder.decode(ar_model, cond, min(n_frames, 4), gen)  # warm-up on these batch shapes
            one_pass.decode(mg_model, cond, min(n_frames, 4), gen)
            per_pass = [timed(partial(one_pass.decode, mg_model, cond, n_frames, gen), dev)]
            per_pass_s = per_pass[0] / one_pass.steps(mg_model, n_frames)
            full = per_pass_s * mg_passes <= FULL_MAGNET_LIMIT_S or (size == "paper" and batch == 1)
            contenders = {"ar": partial(decoder.decode, ar_model, cond, n_frames, gen)}
            if full:
                contenders["magnet"] = partial(decoder.decode, mg_model, cond, n_frames, gen)
            print(f"batch_sweep {size} batch {batch}: MAGNeT {'full' if full else 'one pass per stage'}",
                  flush=True)
            times = interleaved(contenders, repeats, dev)
            ar_s = median(times["ar"])
            row = {
                "ar_s": round(ar_s, 4),
                "ar_raw_s": times["ar"],
                "magnet_one_pass_per_stage_s": round(per_pass[0], 4),
                "magnet_s_per_pass": round(per_pass_s, 5),
            }
            if full:
                magnet_s = median(times["magnet"])
                row.update(magnet_s=round(magnet_s, 4), magnet_raw_s=times["magnet"], magnet_method="timed",
                           magnet_predicted_s=round(per_pass_s * mg_passes, 4))
            else:
                magnet_s = per_pass_s * mg_passes
                row.update(magnet_s=round(magnet_s, 4), magnet_method="passes x s per pass")
            row.update(
                ar_ms_per_note=round(1000 * ar_s / batch, 3),
                magnet_ms_per_note=round(1000 * magnet_s / batch, 3),
                speedup_magnet_over_ar=round(ar_s / magnet_s, 3),
            )
            entry["batches"][str(batch)] = row
        faster = {int(b): r["speedup_magnet_over_ar"] >= 1 for b, r in entry["batches"].items()}
        entry["crossover_batch"] = min((b for b, f in faster.items() if not f), default=None)
        entry["magnet_faster_at"] = [b for b, f in faster.items() if f]
    return result


# ----------------------------------------------------------------------------- case 3


def timed_decoder_and_codec(device: str):
    """A :class:`Decoder` and a codec wrapper that record the seconds spent in LM and codec decoding."""
    from instrumentgen.codec.base import Codec
    from instrumentgen.generate.run import Decoder

    @dataclass(frozen=True)
    class TimedDecoder(Decoder):
        seconds: list = field(default_factory=list)

        def decode(self, model, cond, n_frames, generator):
            sync(device)
            t0 = time.perf_counter()
            codes = super().decode(model, cond, n_frames, generator)
            sync(device)
            self.seconds.append(time.perf_counter() - t0)
            return codes

    class TimedCodec(Codec):
        def __init__(self, inner: Codec):
            self.inner, self.seconds = inner, []
            self.sample_rate, self.hop_length = inner.sample_rate, inner.hop_length
            self.n_codebooks, self.codebook_size = inner.n_codebooks, inner.codebook_size

        def num_frames(self, num_samples: int) -> int:
            return self.inner.num_frames(num_samples)

        def encode(self, audio):
            return self.inner.encode(audio)

        def decode(self, codes):
            t0 = time.perf_counter()
            audio = self.inner.decode(codes)
            sync(device)
            self.seconds.append(time.perf_counter() - t0)
            return audio

    return TimedDecoder, TimedCodec


def quick_codec():
    """A random fitted codec of the tiny codec's kind (quick mode without the demo's files)."""
    import numpy as np

    from instrumentgen.codec.fitted import FittedCodec

    rng = np.random.default_rng(0)
    return FittedCodec(
        np.abs(rng.standard_normal((4, 64, 129))).astype(np.float32) * 0.1,
        sample_rate=8000,
        n_fft=256,
        hop_length=160,
        griffin_lim_iters=4,
    )


def instrument_run(model, codec, plan, clap, n_frames, decoder, batch_size, out_dir, device) -> dict:
    """One ``generate_plan`` call, its wall time split into LM decoding, codec decoding and the rest."""
    from instrumentgen.generate.run import generate_plan

    TimedDecoder, TimedCodec = timed_decoder_and_codec(device)
    timed_decoder = TimedDecoder(sampling=decoder.sampling, magnet=decoder.magnet)
    timed_codec = TimedCodec(codec)
    t0 = time.perf_counter()
    manifest = generate_plan(
        model,
        timed_codec,
        plan,
        clap,
        n_frames,
        out_dir,
        seed=1234,
        decoder=timed_decoder,
        batch_size=batch_size,
    )
    total = time.perf_counter() - t0
    lm_s, codec_s = sum(timed_decoder.seconds), sum(timed_codec.seconds)
    if len(manifest) != len(plan):
        raise RuntimeError(f"{len(manifest)} WAVs for {len(plan)} planned notes")
    return {
        "total_s": round(total, 3),
        "lm_s": round(lm_s, 3),
        "codec_s": round(codec_s, 3),
        "other_s": round(total - lm_s - codec_s, 3),
        "batches": len(timed_decoder.seconds),
        "lm_batch_s": [round(x, 3) for x in timed_decoder.seconds],
        "codec_batch_s": [round(x, 3) for x in timed_codec.seconds],
        "decoding_steps_per_batch": int(manifest["decoding_steps"].iloc[0]),
    }


def case_instrument(opts: Options) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from instrumentgen.codec.loading import load_codec
    from instrumentgen.config import load_profile
    from instrumentgen.features.cache import read_features
    from instrumentgen.generate.protocols import t2i_plan
    from instrumentgen.generate.run import frames_for, plan_conditions
    from instrumentgen.generate.settings import decoder_from_dict
    from instrumentgen.train.checkpoint import load_model

    dev = opts.device
    params = load_profile("tiny")
    data, gen_params, codec_path = params["data"], params["generate"], TINY / "models" / "codec.npz"
    decoder = decoder_from_dict({k: gen_params[k] for k in ("sampling", "magnet") if k in gen_params})
    batch_size = int(gen_params["batch_size"])
    t2i = gen_params["grid"]
    grids = {  # every pitch the tiny data has x its velocities; the demo's own T2I grid
        "data_grid": (
            list(range(data["pitch_min"], data["pitch_max"] + 1, params["synthetic"]["pitch_step"])),
            list(data["velocities"]),
        ),
        "t2i_grid": (
            list(range(t2i["pitch_min"], t2i["pitch_max"] + 1, t2i["pitch_step"])),
            t2i["velocities"],
        ),
    }
    if opts.quick:
        grids = {"data_grid": (grids["data_grid"][0][::11], grids["data_grid"][1])}
    models = {v: TINY / "lm" / f"{v}.pt" for v in ("baseline", "magnet")}
    present = {v: p for v, p in models.items() if p.is_file()}
    result: dict = {"case": "instrument"}
    use_files = codec_path.is_file() and bool(present)
    if use_files:
        codec = load_codec(codec_path, n_codebooks=params["codec"]["n_codebooks"])
        files = {v: load_model(p, device=dev) for v, p in present.items()}
        loaded = {v: model for v, (model, _) in files.items()}
        decoders = {v: decoder.for_checkpoint(meta) for v, (_, meta) in files.items()}
        result["files"] = {"codec": str(codec_path.relative_to(ROOT))} | {
            v: str(p.relative_to(ROOT)) for v, p in present.items()
        }
        result["missing"] = sorted(str(p.relative_to(ROOT)) for v, p in models.items() if v not in present)
    elif opts.quick:
        codec = quick_codec()
        loaded = {
            "baseline": random_model(lm_config("ar", True), dev),
            "magnet": random_model(lm_config("magnet", True), dev, seed=1),
        }
        result["files"] = "none (quick mode: random tiny models and a random fitted codec)"
        decoders = dict.fromkeys(loaded, decoder)
    else:
        missing = [str(p.relative_to(ROOT)) for p in [codec_path, *models.values()] if not p.is_file()]
        return result | {"skipped": f"missing {', '.join(missing)} (run `make demo` first)"}
    clap_path = TINY / "features" / "clap_text" / "prompts.parquet"
    clap_dim = next(iter(loaded.values())).config.clap_dim
    if use_files and clap_path.is_file():
        table, clap = read_features(clap_path)
        prompt_id, clap = str(table.column("id")[0]), clap[:1]
        result["clap"] = f"{clap_path.relative_to(ROOT)} row 0 ({prompt_id})"
    else:
        prompt_id = "random_prompt"
        clap = np.random.default_rng(0).standard_normal((1, clap_dim)).astype(np.float32)
        clap /= np.linalg.norm(clap)
        result["clap"] = "a random unit vector"
    n_frames = frames_for(codec, data["note_seconds"])
    if opts.quick:
        n_frames = min(n_frames, 12)
    result.update(
        frames_per_note=n_frames,
        note_seconds=data["note_seconds"],
        batch_size=batch_size,
        sampling=dataclasses.asdict(decoder.sampling),
        magnet=dataclasses.asdict(decoder.magnet),
        codec=repr(codec)
        if opts.quick
        else f"fitted codec {codec_path.name} ({codec.griffin_lim_iters} Griffin-Lim iterations)",
        grids={},
    )
    repeats = opts.repeats or (1 if opts.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        for variant, model in loaded.items():  # untimed warm-up on a few notes
            plan = t2i_plan(pd.DataFrame({"id": [prompt_id]}), *grids["data_grid"])
            instrument_run(
                model, codec, plan.iloc[:8], clap, n_frames, decoders[variant], batch_size,
                Path(tmp) / "w", dev,
            )
        for grid, (pitches, velocities) in grids.items():
            plan = t2i_plan(pd.DataFrame({"id": [prompt_id]}), pitches, velocities)
            entry = result["grids"][grid] = {
                "grid": f"{len(pitches)} pitches {pitches[0]}..{pitches[-1]} x velocities {velocities}",
                "notes": len(plan),
                "variants": {},
            }
            for variant, model in loaded.items():
                runs = []
                for r in range(repeats):
                    runs.append(
                        instrument_run(
                            model,
                            codec,
                            plan,
                            clap,
                            n_frames,
                            decoders[variant],
                            batch_size,
                            Path(tmp) / f"{grid}{r}",
                            dev,
                        )
                    )
                    print(
                        f"  {grid} {variant}: "
                        + ", ".join(f"{k} {runs[-1][k]}" for k in ("total_s", "lm_s", "codec_s")),
                        flush=True,
                    )
                run = sorted(runs, key=lambda x: x["total_s"])[len(runs) // 2]  # the median run (upper)
                entry["variants"][variant] = {
                    "objective": model.config.objective,
                    "runs": runs,
                    "median_run": run,
                    "notes_per_s": round(len(plan) / run["total_s"], 2),
                    "lm_notes_per_s": round(len(plan) / run["lm_s"], 2),
                    "codec_notes_per_s": round(len(plan) / run["codec_s"], 2),
                }
        if opts.profile != "never":  # where one batch's LM decoding goes (MAGNeT: one step per stage)
            plan = t2i_plan(pd.DataFrame({"id": [prompt_id]}), *grids["data_grid"]).iloc[:batch_size]
            cond = plan_conditions(plan, clap)
            result["profile"] = {"notes": len(plan)}
            for variant, model in loaded.items():
                steps = (1,) * model.config.n_codebooks
                short = dataclasses.replace(
                    decoders[variant], magnet=dataclasses.replace(decoders[variant].magnet, steps=steps)
                )
                gen = torch.Generator(device=dev).manual_seed(0)
                result["profile"][variant] = {
                    "forward_passes": short.steps(model, n_frames),
                    **profile_top(partial(short.decode, model, cond, n_frames, gen), dev),
                }
    return result


# ----------------------------------------------------------------------------- case 4


def case_threads(opts: Options) -> dict:
    """CPU only: AR decoding (batch 8, no CFG) and one MAGNeT pass (1 note, guided: 2 rows x 345 frames)
    at 1 thread and at all cores, interleaved."""
    import torch

    from instrumentgen.generate.ar import condition_tokens, generate_ar
    from instrumentgen.generate.sampling import SamplingSettings

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

    def at(n: int, fn: Callable[[], object]) -> Callable[[], object]:
        def run():
            torch.set_num_threads(n)
            with torch.no_grad():
                return fn()

        return run

    work = {
        f"ar_{steps}_steps_batch_8": lambda: generate_ar(
            ar, cond8, steps - ar.config.n_codebooks + 1, settings, gen
        ),
        f"magnet_pass_2x{frames}": lambda: mg(codes, tokens),
    }
    contenders = {f"{name}@{n}": at(n, fn) for name, fn in work.items() for n in sorted({1, cores})}
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


# ----------------------------------------------------------------------------- driver


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
    fn = {
        "ar_vs_transformers": case_ar_vs_transformers,
        "magnet_vs_ar": case_magnet_vs_ar,
        "batch_sweep": case_batch_sweep,
        "instrument": case_instrument,
        "threads": case_threads,
    }[name]
    threads = torch.get_num_threads()
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = fn(opts)
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


def main(argv: list[str] | None = None) -> dict:
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
        help=f"notes per batch in magnet_vs_ar (0: 4 on a GPU, {CPU_NOTE_BATCH} on a CPU)",
    )
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--in-process", action="store_true", help="run the cases in this process (tests)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    opts = Options(
        device=args.device,
        quick=args.quick,
        threads=args.threads,
        repeats=args.repeats,
        ar_batch=args.ar_batch,
        ar_steps=args.ar_steps,
        note_batch=args.note_batch,
        profile=args.profile,
    )
    if args.case:
        print("RESULT " + json.dumps(run_case(args.case, opts)), flush=True)
        return {}
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    name = f"generation_{'gpu' if args.device == 'cuda' else 'cpu'}{'_quick' if args.quick else ''}.json"
    out = args.out or ROOT / "benchmarks" / "results" / name
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    results = []
    t0 = time.perf_counter()
    for case in cases:
        print(f"running {case}", flush=True)
        if args.in_process:
            results.append(run_case(case, opts))
            continue
        cmd = [sys.executable, __file__, "--case", case, *option_args(opts)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        print("\n".join(x for x in proc.stdout.splitlines() if not x.startswith("RESULT ")), flush=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(proc.stderr[-3000:], flush=True)
            results.append({"case": case, "error": proc.stderr[-3000:]})
            continue
        results.append(json.loads(line[0][7:]))
    if set(cases) != set(CASES) and out.is_file():  # a subset: keep the other cases' earlier results
        try:
            earlier = json.loads(out.read_text()).get("results", [])
        except (OSError, ValueError):
            earlier = []
        kept = [r for r in earlier if r.get("case") in CASES and r.get("case") not in cases]
        results = sorted(kept + results, key=lambda r: CASES.index(r["case"]))
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
