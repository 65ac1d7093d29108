"""Case ``instrument``: one whole tiny-profile instrument through ``generate.run.generate_plan`` with the
tiny demo's trained models, on two grids, wall time split into LM decoding, codec decoding and the rest
(see ``benchmarks/generation.py``)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from generation_cases.common import ROOT, Options, lm_config, profile_top, random_model, sync

TINY = ROOT / "data" / "tiny"


def codec_path() -> Path:
    """The tiny demo's codec (``make demo`` fits it)."""
    return TINY / "models" / "codec.npz"


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


def grids(params: dict, quick: bool) -> dict[str, tuple[list[int], list[int]]]:
    """``{name: (pitches, velocities)}``: every pitch the tiny data has x its velocities, and the demo's
    own T2I grid (quick: every 11th pitch of the first only)."""
    data, t2i = params["data"], params["generate"]["grid"]
    out = {
        "data_grid": (
            list(range(data["pitch_min"], data["pitch_max"] + 1, params["synthetic"]["pitch_step"])),
            list(data["velocities"]),
        ),
        "t2i_grid": (
            list(range(t2i["pitch_min"], t2i["pitch_max"] + 1, t2i["pitch_step"])),
            t2i["velocities"],
        ),
    }
    if quick:
        out = {"data_grid": (out["data_grid"][0][::11], out["data_grid"][1])}
    return out


@dataclass
class Setup:
    """The models, codec, decoders and prompt an instrument is generated with."""

    codec: object
    decoder: object  # the profile's Decoder
    models: dict  # variant: CodecLM
    decoders: dict  # variant: the Decoder for its checkpoint
    prompt_id: str
    clap: object  # [1, D] float32
    result: dict  # what the result file says about them


def load_setup(opts: Options, params: dict) -> Setup | dict:
    """The demo's codec and LMs (``make demo`` builds them) or, in quick mode without them, random tiny
    ones; the first prompt's CLAP text embedding or a random unit vector. A result saying what is missing
    when the files are absent outside quick mode."""
    import numpy as np

    from instrumentgen.codec.loading import load_codec
    from instrumentgen.features.cache import read_features
    from instrumentgen.generate.settings import decoder_from_dict
    from instrumentgen.lm.checkpoint import load_model

    gen_params, codec_file = params["generate"], codec_path()
    decoder = decoder_from_dict({k: gen_params[k] for k in ("sampling", "magnet") if k in gen_params})
    paths = {v: TINY / "lm" / f"{v}.pt" for v in ("baseline", "magnet")}
    present = {v: p for v, p in paths.items() if p.is_file()}
    result: dict = {"case": "instrument"}
    use_files = codec_file.is_file() and bool(present)
    if use_files:
        codec = load_codec(codec_file, n_codebooks=params["codec"]["n_codebooks"])
        files = {v: load_model(p, device=opts.device) for v, p in present.items()}
        models = {v: model for v, (model, _) in files.items()}
        decoders = {v: decoder.for_checkpoint(meta) for v, (_, meta) in files.items()}
        result["files"] = {"codec": str(codec_file.relative_to(ROOT))} | {
            v: str(p.relative_to(ROOT)) for v, p in present.items()
        }
        result["missing"] = sorted(str(p.relative_to(ROOT)) for v, p in paths.items() if v not in present)
    elif opts.quick:
        codec = quick_codec()
        models = {
            "baseline": random_model(lm_config("ar", True), opts.device),
            "magnet": random_model(lm_config("magnet", True), opts.device, seed=1),
        }
        result["files"] = "none (quick mode: random tiny models and a random fitted codec)"
        decoders = dict.fromkeys(models, decoder)
    else:
        missing = [str(p.relative_to(ROOT)) for p in [codec_file, *paths.values()] if not p.is_file()]
        return result | {"skipped": f"missing {', '.join(missing)} (run `make demo` first)"}
    clap_path = TINY / "features" / "clap_text" / "prompts.parquet"
    if use_files and clap_path.is_file():
        table, clap = read_features(clap_path)
        prompt_id, clap = str(table.column("id")[0]), clap[:1]
        result["clap"] = f"{clap_path.relative_to(ROOT)} row 0 ({prompt_id})"
    else:
        prompt_id = "random_prompt"
        clap_dim = next(iter(models.values())).config.clap_dim
        clap = np.random.default_rng(0).standard_normal((1, clap_dim)).astype(np.float32)
        clap /= np.linalg.norm(clap)
        result["clap"] = "a random unit vector"
    return Setup(codec, decoder, models, decoders, prompt_id, clap, result)


