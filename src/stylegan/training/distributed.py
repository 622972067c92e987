"""torch.distributed for training: processes started by `torchrun` or by `launch_training` (`--gpus N`).

Reads RANK / WORLD_SIZE / LOCAL_RANK from the environment; NCCL on CUDA, gloo on CPU. A single process
without those variables runs undistributed and every function here is a no-op.

`launch_training(opts)` is what NVIDIA's train.py does with --gpus: it starts `opts.num_processes` local
processes (torch.multiprocessing spawn), gives each the environment torchrun would, and runs the training loop
in each; on one machine `stylegan train --gpus 2 ...` and `torchrun --nproc_per_node 2 -m stylegan train ...`
are the same run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import torch
import torch.distributed as dist

from ..errors import UserInputError


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


# ----------------------------------------------------------------------------------------------------------
# Local process launcher (`stylegan train --gpus N`)

_TORCHRUN_RECIPE = "torchrun --nproc_per_node N -m stylegan train ... (without --gpus)"


@contextlib.contextmanager
def cuda_backend_flags(cudnn_benchmark: bool, allow_tf32: bool) -> Iterator[None]:
    """cuDNN benchmarking and TF32 switched as NVIDIA's training loop does, restored afterwards (no effect on CPU).

    cudnn_benchmark: let cuDNN time convolution algorithms and keep the fastest.
    allow_tf32: allow TF32 in CUDA matmuls and convolutions.
    """
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _launch_device_type(device: str, num_processes: int) -> str:
    """'cuda' or 'cpu' for `num_processes` local processes on `device`, or a one-line UserInputError."""
    from ..io.load import parse_device
    if device == "auto":
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        parsed = parse_device(device)
        device_type = parsed.type
        if device_type == "cuda" and parsed.index is not None:
            raise UserInputError(f"--gpus {num_processes} uses cuda:0..{num_processes - 1}; give --device cuda (or "
                                 f"auto) and choose GPUs with CUDA_VISIBLE_DEVICES")
    if device_type == "cuda":
        count = torch.cuda.device_count()
        if num_processes > count:
            raise UserInputError(f"--gpus {num_processes}, but {count} CUDA device(s) are visible; for several "
                                 f"machines use {_TORCHRUN_RECIPE} on each")
    elif device_type != "cpu":
        raise UserInputError(f"--gpus {num_processes} on {device_type}: torch.distributed has no backend for it; "
                             f"train with one process")
    return device_type


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _quiet_spawn_log() -> Iterator[None]:
    """When one process stops with bad input, spawn terminates the others and logs a warning per process; the one
    line that says why is enough."""
    logger = logging.getLogger("torch.multiprocessing.spawn")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _process(rank: int, world_size: int, port: int, messages: str, opts) -> None:
    """One spawned process: torchrun's environment, then the training loop; bad input becomes a message file."""
    from .loop import train
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if not torch.cuda.is_available() or opts.device == "cpu":  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        with cuda_backend_flags(opts.cudnn_benchmark, opts.allow_tf32):
            run_dir = train(opts)
        if rank == 0:
            Path(messages, "run_dir").write_text(str(run_dir))
    except UserInputError as exc:
        Path(messages, f"error-rank{rank}").write_text(str(exc))
        sys.exit(2)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch_training(opts) -> Optional[Path]:
    """Run the training loop in `opts.num_processes` local processes (one: in this process); rank 0's run folder.

    opts: training.options.RunOptions; num_processes > 1 spawns that many processes on this machine (NCCL, one
        GPU each, on CUDA; gloo on the CPU), as NVIDIA's train.py does for --gpus.
    """
    from .loop import train
    n = opts.num_processes
    if n < 1:
        raise UserInputError(f"the number of processes must be at least 1, got {n}")
    if n == 1:
        with cuda_backend_flags(opts.cudnn_benchmark, opts.allow_tf32):
            return train(opts)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserInputError(f"--gpus {n} under torchrun: torchrun already started the processes; use either "
                             f"{_TORCHRUN_RECIPE} or --gpus N alone")
    _launch_device_type(opts.device, n)
    if opts.config.batch_size % n:
        raise UserInputError(f"--batch {opts.config.batch_size} must be divisible by --gpus {n}")
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as messages, _quiet_spawn_log():
        try:
            mp.spawn(_process, args=(n, _free_port(), messages, opts), nprocs=n, join=True)
        except mp.ProcessExitedException:
            errors = sorted(Path(messages).glob("error-rank*"))
            if errors:
                raise UserInputError(errors[0].read_text()) from None
            raise
        run_dir = Path(messages, "run_dir")
        return Path(run_dir.read_text()) if run_dir.is_file() else None
