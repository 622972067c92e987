"""An endless, seeded, shuffled stream of dataset indices that a resumed run can pick up exactly.

The order is the one NVIDIA's StyleGAN2-ADA `InfiniteSampler` produces for the same seed: shuffle
once, then after every step swap the current slot with one chosen at random from a window behind
it, so each pass is a slightly different permutation. Items are dealt round-robin to the replicas.
"""
from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Union

import numpy as np
import torch

# Random window offsets are drawn in blocks; numpy's legacy generator gives the same numbers
# whether drawn one at a time or in blocks, so the stream is unchanged.
_DRAW_BLOCK = 4096


class InfiniteSampler(torch.utils.data.Sampler):
    """Deterministic infinite sampler with shuffling, sharding over replicas and resume.

    dataset_len: number of items, or any object with `len()` (e.g. the dataset).
    rank: index of this replica, in [0, num_replicas).
    num_replicas: number of replicas (processes) sharing the stream.
    shuffle: shuffle (True) or cycle through 0, 1, 2, ... in order (False).
    seed: seed of the shuffle; the same seed gives the same stream.
    window_size: fraction of the dataset that a slot may swap with after each step (0 disables).
    start: number of items this replica has already consumed; they are skipped, so a run resumed
        with `start` = items seen so far continues exactly where it stopped.
    """

    def __init__(
        self,
        dataset_len: Union[int, Sized],
        rank: int = 0,
        num_replicas: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        window_size: float = 0.5,
        start: int = 0,
    ):
        length = dataset_len if isinstance(dataset_len, (int, np.integer)) else len(dataset_len)
        if length < 1:
            raise ValueError(f"InfiniteSampler needs a non-empty dataset, got length {length}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}")
        if not 0 <= window_size <= 1:
            raise ValueError(f"window_size must be in [0, 1], got {window_size}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        super().__init__()
        self.dataset_len = int(length)
        self.rank = int(rank)
        self.num_replicas = int(num_replicas)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.window_size = float(window_size)
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        order = list(range(self.dataset_len))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            shuffled = np.arange(self.dataset_len)
            rnd.shuffle(shuffled)
            order = shuffled.tolist()
            window = int(np.rint(self.dataset_len * self.window_size))
        size = self.dataset_len
        to_skip = self.start
        offsets: list[int] = []
        k = 0
        idx = 0
        while True:
            i = idx % size
            if idx % self.num_replicas == self.rank:
                if to_skip > 0:
                    to_skip -= 1
                else:
                    yield order[i]
            if window >= 2:
                if k == len(offsets):
                    offsets = rnd.randint(window, size=_DRAW_BLOCK).tolist()
                    k = 0
                j = (i - offsets[k]) % size
                k += 1
                order[i], order[j] = order[j], order[i]
            idx += 1
