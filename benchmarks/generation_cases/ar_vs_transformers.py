"""Case ``ar_vs_transformers``: AR decoding frames/s of our ``generate_ar`` against transformers'
``MusicgenForCausalLM.generate`` with the same dimensions (see ``benchmarks/generation.py``)."""

from __future__ import annotations

from generation_cases.common import (
    Options,
    PassCounter,
    interleaved,
    lm_config,
    median,
    profile_top,
    random_model,
)

AR_TARGET = 2.0  # ours >= 2x transformers' frames/s


def musicgen(config, device: str):
    """transformers' MusicgenForCausalLM with the dimensions of ``config`` (random weights, eval mode)."""
    from instrumentgen.testing import musicgen as build

    return build(config).to(device)


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


class Contest:
    """Both decoders at the same size, fed the same 5 condition tokens: ``ours`` through ``generate_ar``,
    ``transformers`` through ``generate`` (the tokens as ``encoder_hidden_states``)."""

    def __init__(self, opts: Options):
        import torch

        from instrumentgen.generate.conditioning import condition_tokens
        from instrumentgen.generate.sampling import SamplingSettings
        from instrumentgen.testing import random_conditions

        dev = self.device = opts.device
        self.batch, self.steps = (2, 10) if opts.quick else (opts.ar_batch, opts.ar_steps)
        self.config = config = lm_config("ar", opts.quick)
        self.n_frames = self.steps - config.n_codebooks + 1  # S = T + K - 1 decoding steps for T frames
        self.top_k = min(250, config.codebook_size)
        self.ours, self.hf = random_model(config, dev), musicgen(config, dev)
        self.cond = random_conditions(self.batch, config.clap_dim).to(dev)
        with torch.no_grad():
            self.enc = condition_tokens(self.ours, self.cond, guided=False)  # [B, 5, d]
        self.settings = SamplingSettings(temperature=1.0, top_k=self.top_k, top_p=0.0, cfg_coef=1.0)
        self.gen = torch.Generator(device=dev).manual_seed(0)
        torch.manual_seed(0)

    def ours_run(self, steps: int):
        from instrumentgen.generate.ar import generate_ar

        return generate_ar(self.ours, self.cond, steps - self.config.n_codebooks + 1, self.settings, self.gen)

    def transformers_run(self, steps: int):
        return musicgen_generate(self.hf, self.enc, steps, self.top_k)

    def contenders(self) -> dict:
        return {
            "ours": lambda: self.ours_run(self.steps),
            "transformers": lambda: self.transformers_run(self.steps),
        }

    def warm_up(self, runs: int) -> tuple[dict, dict]:
        """``runs`` untimed runs of each, the first counting forward passes: (passes, output shapes); an
        error unless both do exactly the same work."""
        contenders, passes, shapes = self.contenders(), {}, {}
        for name, model in (("ours", self.ours), ("transformers", self.hf)):
            with PassCounter(model) as counter:
                out = contenders[name]()
            passes[name], shapes[name] = counter.count, list(out.shape)
            for _ in range(runs - 1):
                contenders[name]()
        if set(passes.values()) != {self.steps} or shapes["ours"] != shapes["transformers"]:
            raise RuntimeError(f"unequal work: forward passes {passes}, output shapes {shapes}")
        return passes, shapes

    def description(self) -> dict:
        import transformers

        ours, config = self.ours, self.config
        own = sum(p.numel() for p in ours.parameters())
        return {
            "transformers_version": transformers.__version__,
            "transformers_class": "MusicgenForCausalLM",
            "transformers_attn_implementation": self.hf.config._attn_implementation,
            "config": {
                "dim": config.dim,
                "n_layers": config.n_layers,
                "n_heads": config.n_heads,
                "ffn_dim": config.ffn_mult * config.dim,
                "n_codebooks": config.n_codebooks,
                "codebook_size": config.codebook_size,
            },
            "parameters": {
                "ours_total": own,
                "ours_without_condition_encoder": own - sum(p.numel() for p in ours.conditions.parameters()),
                "transformers_total": sum(p.numel() for p in self.hf.parameters()),
            },
            "batch": self.batch,
            "decoding_steps": self.steps,
            "frames_out": self.n_frames,
        }


def timings(times: dict[str, list], batch: int, steps: int) -> dict:
    """Medians, minima, frames/s and the ours-over-transformers ratios of the raw times."""
    med = {n: median(t) for n, t in times.items()}
    best = {n: min(t) for n, t in times.items()}
    ratio = round(med["transformers"] / med["ours"], 3)
    return {
        "raw_s": times,
        "median_s": med,
        "min_s": best,
        "frames_per_s": {n: round(batch * steps / med[n], 2) for n in med},  # one frame of K codes per row
        "steps_per_s": {n: round(steps / med[n], 2) for n in med},
        "ratio_ours_over_transformers": ratio,
        "ratio_of_minima": round(best["transformers"] / best["ours"], 3),
        "per_round_ratios": [
            round(h / o, 3) for o, h in zip(times["ours"], times["transformers"], strict=True)
        ],
        "target": f"ours >= {AR_TARGET}x transformers",
        "target_met": ratio >= AR_TARGET,
    }


def run(opts: Options) -> dict:
    import transformers

    transformers.logging.set_verbosity_error()  # the min_new_tokens/min_length notice on every call
    contest = Contest(opts)
    repeats, warmup = opts.repeats or (1 if opts.quick else 3), 1 if opts.quick else 2
    passes, shapes = contest.warm_up(warmup)
    print(f"ar_vs_transformers: batch {contest.batch}, {contest.steps} steps, {repeats} rounds", flush=True)
    times = interleaved(contest.contenders(), repeats, opts.device)
    result = {
        "case": "ar_vs_transformers",
        **contest.description(),
        "forward_passes": passes,
        "output_shape": shapes["ours"],
        "condition_tokens": int(contest.enc.shape[1]),
        "sampling": {"top_k": contest.top_k, "temperature": 1.0, "cfg": "none", "kv_cache": True},
        "transformers_cache": "EncoderDecoderCache passed to generate (cache=...)",
        "transformers_cache_check": transformers_cache_check(opts.device),
        "warmup_runs": warmup,
        "rounds": repeats,
    }
    result.update(timings(times, contest.batch, contest.steps))
    if opts.profile == "always" or (opts.profile == "auto" and not result["target_met"]):
        p_steps = min(contest.steps, 10 if opts.quick else 40)
        result["profile"] = {
            "decoding_steps": p_steps,
            "ours": profile_top(lambda: contest.ours_run(p_steps), opts.device),
            "transformers": profile_top(lambda: contest.transformers_run(p_steps), opts.device),
        }
    return result
