"""Sharing metric work across torch.distributed ranks; a no-op on a single process.

Work is cut into numbered batches; rank r takes batches r, r + W, r + 2W, ... and every batch has
its own random generator seeded from (seed, batch index). Gathered results are put back in batch
order, so a metric's value does not depend on how many processes computed it.
"""
from __future__ import annotations

import numpy as np
import torch


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised default process group, or (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def my_batches(num_batches: int) -> range:
    """Batch indices this rank computes (round robin).

    num_batches: total number of batches.
    """
    rank, world = rank_and_world()
    return range(rank, num_batches, world)


def batch_seed(seed: int, index: int) -> int:
    """A 63-bit seed derived from (seed, batch index) with numpy's SeedSequence.

    seed: the metric's seed.
    index: the batch number.
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def batch_generator(seed: int, index: int) -> torch.Generator:
    """CPU torch generator for one batch.

    seed: the metric's seed.
    index: the batch number.
    """
    return torch.Generator().manual_seed(batch_seed(seed, index))


def gather_in_order(local: dict[int, np.ndarray], num_batches: int) -> list[np.ndarray]:
    """Collect every rank's `{batch index: array}` and return all arrays in batch order.

    local: this rank's results keyed by batch index.
    num_batches: total number of batches (all must be present after gathering).
    """
    rank, world = rank_and_world()
    if world == 1:
        merged = local
    else:
        parts = [None] * world
        torch.distributed.all_gather_object(parts, local)
        merged = {}
        for part in parts:
            merged.update(part)
    missing = [i for i in range(num_batches) if i not in merged]
    if missing:
        raise RuntimeError(f"batches {missing[:5]} were computed by no rank")
    return [merged[i] for i in range(num_batches)]
