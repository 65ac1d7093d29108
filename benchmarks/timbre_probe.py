"""Does a trained LM's timbre follow its condition? A quick probe of one checkpoint (minutes on a CPU).

    python benchmarks/timbre_probe.py --profile tiny --variant baseline [--model PATH] [--root DIR]
        [--cfg 3] [--label NAME] [--out benchmarks/results/timbre_probe.jsonl]

On the profile's test split, at velocity 100 and MIDI 48, 60, 72, 84:

- **S2I swap test**: each test instrument's seeded query note (as S2I) conditions the same cells.
  ``retrieval``: share of generated instruments (mean unit CLAP embedding) nearest to their own
  instrument's centroid of real test notes (chance 1/K); ``sensitivity``: mean CLAP cosine between
  generations of one cell under different instruments (real notes: the same statistic on the test set).
- **T2I family accuracy**: every prompt that names one family conditions the same cells; the share of
  notes a logistic-regression family classifier (fitted on the train split's CLAP embeddings) assigns to
  the named family, beside the classifier's accuracy on the real test notes at those cells.
- **Frame-to-frame change** (fitted codec): RMS change of the log-magnitude between consecutive frames of
  the S2I codes, generated and real (the same cells); out-of-line generated frames are clicks.
- **Teacher-forced CLAP use**: validation cross-entropy of the test notes with their own CLAP embedding,
  another instrument's, and the CLAP token nulled (family and source nulled, as at inference).

One JSON line per run is appended to ``--out`` (label, commit, settings, figures, wall time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from measure import git_commit  # noqa: E402

from instrumentgen.artifacts import clap_file, codec_file, lm_file  # noqa: E402
from instrumentgen.clap.loading import load_embedder  # noqa: E402
from instrumentgen.codec.loading import load_codec  # noqa: E402
from instrumentgen.config import load_profile  # noqa: E402
from instrumentgen.features.cache import read_features  # noqa: E402
from instrumentgen.generate.conditioning import condition_tokens  # noqa: E402
from instrumentgen.generate.protocols import query_row  # noqa: E402
from instrumentgen.generate.run import Decoder, frames_for, plan_conditions  # noqa: E402
from instrumentgen.generate.sampling import SamplingSettings, guide, sample  # noqa: E402
from instrumentgen.lm.checkpoint import load_model  # noqa: E402
from instrumentgen.lm.conditioners import CONDITIONS, Conditions, encode_categories, inference_drop  # noqa: E402,E501
from instrumentgen.lm.losses import _masked_stats, ar_inputs  # noqa: E402
from instrumentgen.lm.pattern import DelayPattern  # noqa: E402
from instrumentgen.prompts import named_family  # noqa: E402

PITCHES = (48, 60, 72, 84)
VELOCITY = 100


def masked_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-position CE ``[B, K, S]`` (0 off the mask) of logits ``[B, K, S, card]``."""
    return _masked_stats(logits, targets, mask)[0]


def unit(z: np.ndarray) -> np.ndarray:
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


