"""Benchmark: which CLAP quantiser design keeps an unseen instrument's identity, under each CLAP scheme.

    .venv/bin/python benchmarks/clap_quantiser.py [--profile tiny]

Reads data/<profile>/features/clap_audio/{train,valid,test}.parquet, .../codes/train.parquet and
.../reference/{train,valid,test}.parquet (`make demo` writes them) and the profile's params (seed,
lm.clap_n_q / clap_bins, train.steps / batch_size / cfg_dropout / attribute_dropout). For each scheme
(baseline, random, fixed; pairings built by ``train.data.load_split`` / ``make_batch``, as training
does) and each quantiser design, it simulates the quantiser's part of LM training: ``steps`` global
batches drawn exactly as ``Trainer.train_step`` draws them (rows, CLAP pairing, per-sample condition
dropout; a row whose CLAP is dropped does not update the codebooks), through ``lm.conditioners.ResidualVQ``
(decay 0.99). Then, on the test and valid notes (unit CLAP embeddings), it measures:

- ``self_cosine``: mean cosine of a quantised note embedding to the note's own embedding;
- ``nearest_train_reference_cosine``: mean cosine of a quantised note to the nearest training
  instrument's reference note (1.0 = snapped onto a training instrument);
- ``identity``: nearest-instrument-centroid retrieval of the quantised notes against the raw centroids
  of the split's instruments (raw embeddings give the ceiling);
- ``train_identity``: the same for the quantised distinct training conditioning embeddings (what the LM
  sees in training) against the raw training instrument centroids;
- ``text_self_cosine`` / ``text_family_accuracy``: the offline prompts' CLAP text embeddings, quantised:
  cosine to themselves, and nearest training family centroid (audio) = the family the prompt names;
- ``codebook_norm_median`` and ``codes_used`` (by the split's notes) per stage.

Designs: the initialisation (``pick``: today's random rows of the scheme's draws; ``k-means`` on the
scheme's draws, on every training note's own embedding, or on the first training batch as audiocraft
does), then ``frozen`` or ``EMA`` updates, optionally with dead-code expiry (a code whose EMA count falls
below a threshold is re-seeded with a random kept residual of the batch, statistics reset as in
vector-quantize-pytorch; audiocraft's threshold is 2). Also two scheme-independent sweeps of the frozen
k-means design: Lloyd iterations, and stages x codes. Deterministic (seeded, one thread). Writes
benchmarks/results/clap_quantiser_<profile>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from measure import git_commit, machine_info

from instrumentgen.config import REPO_ROOT, load_profile
from instrumentgen.features.cache import read_features
from instrumentgen.lm.conditioners import CONDITIONS, ResidualVQ
from instrumentgen.nsynth.metadata import FAMILIES
from instrumentgen.train.data import DropoutSettings, SplitData, load_split, make_batch
from instrumentgen.train.loop import batch_rows
from instrumentgen.train.schemes import SCHEMES, make_pairing

F = torch.nn.functional
AUDIOCRAFT_KMEANS_ITERS = 50  # audiocraft config/conditioner/clapemb2music.yaml
AUDIOCRAFT_DEAD_CODE = 2.0  # audiocraft's threshold_ema_dead_code default
DESIGNS = {  # name: (initialisation, update, dead-code threshold)
    "pick(scheme) + EMA [before]": ("pick", "ema", 0.0),
    "pick(scheme) + EMA + expiry 2": ("pick", "ema", AUDIOCRAFT_DEAD_CODE),
    "k-means(first batch) + EMA [audiocraft as written]": ("first_batch", "ema", 0.0),
    "k-means(first batch) + EMA + expiry 2": ("first_batch", "ema", AUDIOCRAFT_DEAD_CODE),
    "k-means(scheme) + EMA": ("scheme", "ema", 0.0),
    "k-means(scheme) frozen": ("scheme", "frozen", 0.0),
    "k-means(all) + EMA [clap_quantiser: ema]": ("all", "ema", 0.0),
    "k-means(all) + EMA + expiry 2": ("all", "ema", AUDIOCRAFT_DEAD_CODE),
    "k-means(all) + EMA + expiry 0.05": ("all", "ema", 0.05),
    "k-means(all) frozen [clap_quantiser: frozen, chosen]": ("all", "frozen", 0.0),
}


class ExpiringRVQ(ResidualVQ):
    """:class:`ResidualVQ` with EMA and dead-code expiry before each stage's EMA step: a code whose EMA
    count is below ``threshold`` becomes a random kept residual of the batch (draws from a generator
    seeded by (seed, step, stage), so identical on every process), with count ``threshold``."""

    def __init__(self, *args, threshold: float, seed: int, **kwargs):
        super().__init__(*args, ema=True, **kwargs)
        self.threshold, self.seed, self.step = threshold, seed, 0

    @torch.no_grad()
    def _ema_update(self, q, residual, idx, update):
        rows = residual if update is None else residual[update]
        dead = self.cluster_size[q] < self.threshold
        if rows.shape[0] and bool(dead.any()):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step * 64 + q)
            fresh = rows[torch.randint(0, rows.shape[0], (self.bins,), generator=gen)]
            self.codebooks[q][dead] = fresh[dead]
            self.embed_sum[q][dead] = fresh[dead] * self.threshold
            self.cluster_size[q][dead] = self.threshold
            idx = self._nearest(residual, q)  # the batch's codes against the refreshed codebook
        super()._ema_update(q, residual, idx, update)
        if q == self.n_q - 1:
            self.step += 1


def unit(x) -> torch.Tensor:
    return F.normalize(torch.as_tensor(np.array(x, dtype=np.float32)), dim=-1)


def group_ids(values) -> np.ndarray:
    return pd.factorize(np.asarray(values))[0]


def centroids(x: torch.Tensor, group: np.ndarray, n_groups: int = 0) -> torch.Tensor:
    """Unit mean of the unit rows of ``x`` ``[N, D]`` per group id ``[N]`` → ``[max(G, n_groups), D]``."""
    g = torch.from_numpy(np.asarray(group, dtype=np.int64))
    sums = torch.zeros(max(int(group.max()) + 1, n_groups), x.shape[1]).index_add_(0, g, x)
    return F.normalize(sums, dim=-1)


def retrieval(x: torch.Tensor, group: np.ndarray, cents: torch.Tensor) -> float:
    return float(((F.normalize(x, dim=-1) @ cents.T).argmax(1).numpy() == group).mean())


def pick_init(rvq: ResidualVQ, data: torch.Tensor, gen: torch.Generator) -> None:
    """The initialisation before this benchmark's decision: every stage's codes are residuals of rows
    of ``data`` drawn with replacement."""
    residual = data.clone()
    for q in range(rvq.n_q):
        rvq.codebooks[q] = residual[torch.randint(0, residual.shape[0], (rvq.bins,), generator=gen)]
        residual = residual - rvq.codebooks[q][rvq._nearest(residual, q)]
    rvq.embed_sum.copy_(rvq.codebooks)
    rvq.cluster_size.fill_(1.0)
    rvq.initialized.fill_(True)


def simulated_batches(split: SplitData, seed: int, steps: int, batch: int, dropout: DropoutSettings):
    """The CLAP inputs ``[S, B, D]`` (unit) and kept masks ``[S, B]`` of ``steps`` training steps."""
    claps, kept = [], []
    for step in range(steps):
        rng = np.random.default_rng([seed, step])  # as Trainer.train_step
        _, cond = make_batch(split, batch_rows(step, batch, len(split), seed), rng, dropout)
        claps.append(unit(cond.clap))
        kept.append(~cond.drop[:, CONDITIONS.index("clap")])
    return torch.stack(claps), torch.stack(kept)


class Evaluation:
    """Everything a quantiser is measured on (see the module docstring)."""

    def __init__(self, folder: Path, train: SplitData, text: tuple[torch.Tensor, list[str | None]]):
        self.splits = {}
        for name in ("test", "valid"):
            meta, x = read_features(folder / "clap_audio" / f"{name}.parquet")
            group = group_ids(meta.column("instrument_str").to_numpy(zero_copy_only=False))
            self.splits[name] = (unit(x), group)
        self.train_x = unit(train.clap)
        self.train_group = group_ids(train.notes["instrument_str"])
        self.train_cents = centroids(self.train_x, self.train_group)
        fixed = make_pairing("fixed", train.notes, pd.read_parquet(folder / "reference" / "train.parquet"))
        self.references = self.train_x[torch.from_numpy(fixed.reference_row)]
        family = train.notes["instrument_family"].to_numpy()
        self.family_cents = centroids(self.train_x, family, len(FAMILIES))  # rows follow FAMILIES
        self.text_x, self.text_family = text

    def ceilings(self) -> dict:
        out = {}
        for name, (x, group) in self.splits.items():
            out[name] = {
                "identity": retrieval(x, group, centroids(x, group)),
                "nearest_train_reference_cosine": float((x @ self.references.T).max(1).values.mean()),
            }
        out["text_family_accuracy"] = self.text_accuracy(self.text_x)
        return out

    def text_accuracy(self, x: torch.Tensor) -> float | None:
        named = [i for i, f in enumerate(self.text_family) if f is not None]
        if not named:
            return None
        pred = (F.normalize(x[named], dim=-1) @ self.family_cents.T).argmax(1).tolist()
        return float(np.mean([FAMILIES[p] == self.text_family[i] for p, i in zip(pred, named, strict=True)]))

    @torch.no_grad()
    def measure(self, rvq: ResidualVQ, train_inputs: torch.Tensor, train_group: np.ndarray) -> dict:
        rvq.eval()
        out = {}
        for name, (x, group) in self.splits.items():
            q, codes = rvq(x)
            out[name] = {
                "self_cosine": float(F.cosine_similarity(q, x).mean()),
                "nearest_train_reference_cosine": float(
                    (F.normalize(q, dim=-1) @ self.references.T).max(1).values.mean()
                ),
                "identity": retrieval(q, group, centroids(x, group)),
                "codes_used": [int(codes[:, s].unique().numel()) for s in range(rvq.n_q)],
            }
        q, _ = rvq(train_inputs)
        out["train_identity"] = retrieval(q, train_group, self.train_cents)
        qt, _ = rvq(self.text_x)
        out["text_self_cosine"] = float(F.cosine_similarity(qt, self.text_x).mean())
        out["text_family_accuracy"] = self.text_accuracy(qt)
        out["codebook_norm_median"] = [round(float(c.norm(dim=1).median()), 3) for c in rvq.codebooks]
        return out


def read_text(folder: Path) -> tuple[torch.Tensor, list[str | None]]:
    """The prompts' unit CLAP text embeddings and the one family each names (None: none or several)."""
    meta, x = read_features(folder / "clap_text" / "prompts.parquet")
    families = []
    for text in meta.column("text").to_pylist():
        named = [f for f in FAMILIES if f.replace("_", " ") in text.lower()]
        families.append(named[0] if len(named) == 1 else None)
    return unit(x), families