def time_grid(setup: Setup, grid: str, axes: tuple[list[int], list[int]], run_args: tuple, repeats: int,
              tmp: Path) -> dict:
    """``repeats`` timed instrument runs of each variant on one grid; the median run (upper) and its rates.
    ``run_args``: (n_frames, batch_size, device)."""
    import pandas as pd

    from instrumentgen.generate.protocols import t2i_plan

    n_frames, batch_size, dev = run_args
    pitches, velocities = axes
    plan = t2i_plan(pd.DataFrame({"id": [setup.prompt_id]}), pitches, velocities)
    entry = {
        "grid": f"{len(pitches)} pitches {pitches[0]}..{pitches[-1]} x velocities {velocities}",
        "notes": len(plan),
        "variants": {},
    }
    for variant, model in setup.models.items():
        runs = []
        for r in range(repeats):
            runs.append(instrument_run(model, setup.codec, plan, setup.clap, n_frames,
                                       setup.decoders[variant], batch_size, tmp / f"{grid}{r}", dev))
            times = ", ".join(f"{k} {runs[-1][k]}" for k in ("total_s", "lm_s", "codec_s"))
            print(f"  {grid} {variant}: {times}", flush=True)
        run = sorted(runs, key=lambda x: x["total_s"])[len(runs) // 2]  # the median run (upper)
        entry["variants"][variant] = {
            "objective": model.config.objective,
            "runs": runs,
            "median_run": run,
            "notes_per_s": round(len(plan) / run["total_s"], 2),
            "lm_notes_per_s": round(len(plan) / run["lm_s"], 2),
            "codec_notes_per_s": round(len(plan) / run["codec_s"], 2),
        }
    return entry


def profile_batch(setup: Setup, plan, n_frames: int, dev: str) -> dict:
    """Where one batch's LM decoding goes (MAGNeT: one step per stage), per variant."""
    import torch

    from instrumentgen.generate.run import plan_conditions

    cond = plan_conditions(plan, setup.clap)
    out: dict = {"notes": len(plan)}
    for variant, model in setup.models.items():
        decoder = setup.decoders[variant]
        steps = (1,) * model.config.n_codebooks
        short = dataclasses.replace(decoder, magnet=dataclasses.replace(decoder.magnet, steps=steps))
        gen = torch.Generator(device=dev).manual_seed(0)
        out[variant] = {
            "forward_passes": short.steps(model, n_frames),
            **profile_top(partial(short.decode, model, cond, n_frames, gen), dev),
        }
    return out


def run(opts: Options) -> dict:
    import pandas as pd

    from instrumentgen.config import load_profile
    from instrumentgen.generate.protocols import t2i_plan
    from instrumentgen.generate.run import frames_for

    dev, params = opts.device, load_profile("tiny")
    setup = load_setup(opts, params)
    if isinstance(setup, dict):
        return setup
    codec, data, batch_size = setup.codec, params["data"], int(params["generate"]["batch_size"])
    axes = grids(params, opts.quick)
    n_frames = frames_for(codec, data["note_seconds"])
    if opts.quick:
        n_frames = min(n_frames, 12)
    decoder = setup.decoder
    result = setup.result | dict(
        frames_per_note=n_frames,
        note_seconds=data["note_seconds"],
        batch_size=batch_size,
        sampling=dataclasses.asdict(decoder.sampling),
        magnet=dataclasses.asdict(decoder.magnet),
        codec=repr(codec)
        if opts.quick
        else f"fitted codec {codec_path().name} ({codec.griffin_lim_iters} Griffin-Lim iterations)",
        grids={},
    )
    repeats = opts.repeats or (1 if opts.quick else 3)
    data_plan = t2i_plan(pd.DataFrame({"id": [setup.prompt_id]}), *axes["data_grid"])
    with tempfile.TemporaryDirectory() as tmp:
        for variant, model in setup.models.items():  # untimed warm-up on a few notes
            instrument_run(model, codec, data_plan.iloc[:8], setup.clap, n_frames, setup.decoders[variant],
                           batch_size, Path(tmp) / "w", dev)
        for grid, grid_axes in axes.items():
            result["grids"][grid] = time_grid(setup, grid, grid_axes, (n_frames, batch_size, dev), repeats,
                                              Path(tmp))
        if opts.profile != "never":
            result["profile"] = profile_batch(setup, data_plan.iloc[:batch_size], n_frames, dev)
    return result
