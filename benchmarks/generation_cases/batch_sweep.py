"""Case ``batch_sweep``: AR against MAGNeT LM decoding time per note as the note batch grows, at the tiny
and the paper model size, each with its profile's decoding settings (random weights: speed does not
depend on them).

AR's cost per note falls with the batch (a KV cache: each pass adds one position per row, and a small
batch leaves the hardware idle); MAGNeT computes every position of every row at each of its passes, so
once a pass fills the hardware its cost grows with the batch and the steps it saves stop paying.
``crossover_batch``: the smallest measured batch from which AR is faster per note."""

from __future__ import annotations

import dataclasses
from functools import partial

from measure import note_frames

from generation_cases.common import Options, interleaved, lm_config, median, random_model, timed

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
    lm = dict(params["lm"], n_codebooks=codec["n_codebooks"], codebook_size=codec["codebook_size"])
    return LMConfig.from_dict({**lm, "objective": objective}), note_frames(params), decoder


@dataclasses.dataclass
class Sweep:
    """One model size's AR and MAGNeT models and decoders."""

    device: str
    ar_model: object
    mg_model: object
    decoder: object  # the profile's Decoder
    one_pass: object  # the same with MAGNeT at one step per stage
    n_frames: int
    mg_passes: int
    repeats: int
    generator: object  # torch.Generator on the device

    def row(self, batch: int, size: str) -> dict:
        """The timings of one batch of ``batch`` notes: AR in full; MAGNeT in full when its predicted
        time is short enough (and always at paper size, batch 1), else one pass per stage x its passes."""
        from instrumentgen.testing import random_conditions

        dev, n_frames, decoder, one_pass = self.device, self.n_frames, self.decoder, self.one_pass
        cond = random_conditions(batch, self.ar_model.config.clap_dim).to(dev)
        gen = self.generator
        decoder.decode(self.ar_model, cond, min(n_frames, 4), gen)  # warm-up on these batch shapes
        one_pass.decode(self.mg_model, cond, min(n_frames, 4), gen)
        per_pass = timed(partial(one_pass.decode, self.mg_model, cond, n_frames, gen), dev)
        per_pass_s = per_pass / one_pass.steps(self.mg_model, n_frames)
        full = per_pass_s * self.mg_passes <= FULL_MAGNET_LIMIT_S or (size == "paper" and batch == 1)
        contenders = {"ar": partial(decoder.decode, self.ar_model, cond, n_frames, gen)}
        if full:
            contenders["magnet"] = partial(decoder.decode, self.mg_model, cond, n_frames, gen)
        print(f"batch_sweep {size} batch {batch}: MAGNeT {'full' if full else 'one pass per stage'}",
              flush=True)
        times = interleaved(contenders, self.repeats, dev)
        ar_s = median(times["ar"])
        row = {
            "ar_s": round(ar_s, 4),
            "ar_raw_s": times["ar"],
            "magnet_one_pass_per_stage_s": round(per_pass, 4),
            "magnet_s_per_pass": round(per_pass_s, 5),
        }
        if full:
            magnet_s = median(times["magnet"])
            row.update(magnet_s=round(magnet_s, 4), magnet_raw_s=times["magnet"], magnet_method="timed",
                       magnet_predicted_s=round(per_pass_s * self.mg_passes, 4))
        else:
            magnet_s = per_pass_s * self.mg_passes
            row.update(magnet_s=round(magnet_s, 4), magnet_method="passes x s per pass")
        row.update(
            ar_ms_per_note=round(1000 * ar_s / batch, 3),
            magnet_ms_per_note=round(1000 * magnet_s / batch, 3),
            speedup_magnet_over_ar=round(ar_s / magnet_s, 3),
        )
        return row


def size_entry(size: str, opts: Options) -> dict:
    """The sweep of one model size over its batches."""
    import torch

    from instrumentgen.generate.magnet import MagnetSettings

    dev = opts.device
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
    entry = {
        "lm": {k: getattr(ar_config, k) for k in LM_FIELDS},
        "frames_per_note": n_frames,
        "sampling": dataclasses.asdict(decoder.sampling),
        "magnet": dataclasses.asdict(decoder.magnet),
        "forward_passes": {"ar": ar_passes, "magnet": mg_passes},
        "rounds": repeats,
        "batches": {},
    }
    gen = torch.Generator(device=dev).manual_seed(0)
    sweep = Sweep(dev, ar_model, mg_model, decoder, one_pass, n_frames, mg_passes, repeats, gen)
    for batch in batches:
        entry["batches"][str(batch)] = sweep.row(batch, size)
    faster = {int(b): r["speedup_magnet_over_ar"] >= 1 for b, r in entry["batches"].items()}
    entry["crossover_batch"] = min((b for b, f in faster.items() if not f), default=None)
    entry["magnet_faster_at"] = [b for b, f in faster.items() if f]
    return entry


def run(opts: Options) -> dict:
    sizes = ("tiny",) if opts.quick else ("tiny", "paper")
    return {"case": "batch_sweep", "sizes": {size: size_entry(size, opts) for size in sizes}}
