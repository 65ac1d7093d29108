"""Distributed setup of a training run: the process group under ``torchrun``, this process's device,
rank and world size, and the DistributedDataParallel wrapper of the model.

A single process (no ``torchrun``) is a world of one: every collective below is then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from instrumentgen.lm.model import CodecLM


@dataclass
class Distributed:
    """This process's place in the run: its ``rank`` among ``world`` processes and its ``device``."""

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


def wrap_model(model: CodecLM, dist_: Distributed) -> torch.nn.Module:
    """What the training step calls: ``model`` itself in one process, else its DDP wrapper (gradients
    averaged over processes)."""
    if dist_.world == 1:
        return model
    # DDP broadcasts parameters, not these buffers: rank 0's quantiser goes to every rank once
    # (k-means on a GPU may round differently per process); later EMA statistics, if any, are
    # all-reduced inside its update, so the buffers stay identical without a broadcast per step.
    for buffer in model.conditions.rvq.buffers():
        if buffer.is_floating_point():
            dist.broadcast(buffer, src=0)
    return DistributedDataParallel(
        model,
        device_ids=[dist_.device.index] if dist_.device.type == "cuda" else None,
        broadcast_buffers=False,
    )
