"""Where jobs run: how many GPUs a local run may use at once, and whether a Slurm cluster can run the
jobs it is about to be given.

- A bare ``snakemake --cores all`` knows nothing of GPUs: without a limit on the rules' ``gpu``
  resource, every GPU job (encoders, generation, training) would start at once on ``cuda:0``.
  :func:`local_gpu_limit` is the limit a local run gets unless ``--resources gpu=N`` says otherwise:
  the GPUs present (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``), at least 1 (a machine without
  one runs the GPU jobs on its CPU, one at a time).
- Before the Slurm executor submits anything, :func:`check_slurm` asks the cluster (``sinfo``) and
  stops with what to install or set when it does not answer, when rules ask for GPUs that no node has,
  or for more threads than its largest node has CPUs (the job would wait in the queue forever).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping

SINFO_TIMEOUT_S = 30
PROFILE = "workflow/profiles/slurm/config.yaml"


class ClusterError(RuntimeError):
    """The cluster cannot run the workflow's jobs; the message says what to install or set."""


def count_gpus(env: Mapping[str, str] = os.environ, run: Callable = subprocess.run,
               which: Callable = shutil.which) -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (``""`` or ``-1``: none), else the
    ``GPU n:`` lines of ``nvidia-smi -L`` (0 without a driver)."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d for d in visible.split(",") if d.strip()]
        return 0 if not devices or devices[0].strip() == "-1" else len(devices)
    if which("nvidia-smi") is None:
        return 0
    try:
        proc = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if proc.returncode:
        return 0
    return sum(1 for line in proc.stdout.splitlines() if re.match(r"GPU \d+:", line))


def local_gpu_limit(gpus: int) -> int:
    """GPU jobs a local run may hold at once: one per GPU, at least one."""
    return max(1, gpus)


def limit_local_gpu_jobs(workflow, gpus: int | None = None) -> int | None:
    """Give a local Snakemake run (the main process, no ``--jobs`` for a cluster) without a ``gpu``
    limit of its own the limit :func:`local_gpu_limit` of the GPUs present (``gpus``, counted when
    None), and say so on stderr; returns the limit set, or None where the run keeps its own."""
    local = workflow.resource_settings.nodes is None and workflow.is_main_process
    if "gpu" in workflow.global_resources or not local:
        return None
    gpus = count_gpus() if gpus is None else gpus
    workflow.global_resources["gpu"] = limit = local_gpu_limit(gpus)
    print(f"instrumentgen: GPU jobs at most {limit} at a time ({gpus} GPUs found; --resources gpu=N sets "
          "another limit)", file=sys.stderr)
    return limit


def node_gpus(gres: str) -> int:
    """GPUs in a node's ``sinfo %G`` field: ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``gpu:2,nic:1``;
    ``(null)`` is 0."""
    total = 0
    for entry in gres.split(","):
        entry = re.sub(r"\(.*?\)", "", entry).strip()
        parts = entry.split(":")
        if parts[0] == "gpu":
            total += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return total


def rule_resources(workflow, name: str, cap: int | None = None) -> dict[str, int]:
    """Rule → its resource ``name`` (threads: ``_cores``) where that is a number, at most ``cap``; rules
    whose value is computed per job are left out."""
    out = {}
    for rule in workflow.rules:
        value = getattr(rule.resources.get(name), "value", None)
        if isinstance(value, int) and not isinstance(value, bool):
            out[rule.name] = min(value, cap) if cap else value
    return out


def check_slurm_run(workflow, run: Callable = subprocess.run, which: Callable = shutil.which) -> None:
    """:func:`check_slurm` for the rules of a Snakemake ``workflow`` run by the Slurm executor (threads at
    most ``--max-threads``); nothing for other executors."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    threads = rule_resources(workflow, "_cores", workflow.resource_settings.max_threads)
    check_slurm(rule_resources(workflow, "gpu"), threads, run, which)


def check_slurm(gpu_rules: Mapping[str, int], thread_rules: Mapping[str, int], run: Callable = subprocess.run,
                which: Callable = shutil.which) -> tuple[int, int]:
    """Ask the cluster for its nodes' CPUs and GPUs; returns the largest ``(cpus, gpus)`` of a node.

    ``gpu_rules``: rule → GPUs it asks for (rules asking for none may be left out); ``thread_rules``:
    rule → its threads. Raises :class:`ClusterError` when ``sinfo`` is missing or does not answer, when
    a rule asks for more GPUs or threads than any node has."""
    if which("sinfo") is None:
        raise ClusterError("sinfo not found: the Slurm executor needs Slurm's client commands (sbatch, "
                           "squeue, sinfo; Debian package slurm-client) on PATH")
    try:
        proc = run(["sinfo", "--noheader", "--format=%c %G"], capture_output=True, text=True,
                   timeout=SINFO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"Slurm does not answer: sinfo took over {SINFO_TIMEOUT_S} s; is slurmctld "
                           "running, and does SLURM_CONF (or /etc/slurm/slurm.conf) name it?") from None
    if proc.returncode or not proc.stdout.strip():
        raise ClusterError(f"Slurm does not answer: sinfo failed ({proc.stderr.strip() or 'no nodes'}); is "
                           "slurmctld running, and does SLURM_CONF (or /etc/slurm/slurm.conf) name it?")
    nodes = []
    for line in proc.stdout.splitlines():
        cpus, _, gres = line.strip().partition(" ")
        nodes.append((int(re.sub(r"\D.*", "", cpus) or 0), node_gpus(gres)))
    cpus, gpus = max(c for c, _ in nodes), max(g for _, g in nodes)
    wanting = {rule: n for rule, n in gpu_rules.items() if n > gpus}
    if wanting:
        asks = ", ".join(f"{rule} (gpu={n})" for rule, n in sorted(wanting.items()))
        where = "no node offers a 'gpu' GRES" if gpus == 0 else f"its nodes have at most {gpus} GPUs"
        raise ClusterError(
            f"{asks} ask for GPUs, but {where} (sinfo). Give a partition with GPUs (slurm_partition under "
            f"default-resources in {PROFILE}); offline profiles also run on the CPU: --set-resources "
            + " ".join(f"{rule}:gpu=0" for rule in sorted(wanting)))
    greedy = {rule: n for rule, n in thread_rules.items() if n > cpus}
    if greedy:
        asks = ", ".join(f"{rule} ({n} threads)" for rule, n in sorted(greedy.items()))
        raise ClusterError(f"{asks} ask for more CPUs than the largest node has ({cpus}); set "
                           f"max-threads: {cpus} in {PROFILE} (or pass --max-threads {cpus})")
    return cpus, gpus
