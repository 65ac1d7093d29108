"""The training loop: AdamW + warm-up/cosine schedule, per-codebook logging, validation, atomic
checkpoints, exact resume, and DistributedDataParallel under ``torchrun``.

Reproducibility: every random draw of step ``s`` (batch rows, CLAP pairing, condition dropout, MAGNeT
masks) comes from ``numpy.random.default_rng([seed, s])`` drawn for the *global* batch, and each process
takes its slice; model dropout is re-seeded per step. So a run resumed from a checkpoint follows the
uninterrupted run's trajectory exactly (on CPU), and a DDP run sees the same batches as one process.

The trainer's parts live beside it: ``train.distributed`` (process group, device, DDP wrapper),
``train.logs`` (metric rows, curves, progress bar) and ``train.layout`` (where the run's files go,
its fingerprint, resume).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from instrumentgen.codedeps import PACKAGE_DIR, module_files, source_digest
from instrumentgen.lm.checkpoint import FORMAT, check_config, read_checkpoint, save_atomic
from instrumentgen.lm.conditioners import inference_drop
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.losses import LossOutput
from instrumentgen.lm.model import CodecLM
from instrumentgen.lm.objective import objective_of
from instrumentgen.train.data import DropoutSettings, SplitData, load_split, make_batch
from instrumentgen.train.distributed import Distributed, setup_distributed, wrap_model
from instrumentgen.train.layout import RunFolder, SplitFiles, TrainRun, fingerprint, restore
from instrumentgen.train.logs import RunLogs, loss_totals, metric_row
from instrumentgen.train.schedule import warmup_cosine
from instrumentgen.train.settings import uses_bf16
from instrumentgen.variants import get_variant

__all__ = ["Distributed", "SplitFiles", "TrainRun", "Trainer", "batch_rows", "setup_distributed", "train"]

log = logging.getLogger(__name__)


def training_code_digest() -> str:
    """SHA-256 over the package modules that training runs (``train.loop`` and what it imports)."""
    return source_digest(module_files("train/loop.py", package_dir=PACKAGE_DIR))


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


def load_splits(run: TrainRun, config: LMConfig, scheme: str) -> tuple[SplitData, SplitData]:
    """The train and valid splits, checked against the model's size (frames, CLAP dimension)."""
    k, card = config.n_codebooks, config.codebook_size
    splits = tuple(
        load_split(name, files.codes, files.clap, scheme, files.reference, k, card)
        for name, files in (("train", run.train), ("valid", run.valid))
    )
    for split in splits:
        if split.n_frames > config.max_frames:
            raise ValueError(
                f"{split.name} codes have {split.n_frames} frames, more than lm.max_frames = "
                f"{config.max_frames}"
            )
        if split.clap.shape[1] != config.clap_dim:
            raise ValueError(
                f"{split.name} CLAP embeddings are {split.clap.shape[1]}-d, "
                f"lm.clap_dim is {config.clap_dim}"
            )
    return splits


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
        self.train_data, self.valid_data = load_splits(run, self.config, self.variant.scheme)
        self.fingerprint = fingerprint(run, self.config, training_code_digest())
        self.folder = RunFolder.of(run, self.fingerprint)
        self.cuda = self.dist.device.type == "cuda"
        self.bf16 = uses_bf16(run.settings.precision, self.dist.device.type)
        compile_opt = str(run.settings.compile).lower()
        self.compile = compile_opt == "true" or (compile_opt == "auto" and self.cuda)

    # ------------------------------------------------------------------ setup
    def build(self) -> None:
        torch.manual_seed(self.run_spec.seed)
        self.model = CodecLM(self.config)
        self.model.to(self.dist.device)
        last = self.folder.last
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
        self.step, self.elapsed = 0, 0.0
        if last.exists():
            state = read_checkpoint(last)
            check_config(state, self.config, last)
            self.step, self.elapsed = restore(state, self.model, self.optimizer, self.scheduler)
            if self.dist.main:
                log.info("resuming %s from %s at step %d", self.run_spec.variant, last, self.step)
        if self.compile:
            self.model.compile_backbone()
        self.forward = wrap_model(self.model, self.dist)

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
                totals += loss_totals(out)
        self.dist.all_sum(totals)
        return metric_row(self.objective, totals[0], totals[1], totals[2])

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
                self.folder.last,
            )
        self.dist.barrier()

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        self.build()
        s = self.settings
        logs = RunLogs(self, self.folder.path)
        started, start_step = time.perf_counter(), self.step
        while self.step < s.steps:
            out, grad_norm = self.train_step()
            logs.step(out, grad_norm)
            last = self.step == s.steps
            if self.step % s.log_every == 0 or last:
                logs.train_row(self.step, self.lr)
            if self.step % s.valid_every == 0 or last:
                logs.valid_row(self.step, self.validate())
            if self.step % s.checkpoint_every == 0 or last:
                self.elapsed += time.perf_counter() - started
                started = time.perf_counter()
                self.save_checkpoint()
        logs.close()
        self.elapsed += time.perf_counter() - started
        summary = self.finish(start_step)
        self.dist.barrier()
        return summary

    def finish(self, start_step: int) -> dict[str, Any]:
        """Write the model file and copy the curves and a summary to the results folder."""
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
            "final_valid": self.folder.final_valid(),
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
            self.folder.publish(self.run_spec.results_dir, summary)
        return summary


def train(run: TrainRun) -> dict[str, Any]:
    """Train (or resume) one variant; returns its summary."""
    return Trainer(run).run()
