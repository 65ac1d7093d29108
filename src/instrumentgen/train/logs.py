"""What a training run reports while it runs: the metric rows (loss, per-codebook CE and accuracy) of
``train.csv`` and ``valid.csv`` in its checkpoint folder, the progress bar, and its log lines.

``train.csv`` gets a row every ``log_every`` steps, averaged over those steps and every process;
``valid.csv`` a row per validation. Only the main process writes; on resume, rows after the checkpoint's
step are dropped (they are written again as the run repeats those steps).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from instrumentgen.atomic import write_text_atomic
from instrumentgen.lm.losses import LossOutput
from instrumentgen.lm.objective import Objective
from instrumentgen.progress import progress_bar

if TYPE_CHECKING:
    from instrumentgen.train.loop import Trainer

log = logging.getLogger(__name__)


def metric_columns(n_codebooks: int) -> list[str]:
    """``loss``, then ``ce_k`` and ``acc_k`` for every codebook ``k``."""
    return ["loss"] + [f"{m}_{i}" for m in ("ce", "acc") for i in range(n_codebooks)]


def metric_row(
    objective: Objective, ce_sum: torch.Tensor, correct: torch.Tensor, count: torch.Tensor
) -> dict[str, float]:
    """The :func:`metric_columns` of summed per-codebook CE, correct predictions and counts ``[K]`` (a
    codebook without a counted position reads NaN)."""
    ce = (ce_sum / count.clamp(min=1)).tolist()
    acc = (correct / count.clamp(min=1)).tolist()
    row: dict[str, float] = {"loss": objective.reduce(ce_sum, count)}
    for i in range(len(ce)):
        row[f"ce_{i}"] = ce[i] if count[i] > 0 else float("nan")
        row[f"acc_{i}"] = acc[i] if count[i] > 0 else float("nan")
    return row


def loss_totals(out: LossOutput) -> torch.Tensor:
    """``[3, K]``: summed CE, correct predictions and counted positions of one loss, to add up."""
    return torch.stack([out.ce_sum.float(), out.correct, out.count])


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


class RunLogs:
    """The curves of one run in ``folder`` (main process only), its progress bar (every process; shown by
    the main one) and the training-step metrics summed since the last ``train.csv`` row."""

    def __init__(self, trainer: Trainer, folder: Path):
        self.trainer = trainer
        self.main = trainer.dist.main
        cols = metric_columns(trainer.config.n_codebooks)
        if self.main:
            folder.mkdir(parents=True, exist_ok=True)
            self.train = CsvLog(folder / "train.csv", ["step", "lr", *cols, "grad_norm"], trainer.step)
            valid_cols = [*cols, *(f"{c}_inference" for c in cols)]
            self.valid = CsvLog(folder / "valid.csv", ["step", *valid_cols], trainer.step)
            log_start(trainer)
        self.totals = torch.zeros(3, trainer.config.n_codebooks, device=trainer.dist.device)
        self.grad_norms: list[float] = []
        self.bar = progress_bar(
            total=trainer.settings.steps, initial=trainer.step, disable=not self.main,
            desc=trainer.run_spec.variant,
        )

    def step(self, out: LossOutput, grad_norm: float) -> None:
        """Add one training step's loss to the sums."""
        self.totals += loss_totals(out)
        self.grad_norms.append(grad_norm)
        self.bar.update(1)

    def train_row(self, step: int, lr: float) -> None:
        """The ``train.csv`` row of the steps since the last one (sums over every process); resets."""
        self.trainer.dist.all_sum(self.totals)
        if self.main:
            row = {"step": step, "lr": lr, **metric_row(self.trainer.objective, *self.totals)}
            row["grad_norm"] = float(np.mean(self.grad_norms))
            self.train.write(row)
            self.bar.set_postfix(loss=f"{row['loss']:.3f}")
        self.totals.zero_()
        self.grad_norms.clear()

    def valid_row(self, step: int, row: dict[str, float]) -> None:
        if self.main:
            self.valid.write({"step": step, **row})
            log.info("step %d valid loss %.4f (inference conditions %.4f)", step, row["loss"],
                     row["loss_inference"])

    def close(self) -> None:
        self.bar.close()


def log_start(trainer: Trainer) -> None:
    """One line: what is trained, on what, where its checkpoints go."""
    log.info(
        "training %s (%s, %s): %s parameters, %d train / %d valid notes, %d frames, device %s x%d, "
        "bf16 %s, compile %s, checkpoints in %s",
        trainer.run_spec.variant,
        trainer.variant.scheme,
        trainer.objective.label,
        trainer.model.count_parameters(),
        len(trainer.train_data),
        len(trainer.valid_data),
        trainer.train_data.n_frames,
        trainer.dist.device,
        trainer.dist.world,
        trainer.bf16,
        trainer.compile,
        trainer.folder.path,
    )
