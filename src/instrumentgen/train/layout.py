"""Where a training run's files go, and what its checkpoint holds to resume.

A run reads the cached features of two splits (:class:`SplitFiles`) and writes:

- ``<checkpoint_root>/<fingerprint>/``: its :class:`RunFolder`, ``last.pt`` (model, optimiser and
  scheduler state, the step reached) and the curves ``train.csv`` and ``valid.csv`` (``train.logs``).
  The folder is named by :func:`fingerprint`, the hash of everything that determines the weights: a run
  with the same fingerprint resumes from ``last.pt``, any other starts afresh beside it.
- ``model_out``: the final model file (weights, config, settings), what generation loads;
- ``results_dir``: copies of the curves and ``summary.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from instrumentgen.atomic import write_json_atomic
from instrumentgen.download import sha256_file
from instrumentgen.lm.checkpoint import FORMAT
from instrumentgen.lm.config import LMConfig
from instrumentgen.train.settings import TrainSettings

CURVES = ("train.csv", "valid.csv")


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


def fingerprint(run: TrainRun, config: LMConfig, code: str) -> str:
    """Hash of everything that determines the weights: variant, model, trajectory settings, seed, data
    and the training code's digest ``code`` (a fixed bug never resumes from weights the buggy code
    produced)."""
    files = [run.train.codes, run.train.clap, run.valid.codes, run.valid.clap]
    files += [p for p in (run.train.reference, run.valid.reference) if p is not None]
    record = {
        "format": FORMAT,
        "variant": run.variant,
        "config": config.to_dict(),
        "settings": run.settings.trajectory(),
        "seed": run.seed,
        "data": {str(p): sha256_file(p) for p in files},
        "code": code,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunFolder:
    """The checkpoint folder of one run: ``last.pt`` and the curves."""

    path: Path

    @classmethod
    def of(cls, run: TrainRun, fingerprint: str) -> RunFolder:
        return cls(run.checkpoint_root / fingerprint)

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    def final_valid(self) -> dict[str, float]:
        """The metrics of the last ``valid.csv`` row (empty without one)."""
        with open(self.path / "valid.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return {k: float(v) for k, v in rows[-1].items() if k != "step"} if rows else {}

    def publish(self, results_dir: Path, summary: dict[str, Any]) -> None:
        """Copy the curves to ``results_dir`` (each replaced at once) and write its ``summary.json``."""
        results_dir.mkdir(parents=True, exist_ok=True)
        for name in CURVES:
            shutil.copyfile(self.path / name, results_dir / f".{name}.tmp")
            os.replace(results_dir / f".{name}.tmp", results_dir / name)
        write_json_atomic(results_dir / "summary.json", summary)


def restore(
    state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, float]:
    """Load a ``last.pt`` state into the run's objects; returns its step and the training time so far."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"]), float(state.get("elapsed_s", 0.0))
