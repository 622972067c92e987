"""InfiniteSampler: the official stream, sharded over replicas, resumable with `start`."""
import itertools

import numpy as np
import pytest

from stylegan.data.sampler import InfiniteSampler


def _reference_stream(n, rank, num_replicas, seed, window_size, count):
    """The StyleGAN2-ADA algorithm, one random draw per step, written out plainly."""
    order = np.arange(n)
    rnd = np.random.RandomState(seed)
    rnd.shuffle(order)
    window = int(np.rint(n * window_size))
    out, idx = [], 0
    while len(out) < count:
        i = idx % n
        if idx % num_replicas == rank:
            out.append(int(order[i]))
        if window >= 2:
            j = (i - rnd.randint(window)) % n
            order[i], order[j] = order[j], order[i]
        idx += 1
    return out


def _take(sampler, count):
    return [int(x) for x in itertools.islice(iter(sampler), count)]


@pytest.mark.parametrize("n,rank,num_replicas,window", [(17, 0, 1, 0.5), (50, 1, 3, 0.5), (9, 0, 2, 0.0)])
def test_matches_reference_algorithm(n, rank, num_replicas, window):
    # 10,000 items also crosses the block boundary of the batched random draws.
    count = 10_000
    got = _take(InfiniteSampler(n, rank=rank, num_replicas=num_replicas, seed=3, window_size=window), count)
    assert got == _reference_stream(n, rank, num_replicas, 3, window, count)


def test_deterministic_per_seed_and_covers_every_item():
    a = _take(InfiniteSampler(40, seed=7), 400)
    assert a == _take(InfiniteSampler(40, seed=7), 400)
    assert a != _take(InfiniteSampler(40, seed=8), 400)
    assert set(a) == set(range(40))  # every item shows up
    assert a[:40] != list(range(40))  # and not in file order


def test_no_shuffle_cycles_in_order():
    assert _take(InfiniteSampler(4, shuffle=False), 9) == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_replicas_partition_the_stream():
    full = _take(InfiniteSampler(23, seed=1), 300)
    shards = [_take(InfiniteSampler(23, rank=r, num_replicas=3, seed=1), 100) for r in range(3)]
    assert [x for triple in zip(*shards) for x in triple] == full


@pytest.mark.parametrize("start", [0, 1, 37, 5000])
def test_start_resumes_the_same_sequence(start):
    full = _take(InfiniteSampler(31, rank=1, num_replicas=2, seed=5), start + 200)
    resumed = _take(InfiniteSampler(31, rank=1, num_replicas=2, seed=5, start=start), 200)
    assert resumed == full[start:]


def test_accepts_a_sized_dataset_and_rejects_bad_arguments():
    assert _take(InfiniteSampler(list("abcde"), shuffle=False), 3) == [0, 1, 2]
    for kwargs in [dict(dataset_len=0), dict(dataset_len=5, rank=2, num_replicas=2),
                   dict(dataset_len=5, window_size=1.5), dict(dataset_len=5, start=-1)]:
        with pytest.raises(ValueError):
            InfiniteSampler(**kwargs)
