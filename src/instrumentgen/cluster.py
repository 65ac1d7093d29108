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

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from instrumentgen.checks import is_int

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
        if is_int(value):
            out[rule.name] = min(value, cap) if cap else value
    return out


def check_slurm_run(workflow, run: Callable = subprocess.run, which: Callable = shutil.which) -> None:
    """:func:`check_slurm` for the rules of a Snakemake ``workflow`` run by the Slurm executor (threads at
    most ``--max-threads``; the partition the rules name, when they name one); nothing for other
    executors."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    per_key = {key: rule_resources(workflow, name, workflow.resource_settings.max_threads if key == "threads"
                                   else None)
               for key, name in (("gpu", "gpu"), ("threads", "_cores"), ("mem_mb", "mem_mb"),
                                 ("runtime", "runtime"))}
    requests = {rule.name: {key: values[rule.name] for key, values in per_key.items() if rule.name in values}
                for rule in workflow.rules}
    partitions = {getattr(rule.resources.get("slurm_partition"), "value", None) for rule in workflow.rules}
    partitions.discard(None)
    check_slurm(requests, next(iter(partitions)) if len(partitions) == 1 else None, run, which)


@dataclass(frozen=True)
class Node:
    """What one node (of the partition) offers: CPUs, GPUs, memory (MB), its partition's time limit (min)."""

    cpus: int
    gpus: int
    mem_mb: int
    minutes: float


def slurm_minutes(text: str) -> float:
    """A Slurm time limit (``infinite``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM:SS``) in
    minutes; unlimited is infinity."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return math.inf
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
    except ValueError:  # not a time limit: no limit known
        return math.inf
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    else:
        hours, minutes, seconds = {1: [0, parts[0], 0], 2: [0, *parts], 3: parts}[len(parts)]
    return (int(days or 0) * 24 + hours) * 60 + minutes + seconds / 60


def _leading_int(text: str) -> int:
    return int(re.sub(r"\D.*", "", text) or 0)


def cluster_nodes(partition: str | None, run: Callable = subprocess.run,
                  which: Callable = shutil.which) -> list[Node]:
    """The nodes ``sinfo`` reports (of ``partition`` when given), or a :class:`ClusterError` saying what is
    missing or not answering."""
    if which("sinfo") is None:
        raise ClusterError("sinfo not found: the Slurm executor needs Slurm's client commands (sbatch, "
                           "squeue, sinfo; Debian package slurm-client) on PATH")
    cmd = ["sinfo", "--noheader", "--format=%c %G %m %l", *(["--partition", partition] if partition else [])]
    try:
        proc = run(cmd, capture_output=True, text=True, timeout=SINFO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"Slurm does not answer: sinfo took over {SINFO_TIMEOUT_S} s; is slurmctld "
                           "running, and does SLURM_CONF (or /etc/slurm/slurm.conf) name it?") from None
    if proc.returncode or not proc.stdout.strip():
        why = proc.stderr.strip() or "no nodes" + (f" in partition {partition!r}" if partition else "")
        raise ClusterError(f"Slurm does not answer: sinfo failed ({why}); is slurmctld running, and does "
                           "SLURM_CONF (or /etc/slurm/slurm.conf) name it?")
    nodes = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        cpus, gres, mem, limit = (fields + ["0", "(null)", "0", "infinite"][len(fields):])[:4]
        nodes.append(Node(_leading_int(cpus), node_gpus(gres), _leading_int(mem), slurm_minutes(limit)))
    return nodes


def check_slurm(requests: Mapping[str, Mapping[str, int]], partition: str | None = None,
                run: Callable = subprocess.run, which: Callable = shutil.which) -> list[Node]:
    """Check that every rule's request fits one node of the cluster (of ``partition``); returns the nodes.

    ``requests``: rule → any of ``gpu``, ``threads``, ``mem_mb``, ``runtime`` (minutes). Raises
    :class:`ClusterError` when ``sinfo`` is missing or does not answer, or naming the rules whose GPUs,
    threads, memory or time limit no node gives, with what to set."""
    nodes = cluster_nodes(partition, run, which)
    need = {rule: {k: int(v) for k, v in asks.items() if v} for rule, asks in requests.items()}
    gpus, cpus = max(n.gpus for n in nodes), max(n.cpus for n in nodes)
    mem, minutes = max(n.mem_mb for n in nodes), max(n.minutes for n in nodes)
    wanting = {rule: a["gpu"] for rule, a in need.items() if a.get("gpu", 0) > gpus}
    if wanting:
        asks = ", ".join(f"{rule} (gpu={n})" for rule, n in sorted(wanting.items()))
        where = "no node offers a 'gpu' GRES" if gpus == 0 else f"its nodes have at most {gpus} GPUs"
        raise ClusterError(
            f"{asks} ask for GPUs, but {where} (sinfo). Give a partition with GPUs (slurm_partition under "
            f"default-resources in {PROFILE}); offline profiles also run on the CPU: --set-resources "
            + " ".join(f"{rule}:gpu=0" for rule in sorted(wanting)))
    greedy = {rule: a["threads"] for rule, a in need.items() if a.get("threads", 0) > cpus}
    if greedy:
        asks = ", ".join(f"{rule} ({n} threads)" for rule, n in sorted(greedy.items()))
        raise ClusterError(f"{asks} ask for more CPUs than the largest node has ({cpus}); set "
                           f"max-threads: {cpus} in {PROFILE} (or pass --max-threads {cpus})")
    hungry = {rule: a["mem_mb"] for rule, a in need.items() if a.get("mem_mb", 0) > mem}
    if hungry:
        asks = ", ".join(f"{rule} (mem_mb={n})" for rule, n in sorted(hungry.items()))
        raise ClusterError(f"{asks} ask for more memory than the largest node has ({mem} MB); lower params "
                           f"cluster.<job>.mem_mb or mem_mb under default-resources in {PROFILE}")
    slow = {rule: a["runtime"] for rule, a in need.items() if a.get("runtime", 0) > minutes}
    if slow:
        asks = ", ".join(f"{rule} (runtime={n} min)" for rule, n in sorted(slow.items()))
        raise ClusterError(f"{asks} ask for more time than the partition allows ({minutes:g} min); lower "
                           f"params cluster.<job>.runtime or runtime under default-resources in {PROFILE} "
                           "(training resumes from its checkpoint when rerun)")
    for rule, asks in sorted(need.items()):
        if not any(n.gpus >= asks.get("gpu", 0) and n.cpus >= asks.get("threads", 0)
                   and n.mem_mb >= asks.get("mem_mb", 0) for n in nodes):
            raise ClusterError(f"{rule} asks for {asks} on one node, but no node has all of it (sinfo); give "
                               f"a partition with such nodes (slurm_partition in {PROFILE})")
    return nodes
