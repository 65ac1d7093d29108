"""The training loop: AdamW + warm-up/cosine schedule, per-codebook logging, validation, atomic
checkpoints, exact resume, and DistributedDataParallel under ``torchrun``.

Reproducibility: every random draw of step ``s`` (batch rows, CLAP pairing, condition dropout, MAGNeT
masks) comes from ``numpy.random.default_rng([seed, s])`` drawn for the *global* batch, and each process
takes its slice; model dropout is re-seeded per step. So a run resumed from a checkpoint follows the
uninterrupted run's trajectory exactly (on CPU), and a DDP run sees the same batches as one process.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from instrumentgen.atomic import write_json_atomic, write_text_atomic
from instrumentgen.codedeps import PACKAGE_DIR, module_files, source_digest
from instrumentgen.download import sha256_file
from instrumentgen.lm.conditioners import inference_drop
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.losses import LossOutput
from instrumentgen.lm.model import CodecLM
from instrumentgen.lm.objective import objective_of
from instrumentgen.progress import progress_bar
from instrumentgen.train.checkpoint import FORMAT, check_config, read_checkpoint, save_atomic
from instrumentgen.train.data import DropoutSettings, SplitData, load_split, make_batch
from instrumentgen.train.schedule import warmup_cosine
from instrumentgen.train.settings import TrainSettings
from instrumentgen.train.variants import get_variant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitFiles:
    """The cached features of one split: codes, CLAP audio embeddings, reference notes (fixed scheme)."""

    codes: Path
    clap: Path
    reference: Path | None = None


@dataclass
class TrainRun:
    """One training run: what to train, on which files, and where its outputs go.

    ``model_out``: final model file; ``results_dir``: ``train.csv``, ``valid.csv``, ``summary.json``;
    ``checkpoint_root``: resumable state, under a subfolder named by the run's fingerprint.
    """

    variant: str
    lm: dict[str, Any]
    settings: TrainSettings
    seed: int
    train: SplitFiles
    valid: SplitFiles
    model_out: Path
    results_dir: Path
    checkpoint_root: Path
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor


def setup_distributed() -> Distributed:
    """Join the process group under ``torchrun`` (``WORLD_SIZE > 1``): NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Distributed(rank, world, device)


def training_code_digest() -> str:
    """SHA-256 over the package modules that training runs (``train.loop`` and what it imports)."""
    return source_digest(module_files("train/loop.py", package_dir=PACKAGE_DIR))


