"""The ci profile's DAG up to a training job through the Slurm profile, against a real one-node Slurm
that the test starts (tests/slurm_cluster.py) and stops: every job goes through Slurm (its record in the
cluster's job-completion log), the training job gets its GPU through Slurm's ``gpu`` GRES, and the
outputs equal a local run's. Then two-process DDP training inside one Slurm allocation (two GPUs asked
for, ``torchrun`` on the CPU with gloo) gives the same weights as one process.

Marked ``slurm`` (and ``e2e``): ``pytest -m "not slurm"`` leaves it out of a fast inner loop; ``make
test`` runs it (it installs Debian's slurm-wlm and munge as root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from slurm_cluster import slurm_cluster

from instrumentgen.lm.checkpoint import read_checkpoint
from instrumentgen.workspace import make_workspace, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]
TARGET = "data/ci/lm/baseline.pt"  # the data and features phases and one training job
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/")


def memory_mb() -> int:
    """Most of this machine's memory (the node's RealMemory must not exceed it)."""
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    return int(total_kb / 1024 * 0.8)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with slurm_cluster(tmp_path_factory.mktemp("slurm") / "cluster", memory_mb=memory_mb()) as running:
        yield running


def through_slurm(cluster, ws: Path, *targets: str):
    """The Slurm profile with the ci parameters; what differs from a production cluster: squeue for job
    states (no slurmdbd), quick status checks, this node's CPUs, small memory and time requests."""
    return snakemake(
        ws, *targets, "--profile", "workflow/profiles/slurm",
        "--configfile", "workflow/profiles/ci/params.yaml",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--max-threads", str(os.cpu_count()), "--default-resources", "mem_mb=1000", "runtime=30",
        env=cluster.env(), timeout=1500)


def submitted(proc) -> dict[int, str]:
    """Slurm job id → rule, from Snakemake's log of a run."""
    return {int(job): rule for job, rule in SUBMITTED.findall(proc.stdout + proc.stderr)}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[int, str]]:
    root = tmp_path_factory.mktemp("runs")
    local = make_workspace(root / "local")
    snakemake(local, "--cores", "2", TARGET, profile="ci")
    ws = make_workspace(root / "slurm")
    proc = through_slurm(cluster, ws, TARGET)
    planned = int(re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, re.M).group(1))
    jobs = submitted(proc)
    assert len(jobs) == planned  # every job of the plan was submitted (the target needs no local rule)
    return local, ws, jobs


def test_every_job_ran_through_slurm(cluster, runs):
    _, _, jobs = runs
    assert {"synthesize", "resample", "encode_codes", "embed_audio", "train_variant"} <= set(jobs.values())
    recorded = {int(r["JobId"]): r for r in cluster.completed_jobs()}
    for job, rule in jobs.items():
        assert recorded[job]["JobState"] == "COMPLETED", (rule, recorded[job])
    train = next(job for job, rule in jobs.items() if rule == "train_variant")
    assert cluster.job_gpus(train) == 1  # its gpu=1 asked Slurm for one GPU


def test_outputs_equal_a_local_run(runs):
    local, ws, _ = runs
    stores = sorted(p.relative_to(local) for p in (local / "data/ci/resampled").glob("*.npy"))
    assert stores and stores == sorted(p.relative_to(ws) for p in (ws / "data/ci/resampled").glob("*.npy"))
    for rel in stores:  # the splits training needs
        np.testing.assert_array_equal(np.load(ws / rel), np.load(local / rel))
    for cache in sorted((local / "data/ci/features").rglob("*.parquet")):
        rel = cache.relative_to(local)
        pd.testing.assert_frame_equal(pd.read_parquet(ws / rel), pd.read_parquet(cache), obj=str(rel))
    a, b = weights(local / TARGET), weights(ws / TARGET)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
    valid = "results/ci/train/baseline/valid.csv"
    pd.testing.assert_frame_equal(pd.read_csv(ws / valid).drop(columns="wall_s", errors="ignore"),
                                  pd.read_csv(local / valid).drop(columns="wall_s", errors="ignore"))


def test_two_process_ddp_in_one_allocation_matches_one_process(cluster, runs):
    local, ws, _ = runs
    overlay = ws / "workflow/profiles/ci/params.yaml"
    params = yaml.safe_load(overlay.read_text())
    params["train"]["processes"] = 2
    overlay.write_text(yaml.safe_dump(params))
    jobs = submitted(through_slurm(cluster, ws, TARGET))
    assert list(jobs.values()) == ["train_variant"]  # only the training reruns, as one Slurm job
    record = next(r for r in cluster.completed_jobs() if int(r["JobId"]) in jobs)
    assert record["JobState"] == "COMPLETED" and cluster.job_gpus(int(record["JobId"])) == 2
    summary = yaml.safe_load((ws / "results/ci/train/baseline/summary.json").read_text())
    assert summary["processes"] == 2
    a, b = weights(local / TARGET), weights(ws / TARGET)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