@dataclass(frozen=True)
class Setting:
    """What the simulated training uses: the profile's seed, quantiser size, steps, batch and dropout."""

    seed: int
    n_q: int
    bins: int
    steps: int
    batch: int
    dropout: DropoutSettings


def make_quantiser(init: str, update: str, threshold: float, dim: int, setting: Setting,
                   scheme_x: torch.Tensor, first_batch: torch.Tensor, ev: Evaluation,
                   kmeans_all: dict[str, torch.Tensor]) -> ResidualVQ:
    """A quantiser of one design, initialised (``kmeans_all`` caches the k-means fit on every training
    note, which does not depend on the scheme)."""
    if threshold:
        rvq = ExpiringRVQ(dim, setting.n_q, setting.bins, threshold=threshold, seed=setting.seed)
    else:
        rvq = ResidualVQ(dim, setting.n_q, setting.bins, ema=update == "ema")
    gen = torch.Generator().manual_seed(setting.seed)
    if init == "pick":
        pick_init(rvq, scheme_x, gen)
    elif init == "scheme":
        rvq.initialize(scheme_x, gen)
    elif init == "first_batch":
        rvq.initialize(first_batch, gen, iters=AUDIOCRAFT_KMEANS_ITERS)
    else:
        if "all" not in kmeans_all:
            rvq.initialize(ev.train_x, gen)
            kmeans_all["all"] = rvq.codebooks.clone()
        rvq.codebooks.copy_(kmeans_all["all"])
        rvq.embed_sum.copy_(kmeans_all["all"])
        rvq.initialized.fill_(True)
    return rvq


