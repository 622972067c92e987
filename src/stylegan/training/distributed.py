"""torch.distributed for training: processes started by `torchrun` (one per GPU, or several on a CPU).

Reads RANK / WORLD_SIZE / LOCAL_RANK from the environment; NCCL on CUDA, gloo on CPU. A single process
without those variables runs undistributed and every function here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment variables (or stay single)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_mean_(tensors: Iterable[torch.Tensor], world_size: int) -> None:
    """Average tensors over ranks in place (one flat all_reduce)."""
    tensors = list(tensors)
    if world_size <= 1 or not tensors:
        return
    flat = torch.cat([t.flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def broadcast_module_(module: torch.nn.Module, world_size: int) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if world_size <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()