@torch.no_grad()
def generate_with_prefix(model, cond: Conditions, prefix: torch.Tensor, n_frames: int,
                         settings: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """AR decoding as ``generate_ar`` (KV cache, CFG) whose first frames are forced to ``prefix``
    ``[B, K, N]`` (real codes: an oracle onset); codes ``[B, K, n_frames]``."""
    cfg = model.config
    model.eval()
    b, k, n = prefix.shape
    pattern = DelayPattern(k, cfg.special_token)
    steps = pattern.sequence_length(n_frames)
    valid = pattern.valid_mask(n_frames)
    padded = torch.cat([prefix, torch.zeros(b, k, n_frames - n, dtype=torch.long)], dim=2)
    real, _ = pattern.build(padded)
    frame = torch.arange(steps)[None, :] - torch.arange(k)[:, None]  # [K, S] frame of each step
    forced = valid & (frame < n)
    tokens = condition_tokens(model, cond, settings.guided)
    rows = tokens.shape[0]
    seq = torch.full((b, k, steps + 1), cfg.special_token, dtype=torch.long)
    cache = model.start_cache(tokens, steps)
    for s in range(steps):
        out = model(seq[:, :, s : s + 1].repeat(rows // b, 1, 1), tokens, cache)
        cache = out.cache
        logits = out.logits[:, :, -1]
        if settings.guided:
            logits = guide(logits[:b], logits[b:], settings.cfg_coef)
        nxt = sample(logits, settings, generator)
        nxt = torch.where(forced[:, s][None], real[:, :, s], nxt)
        seq[:, :, s + 1] = torch.where(valid[:, s][None], nxt, torch.full_like(nxt, cfg.special_token))
    return pattern.revert(seq[:, :, 1:])


def decode_cells(model, codec, embedder, clap: np.ndarray, n_frames: int, decoder: Decoder, seed: int,
                 fill: torch.Tensor | None = None, prefix: np.ndarray | None = None):
    """Unit CLAP audio embeddings ``[C, P, D]`` of ``C`` conditions ``clap`` ``[C, D]`` (or one per cell,
    ``[C, P, D]``) x the ``P`` probe pitches; ``fill``
    ``[K']`` replaces the generated codes of the last ``K'`` stages (a diagnostic of residual-stage noise);
    ``prefix`` ``[C, P, K, N]`` forces the first ``N`` frames (an oracle onset). Also returns the generated
    codes ``[C * P, K, F]``."""
    n_conditions = len(clap)
    rows = [(c, p) for c in range(n_conditions) for p in PITCHES]
    per_cell = clap.ndim == 3
    clap_rows = np.arange(len(rows)) if per_cell else [c for c, _ in rows]
    clap = clap.reshape(-1, clap.shape[-1])
    plan = pd.DataFrame(
        {"pitch": [p for _, p in rows], "velocity": VELOCITY, "clap_row": clap_rows,
         "drop_family": True, "drop_source": True}
    )
    out, all_codes = [], []
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(plan), 64):
        chunk = plan.iloc[start : start + 64]
        if prefix is None:
            codes = decoder.decode(model, plan_conditions(chunk, clap), n_frames, generator)
        else:
            forced = torch.from_numpy(prefix.reshape(-1, *prefix.shape[2:])[start : start + 64]).long()
            codes = generate_with_prefix(model, plan_conditions(chunk, clap), forced, n_frames,
                                         decoder.sampling, generator)
        if fill is not None and len(fill):
            codes[:, codes.shape[1] - len(fill) :] = fill[None, :, None]
        audio = codec.decode(codes).squeeze(1).float().numpy()
        out.append(embedder.embed_audio(audio, codec.sample_rate))
        all_codes.append(codes)
    return unit(np.concatenate(out)).reshape(n_conditions, len(PITCHES), -1), torch.cat(all_codes)


def frame_change(codec, codes: torch.Tensor) -> dict | None:
    """Frame-to-frame RMS change of the log-magnitude that codes ``[B, K, F]`` stand for (before any
    decoding median): median and 90th percentile over all frame pairs. A fitted codec only (None else)."""
    if not hasattr(codec, "codes_to_log_magnitude"):
        return None
    log_mag = codec.codes_to_log_magnitude(codes)  # [B, F, bins]
    change = (log_mag[:, 1:] - log_mag[:, :-1]).pow(2).mean(-1).sqrt().flatten()
    return {"median": float(change.median()), "p90": float(change.quantile(0.9))}


def nearest_cells(test: pd.DataFrame, instruments: list[str]) -> np.ndarray:
    """``[C, P]`` rows of ``test``: each instrument's note at :data:`VELOCITY` nearest each probe pitch."""
    at_velocity = test[test["velocity"] == VELOCITY]
    rows = []
    for i in instruments:
        own = at_velocity[at_velocity["instrument_str"] == i]
        rows.append([own.index[(own["pitch"] - p).abs().argmin()] for p in PITCHES])
    return np.array(rows, dtype=np.int64)


def sensitivity(z: np.ndarray) -> float:
    """Mean over cells of the mean pairwise cosine between conditions: ``z`` ``[C, P, D]``."""
    values = []
    for p in range(z.shape[1]):
        g = z[:, p] @ z[:, p].T
        values.append(g[~np.eye(len(g), dtype=bool)].mean())
    return float(np.mean(values))


@torch.no_grad()
def teacher_forced(model, codes: np.ndarray, table: pd.DataFrame, clap: np.ndarray, rng) -> dict:
    """Teacher-forced CE of the test notes ``codes`` ``[N, K, T]`` with their own CLAP embedding, another
    instrument's, and the CLAP token nulled (family and source nulled, as at inference): the mean over
    codebooks and steps, and stage 0's mean and first frame (the stage that carries most timbre)."""
    cfg = model.config
    cats = encode_categories(table["pitch"], table["velocity"], table["instrument_family"],
                             table["instrument_source"])
    inst = table["instrument_str"].to_numpy()
    other = np.array([rng.choice(np.flatnonzero(inst != i)) for i in inst])
    x = torch.from_numpy(np.array(codes)).long()
    inputs, targets, mask = ar_inputs(x, DelayPattern(cfg.n_codebooks, cfg.special_token))
    results = {}
    for name, rows, drop_clap in (("own", np.arange(len(x)), False), ("other", other, False),
                                  ("null", np.arange(len(x)), True)):
        drop = inference_drop(len(x))
        drop[:, CONDITIONS.index("clap")] = drop_clap
        cond = Conditions(*(torch.from_numpy(cats[n]) for n in CONDITIONS[:4]),
                          clap=torch.from_numpy(clap[rows]).float(), drop=drop)
        ce = torch.cat([
            masked_ce(model(inputs[s : s + 128], cond.index(slice(s, s + 128))).logits, targets[s : s + 128],
                      mask[s : s + 128])
            for s in range(0, len(x), 128)
        ])  # [N, K, S], 0 off the mask
        stage0 = ce[:, 0, : x.shape[-1]]  # stage 0 has no delay: step t = frame t
        results[name] = {"all": float(ce.sum() / mask.sum()), "stage0": float(stage0.mean()),
                         "stage0_frame0": float(stage0[:, 0].mean())}
    return results


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--variant", default="baseline")
    ap.add_argument("--model", type=Path, help="LM checkpoint (default: the profile's)")
    ap.add_argument("--root", type=Path, default=Path("."),
                    help="the run's folder (holds data/<profile>/; e.g. a bench-demo --workspace)")
    ap.add_argument("--cfg", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--prefix-frames", type=int, default=0,
                    help="S2I only: force the first N frames to the real note's codes (an oracle onset)")
    ap.add_argument("--oracle-clap", action="store_true",
                    help="S2I only: condition each cell on the real note's own CLAP embedding at that cell "
                         "(as in training) instead of the query note's")
    ap.add_argument("--keep-stages", type=int, default=None,
                    help="decode only the first N generated stages; the others get their most frequent code")
    ap.add_argument("--label", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/timbre_probe.jsonl"))
    return ap.parse_args()


@dataclass
class Probe:
    """The checkpoint under probe and what decodes and embeds its notes."""

    params: dict
    data: Path  # the run's data/<profile>
    model_path: Path
    model: object  # CodecLM
    codec: object
    embedder: object
    sampling: dict
    decoder: Decoder
    n_frames: int
    fill: torch.Tensor | None  # codes of the stages that --keep-stages replaces

    def decode(self, clap: np.ndarray, prefix: np.ndarray | None = None):
        return decode_cells(self.model, self.codec, self.embedder, clap, self.n_frames, self.decoder,
                            self.params["seed"], self.fill, prefix)


def load_probe(args: argparse.Namespace) -> Probe:
    params = load_profile(args.profile)
    data = args.root / "data" / args.profile
    model_path = args.model or args.root / lm_file(params, args.variant)
    model, meta = load_model(model_path)
    codec = load_codec(args.root / codec_file(params), n_codebooks=model.config.n_codebooks)
    embedder = load_embedder(args.root / clap_file(params))
    sampling = dict(params["generate"]["sampling"])
    for key, value in (("cfg_coef", args.cfg), ("temperature", args.temperature), ("top_k", args.top_k)):
        if value is not None:
            sampling[key] = value
    decoder = Decoder(sampling=SamplingSettings(**sampling)).for_checkpoint(meta)
    n_frames = frames_for(codec, params["data"]["note_seconds"])
    fill = None
    if args.keep_stages is not None:
        _, train_codes = read_features(data / "features" / "codes" / "train.parquet")
        train_codes = np.asarray(train_codes)
        fill = torch.tensor([np.bincount(train_codes[:, k].ravel()).argmax()
                             for k in range(args.keep_stages, train_codes.shape[1])])
    return Probe(params, data, model_path, model, codec, embedder, sampling, decoder, n_frames, fill)


def clap_cache(data: Path, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    meta, z = read_features(data / "features" / "clap_audio" / f"{split}.parquet")
    return meta.to_pandas(), np.asarray(z, dtype=np.float32)


def real_sensitivity(test: pd.DataFrame, z_test: np.ndarray, instruments: list[str]) -> float:
    """:func:`sensitivity` of the real test notes at the probe cells (mean unit embedding of each
    instrument's notes at a cell; cells an instrument lacks are left out)."""
    real = np.stack([
        np.stack([unit(z_test[(test["instrument_str"] == i) & (test["pitch"] == p) &
                              (test["velocity"] == VELOCITY)]).mean(0) if (
            (test["instrument_str"] == i) & (test["pitch"] == p) & (test["velocity"] == VELOCITY)).any()
            else np.full(z_test.shape[1], np.nan) for p in PITCHES]) for i in instruments])
    return float(np.nanmean([
        np.nanmean([(real[a, p] @ real[b, p]) for a in range(len(real)) for b in range(len(real)) if a != b])
        for p in range(len(PITCHES))]))


def s2i_figures(probe: Probe, args: argparse.Namespace, test: pd.DataFrame, z_test: np.ndarray,
                test_codes: np.ndarray, classifier) -> dict:
    """The S2I swap test: each test instrument's seeded query note conditions the probe cells."""
    instruments = sorted(test["instrument_str"].unique())
    queries = [query_row(i, test.index[test["instrument_str"] == i].to_numpy(), probe.params["seed"])
               for i in instruments]
    cells = nearest_cells(test, instruments)  # [C, P] test rows
    prefix = test_codes[cells][..., : args.prefix_frames] if args.prefix_frames else None  # [C, P, K, N]
    condition = z_test[cells] if args.oracle_clap else z_test[queries]
    gen, gen_codes = probe.decode(condition, prefix)
    centroids = unit(np.stack([unit(z_test[test["instrument_str"] == i]).mean(0) for i in instruments]))
    nearest = (unit(gen.mean(1)) @ centroids.T).argmax(1)
    # the same with the mean of all generated instruments (and of all centroids) removed: does what
    # distinguishes one generation from the others point at its own instrument?
    g = gen.mean(1)
    centred = (unit(g - g.mean(0)) @ unit(centroids - centroids.mean(0)).T).argmax(1)
    family = [test.loc[test["instrument_str"] == i, "instrument_family_str"].iloc[0] for i in instruments]
    family_hits = [classifier.predict(gen[c]) == f for c, f in enumerate(family)]  # [C] x [P]
    return {
        "K": len(instruments),
        "s2i_retrieval": float((nearest == np.arange(len(instruments))).mean()),
        "s2i_retrieval_centred": float((centred == np.arange(len(instruments))).mean()),
        "s2i_retrieval_chance": 1 / len(instruments),
        "s2i_sensitivity": sensitivity(gen),
        "real_sensitivity": real_sensitivity(test, z_test, instruments),
        "s2i_family_accuracy": float(np.mean(family_hits)),
        "s2i_frame_change": {
            "generated": frame_change(probe.codec, gen_codes),
            "real": frame_change(probe.codec, torch.from_numpy(test_codes[cells.ravel()]).long()),
        },
    }


def t2i_figures(probe: Probe, classifier) -> dict:
    """Every prompt that names one family conditions the probe cells: the share of notes the classifier
    assigns to that family."""
    tmeta, z_text = read_features(probe.data / "features" / "clap_text" / "prompts.parquet")
    prompts = tmeta.to_pandas()
    named = [(r, named_family(str(t))) for r, t in enumerate(prompts["text"])]
    named = [(r, f) for r, f in named if f is not None]
    gen_t, _ = probe.decode(np.asarray(z_text, np.float32)[[r for r, _ in named]])
    per_prompt = {str(prompts["id"].iloc[r]): float((classifier.predict(gen_t[c]) == f).mean())
                  for c, (r, f) in enumerate(named)}
    return {
        "t2i_family_accuracy": float(np.mean(list(per_prompt.values()))),
        "t2i_per_prompt": per_prompt,
        "t2i_sensitivity": sensitivity(gen_t),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    probe = load_probe(args)
    train, z_train = clap_cache(probe.data, "train")
    test, z_test = clap_cache(probe.data, "test")
    families = sorted(train["instrument_family_str"].unique())
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    classifier.fit(unit(z_train), train["instrument_family_str"])
    probe_cells = test[(test["velocity"] == VELOCITY) & test["pitch"].isin(PITCHES)]
    real_acc = float((classifier.predict(unit(z_test[probe_cells.index])) ==
                      probe_cells["instrument_family_str"]).mean())
    real_acc_all = float((classifier.predict(unit(z_test)) == test["instrument_family_str"]).mean())
    test_codes, code_table = _codes(probe.data, test)  # [N, K, T], row-aligned with the CLAP cache
    s2i = s2i_figures(probe, args, test, z_test, test_codes, classifier)
    changes = s2i.pop("s2i_frame_change")
    t2i = t2i_figures(probe, classifier)
    tf = (teacher_forced(probe.model, test_codes, code_table, z_test, np.random.default_rng(0))
          if probe.model.config.objective == "ar" else None)
    record = {
        "label": args.label, "profile": args.profile, "variant": args.variant,
        "model": str(probe.model_path),
        "commit": git_commit(Path(__file__).parent.parent),
        "sampling": probe.sampling, "keep_stages": args.keep_stages, "prefix_frames": args.prefix_frames,
        "oracle_clap": args.oracle_clap,
        **s2i,
        **t2i,
        "classifier_real_test_accuracy_probe_cells": real_acc, "classifier_real_test_accuracy": real_acc_all,
        "family_chance": 1 / len(families),
        "teacher_forced_ce": tf, "s2i_frame_change": changes, "wall_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))


def _codes(data: Path, test: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    meta, codes = read_features(data / "features" / "codes" / "test.parquet")
    table = meta.to_pandas()
    if not (table["note_str"].to_numpy() == test["note_str"].to_numpy()).all():
        raise ValueError("codes and CLAP caches of the test split are not row-aligned")
    return np.asarray(codes), table


if __name__ == "__main__":
    main()