def fingerprint(run: TrainRun, config: LMConfig) -> str:
    """Hash of everything that determines the weights: variant, model, trajectory settings, seed, data
    and the training code (a fixed bug never resumes from weights the buggy code produced)."""
    files = [run.train.codes, run.train.clap, run.valid.codes, run.valid.clap]
    files += [p for p in (run.train.reference, run.valid.reference) if p is not None]
    record = {
        "format": FORMAT,
        "variant": run.variant,
        "config": config.to_dict(),
        "settings": run.settings.trajectory(),
        "seed": run.seed,
        "data": {str(p): sha256_file(p) for p in files},
        "code": training_code_digest(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def batch_rows(step: int, batch: int, n: int, seed: int) -> np.ndarray:
    """Rows of the global batch at ``step``: consecutive positions of an endless stream made of seeded
    per-epoch permutations of ``n`` notes (every note once per epoch)."""
    positions = np.arange(step * batch, (step + 1) * batch, dtype=np.int64)
    epochs, offsets = positions // n, positions % n
    rows = np.empty(batch, dtype=np.int64)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([seed, int(epoch), 1]).permutation(n)
        sel = epochs == epoch
        rows[sel] = perm[offsets[sel]]
    return rows


class CsvLog:
    """A metrics CSV in the checkpoint folder; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: Path, columns: list[str], resume_step: int):
        self.path, self.columns = path, columns
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        else:
            rows = []
        lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
        write_text_atomic(path, "\n".join(lines) + "\n")

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(",".join(_fmt(row.get(c, "")) for c in self.columns) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Trainer:
    """Runs one :class:`TrainRun`; :meth:`run` returns the summary written to ``summary.json``."""

    def __init__(self, run: TrainRun):
        self.run_spec = run
        self.settings = run.settings
        self.variant = get_variant(run.variant)
        self.dist = setup_distributed()
        if run.settings.threads > 0:
            torch.set_num_threads(run.settings.threads)
        if run.settings.batch_size % self.dist.world:
            raise ValueError(
                f"train.batch_size {run.settings.batch_size} is not divisible by "
                f"the {self.dist.world} processes"
            )
        self.config = LMConfig.from_dict({**run.lm, "objective": self.variant.objective})
        self.objective = objective_of(self.config)
        k, card = self.config.n_codebooks, self.config.codebook_size
        scheme = self.variant.scheme
        self.train_data = load_split(
            "train", run.train.codes, run.train.clap, scheme, run.train.reference, k, card
        )
        self.valid_data = load_split(
            "valid", run.valid.codes, run.valid.clap, scheme, run.valid.reference, k, card
        )
        for split in (self.train_data, self.valid_data):
            if split.n_frames > self.config.max_frames:
                raise ValueError(
                    f"{split.name} codes have {split.n_frames} frames, more than lm.max_frames = "
                    f"{self.config.max_frames}"
                )
            if split.clap.shape[1] != self.config.clap_dim:
                raise ValueError(
                    f"{split.name} CLAP embeddings are {split.clap.shape[1]}-d, "
                    f"lm.clap_dim is {self.config.clap_dim}"
                )
        self.fingerprint = fingerprint(run, self.config)
        self.ckpt_dir = run.checkpoint_root / self.fingerprint
        self.cuda = self.dist.device.type == "cuda"
        precision = run.settings.precision
        self.bf16 = precision == "bf16" or (precision == "auto" and self.cuda)
        compile_opt = str(run.settings.compile).lower()
        self.compile = compile_opt == "true" or (compile_opt == "auto" and self.cuda)

    # ------------------------------------------------------------------ setup
    def build(self) -> None:
        torch.manual_seed(self.run_spec.seed)
        self.model = CodecLM(self.config)
        self.model.to(self.dist.device)
        last = self.ckpt_dir / "last.pt"
        if not last.exists():  # a resumed run loads the quantiser's codebooks with the weights
            # Fitted on every training note's own embedding, whatever the variant's pairing (the fixed
            # scheme's 1 embedding per instrument collapses it: lm.conditioners.ResidualVQ).
            gen = torch.Generator().manual_seed(self.run_spec.seed)
            self.model.conditions.initialize_clap(self.train_data.clap.to(self.dist.device), gen)
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        s = self.settings
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=s.lr,
            betas=s.betas,
            fused=self.cuda,
        )
        self.scheduler = warmup_cosine(self.optimizer, s.warmup_steps, s.steps, s.min_lr_ratio)
        self.step = 0
        if last.exists():
            state = read_checkpoint(last)
            check_config(state, self.config, last)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.step = int(state["step"])
            self.elapsed = float(state.get("elapsed_s", 0.0))
            if self.dist.main:
                log.info("resuming %s from %s at step %d", self.run_spec.variant, last, self.step)
        else:
            self.elapsed = 0.0
        self.forward = self.model
        if self.compile:
            self.model.compile_backbone()
        if self.dist.world > 1:
            # DDP broadcasts parameters, not these buffers: rank 0's quantiser goes to every rank once
            # (k-means on a GPU may round differently per process); later EMA statistics, if any, are
            # all-reduced inside its update, so the buffers stay identical without a broadcast per step.
            for buffer in self.model.conditions.rvq.buffers():
                if buffer.is_floating_point():
                    dist.broadcast(buffer, src=0)
            self.forward = DistributedDataParallel(
                self.model,
                device_ids=[self.dist.device.index] if self.cuda else None,
                broadcast_buffers=False,
            )

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.dist.device.type, dtype=torch.bfloat16)
        return nullcontext()

    # ------------------------------------------------------------------ steps
    def local_rows(self, batch: int) -> np.ndarray:
        """Positions of this process's share of a global batch of ``batch`` rows (equal shares in training,
        where the batch size is divisible; validation's last batch may be uneven)."""
        return np.array_split(np.arange(batch), self.dist.world)[self.dist.rank]

    def loss(
        self, split: SplitData, rows: np.ndarray, rng: np.random.Generator, train: bool,
        inference: bool = False,
    ) -> LossOutput | None:
        """Loss on this process's share of the global batch ``rows`` (every random draw is made for the
        whole batch, so the result does not depend on the number of processes). ``None`` when the share
        is empty. Training runs through the DDP wrapper (gradient averaging); validation through the bare
        model (no collective calls, so processes may see different numbers of batches). ``inference``
        (validation only): the conditions of generation, family and source replaced by their nulls."""
        dropout = (
            DropoutSettings(self.settings.cfg_dropout, self.settings.attribute_dropout) if train else None
        )
        codes, cond = make_batch(split, rows, rng, dropout)
        if inference:
            cond = cond.with_drop(inference_drop(len(rows)))
        masks = self.objective.training_masks(
            len(rows), self.config, split.n_frames, rng, self.settings.span_length
        )
        local = torch.from_numpy(self.local_rows(len(rows)))
        if len(local) == 0:
            return None
        codes = codes[local].to(self.dist.device, non_blocking=True)
        cond = cond.index(local).to(self.dist.device)
        model = self.forward if train else self.model
        share, normaliser = None, None
        if masks is not None:
            share = masks.rows(local)
            # Normalise by the whole batch's loss positions (known here, all masks are drawn globally):
            # DDP averages gradients over processes, so each share divides by count / processes.
            normaliser = masks.loss_positions / (self.dist.world if train else 1)
        with self.autocast():
            return self.objective.loss(model, self.config, codes, cond, share, normaliser)

    def train_step(self) -> tuple[LossOutput, float]:
        seed, step = self.run_spec.seed, self.step
        rng = np.random.default_rng([seed, step])
        rows = batch_rows(step, self.settings.batch_size, len(self.train_data), seed)
        torch.manual_seed(seed * 1_000_003 + step)  # model dropout
        self.model.train()
        out = self.loss(self.train_data, rows, rng, train=True)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.lr = self.scheduler.get_last_lr()[0]  # the rate this step used
        self.scheduler.step()
        self.step += 1
        return out, float(grad_norm)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Per-codebook CE and accuracy on a fixed subset of the valid split (no dropout, fixed draws), with
        every condition (``loss``, ``ce_k``, ``acc_k``) and under the conditions of inference, family and
        source nulled (``*_inference``: what generation sees; the first is optimistic)."""
        row = self._validate(inference=False)
        row.update({f"{k}_inference": v for k, v in self._validate(inference=True).items()})
        return row

    def _validate(self, inference: bool) -> dict[str, float]:
        self.model.eval()
        n = min(len(self.valid_data), self.settings.valid_max_notes)
        order = np.random.default_rng([self.run_spec.seed, 3]).permutation(len(self.valid_data))[:n]
        rng = np.random.default_rng([self.run_spec.seed, 4])  # the same draws for both condition sets
        batch = self.settings.batch_size
        k = self.config.n_codebooks
        totals = torch.zeros(3, k, device=self.dist.device)
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            out = self.loss(self.valid_data, rows, rng, train=False, inference=inference)
            if out is not None:
                totals += torch.stack([out.ce_sum.float(), out.correct, out.count])
        self.dist.all_sum(totals)
        return self.metrics(totals[0], totals[1], totals[2])

    def metrics(self, ce_sum: torch.Tensor, correct: torch.Tensor, count: torch.Tensor) -> dict[str, float]:
        ce = (ce_sum / count.clamp(min=1)).tolist()
        acc = (correct / count.clamp(min=1)).tolist()
        row: dict[str, float] = {"loss": self.objective.reduce(ce_sum, count)}
        for i in range(len(ce)):
            row[f"ce_{i}"] = ce[i] if count[i] > 0 else float("nan")
            row[f"acc_{i}"] = acc[i] if count[i] > 0 else float("nan")
        return row

    def save_checkpoint(self) -> None:
        if self.dist.main:
            save_atomic(
                {
                    "format": FORMAT,
                    "config": self.config.to_dict(),
                    "variant": self.run_spec.variant,
                    "step": self.step,
                    "elapsed_s": self.elapsed,
                    "fingerprint": self.fingerprint,
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                },
                self.ckpt_dir / "last.pt",
            )
        self.dist.barrier()

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        self.build()
        s, k = self.settings, self.config.n_codebooks
        metric_cols = ["loss"] + [f"{m}_{i}" for m in ("ce", "acc") for i in range(k)]
        if self.dist.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            train_log = CsvLog(
                self.ckpt_dir / "train.csv", ["step", "lr", *metric_cols, "grad_norm"], self.step
            )
            valid_cols = [*metric_cols, *(f"{c}_inference" for c in metric_cols)]
            valid_log = CsvLog(self.ckpt_dir / "valid.csv", ["step", *valid_cols], self.step)
            log.info(
                "training %s (%s, %s): %s parameters, %d train / %d valid notes, %d frames, device %s x%d, "
                "bf16 %s, compile %s, checkpoints in %s",
                self.run_spec.variant,
                self.variant.scheme,
                self.objective.label,
                self.model.count_parameters(),
                len(self.train_data),
                len(self.valid_data),
                self.train_data.n_frames,
                self.dist.device,
                self.dist.world,
                self.bf16,
                self.compile,
                self.ckpt_dir,
            )
        acc = torch.zeros(3, k, device=self.dist.device)
        grad_norms: list[float] = []
        started, start_step = time.perf_counter(), self.step
        bar = progress_bar(
            total=s.steps, initial=self.step, disable=not self.dist.main, desc=self.run_spec.variant
        )
        while self.step < s.steps:
            out, grad_norm = self.train_step()
            acc += torch.stack([out.ce_sum.float(), out.correct, out.count])
            grad_norms.append(grad_norm)
            bar.update(1)
            last = self.step == s.steps
            if self.step % s.log_every == 0 or last:
                self.dist.all_sum(acc)
                if self.dist.main:
                    row = {"step": self.step, "lr": self.lr, **self.metrics(*acc)}
                    row["grad_norm"] = float(np.mean(grad_norms))
                    train_log.write(row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
                acc.zero_()
                grad_norms.clear()
            if self.step % s.valid_every == 0 or last:
                row = self.validate()
                if self.dist.main:
                    valid_log.write({"step": self.step, **row})
                    log.info("step %d valid loss %.4f (inference conditions %.4f)", self.step, row["loss"],
                             row["loss_inference"])
            if self.step % s.checkpoint_every == 0 or last:
                self.elapsed += time.perf_counter() - started
                started = time.perf_counter()
                self.save_checkpoint()
        bar.close()
        self.elapsed += time.perf_counter() - started
        summary = self.finish(start_step)
        self.dist.barrier()
        return summary

    def finish(self, start_step: int) -> dict[str, Any]:
        """Write the model file and copy the curves and a summary to the results folder."""
        final_valid = {}
        with open(self.ckpt_dir / "valid.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        if rows:
            final_valid = {k: float(v) for k, v in rows[-1].items() if k != "step"}
        summary = {
            "variant": self.run_spec.variant,
            "scheme": self.variant.scheme,
            "objective": self.config.objective,
            "steps": self.step,
            "resumed_from_step": start_step,
            "processes": self.dist.world,
            "device": str(self.dist.device),
            "bf16": self.bf16,
            "compile": self.compile,
            "parameters": self.model.count_parameters(),
            "train_notes": len(self.train_data),
            "valid_notes": len(self.valid_data),
            "frames": self.train_data.n_frames,
            "wall_s_total": round(self.elapsed, 2),
            "final_valid": final_valid,
            "fingerprint": self.fingerprint,
            **self.run_spec.extra,
        }
        if self.dist.main:
            save_atomic(
                {
                    "format": FORMAT,
                    "config": self.config.to_dict(),
                    "variant": self.run_spec.variant,
                    "scheme": self.variant.scheme,
                    "step": self.step,
                    "settings": self.settings.to_dict(),
                    "seed": self.run_spec.seed,
                    "fingerprint": self.fingerprint,
                    "model": self.model.state_dict(),
                },
                self.run_spec.model_out,
            )
            out = self.run_spec.results_dir
            out.mkdir(parents=True, exist_ok=True)
            for name in ("train.csv", "valid.csv"):
                shutil.copyfile(self.ckpt_dir / name, out / f".{name}.tmp")
                os.replace(out / f".{name}.tmp", out / name)
            write_json_atomic(out / "summary.json", summary)
        return summary


def train(run: TrainRun) -> dict[str, Any]:
    """Train (or resume) one variant; returns its summary."""
    return Trainer(run).run()