def scheme_results(scheme: str, train: SplitData, reference: pd.DataFrame, ev: Evaluation, setting: Setting,
                   record: dict, kmeans_all: dict[str, torch.Tensor]) -> None:
    """Every design under one scheme: its simulated training and measures, appended to ``record``."""
    seed = setting.seed
    split = replace(train, pairing=make_pairing(scheme, train.notes, reference))
    init_rows = split.pairing.sample(np.arange(len(split)), np.random.default_rng([seed, 2]))
    scheme_x = ev.train_x[torch.from_numpy(init_rows)]  # the draws that initialised it before
    distinct = np.unique(init_rows)
    record["raw"].setdefault("train_identity", {})[scheme] = retrieval(
        ev.train_x[torch.from_numpy(distinct)], ev.train_group[distinct], ev.train_cents
    )
    claps, kept = simulated_batches(split, seed, setting.steps, setting.batch, setting.dropout)
    for name, (init, update, threshold) in DESIGNS.items():
        t0 = time.perf_counter()
        rvq = make_quantiser(init, update, threshold, ev.train_x.shape[1], setting, scheme_x,
                             claps[0][kept[0]], ev, kmeans_all)
        rvq.train()
        if update == "ema":
            for s in range(setting.steps):
                rvq(claps[s], update=kept[s])
        metrics = ev.measure(rvq, ev.train_x[torch.from_numpy(distinct)], ev.train_group[distinct])
        record["results"].append({"scheme": scheme, "design": name, **metrics,
                                  "wall_s": round(time.perf_counter() - t0, 2)})
        t = metrics["test"]
        print(f"{scheme:8s} {name:54s} self {t['self_cosine']:.3f}"
              f" ref {t['nearest_train_reference_cosine']:.3f}"
              f" id {t['identity']:.3f} train-id {metrics['train_identity']:.3f}"
              f" norms {metrics['codebook_norm_median']} used {t['codes_used']}", flush=True)


def sweeps(ev: Evaluation, setting: Setting) -> list[dict]:
    """Scheme-independent sweeps of the chosen design (frozen k-means on every training note): Lloyd
    iterations, and stages x codes."""
    out = []
    n_q, bins = setting.n_q, setting.bins
    for sweep_q, sweep_bins, iters in [(n_q, bins, 0), (n_q, bins, 10), (n_q, bins, 50), (8, 256, 20),
                                       (12, 256, 20), (12, 1024, 20)]:
        t0 = time.perf_counter()
        rvq = ResidualVQ(ev.train_x.shape[1], sweep_q, sweep_bins)
        rvq.initialize(ev.train_x, torch.Generator().manual_seed(setting.seed), iters=iters)
        metrics = ev.measure(rvq, ev.train_x, ev.train_group)
        out.append({"n_q": sweep_q, "bins": sweep_bins, "kmeans_iters": iters, **metrics,
                    "wall_s": round(time.perf_counter() - t0, 2)})
        t = metrics["test"]
        print(f"frozen k-means(all) {sweep_q} x {sweep_bins}, {iters} iters: self {t['self_cosine']:.3f} "
              f"id {t['identity']:.3f} valid id {metrics['valid']['identity']:.3f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    params = load_profile(args.profile)
    lm, tr = params["lm"], params["train"]
    dropout = DropoutSettings(float(tr["cfg_dropout"]), float(tr["attribute_dropout"]))
    setting = Setting(int(params["seed"]), int(lm["clap_n_q"]), int(lm["clap_bins"]), int(tr["steps"]),
                      int(tr["batch_size"]), dropout)
    folder = REPO_ROOT / "data" / args.profile / "features"
    train = load_split(
        "train", folder / "codes" / "train.parquet", folder / "clap_audio" / "train.parquet", "baseline",
        None, int(params["codec"]["n_codebooks"]), int(params["codec"]["codebook_size"]),
    )
    reference = pd.read_parquet(folder / "reference" / "train.parquet")
    ev = Evaluation(folder, train, read_text(folder))
    record = {
        "profile": args.profile,
        "setting": {
            "train_notes": len(train), "train_instruments": int(ev.train_group.max()) + 1,
            "test_notes": len(ev.splits["test"][1]), "valid_notes": len(ev.splits["valid"][1]),
            "clap_dim": ev.train_x.shape[1], "n_q": setting.n_q, "bins": setting.bins, "steps": setting.steps,
            "batch_size": setting.batch, "cfg_dropout": setting.dropout.cfg, "decay": 0.99,
            "seed": setting.seed, "threads": 1,
        },
        "designs": {
            k: {"init": v[0], "update": v[1], "dead_code_threshold": v[2]} for k, v in DESIGNS.items()
        },
        "raw": ev.ceilings(),
        "results": [],
    }
    kmeans_all: dict[str, torch.Tensor] = {}  # the scheme-independent initialisation, fitted once
    for scheme in SCHEMES:
        scheme_results(scheme, train, reference, ev, setting, record, kmeans_all)
    record["sweeps"] = sweeps(ev, setting)
    record.update(wall_s=round(time.perf_counter() - started, 1), commit=git_commit(REPO_ROOT),
                  machine=machine_info(), measured=datetime.now(UTC).isoformat(timespec="seconds"))
    out = REPO_ROOT / "benchmarks" / "results" / f"clap_quantiser_{args.profile}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"raw: {record['raw']}\nwrote {out} in {record['wall_s']} s")

if __name__ == "__main__":
    main()
