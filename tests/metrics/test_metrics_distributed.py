"""Two gloo processes give the single-process value (work is split by batch, seeded per batch).

The match is to float32 round-off, not bitwise: the workers run with one thread each, and
convolutions sum in a different order with a different thread count."""
import json

import pytest
import torch
import torch.multiprocessing as mp

from stylegan.metrics import compute_metric
from stylegan.metrics.distributed import gather_in_order, my_batches, rank_and_world

from metrics_helpers import TinyGenerator, blob_images

NAMES = ("fid10k_full", "kid50k_full", "ppl2_wend")


def _run(name, images):
    if name.startswith("ppl"):
        return compute_metric(name, generator=TinyGenerator(), num=12, batch_size=4, ppl_distance="fmnist")
    return compute_metric(name, generator=TinyGenerator(), data=images, feature_net="fmnist", num=20, batch_size=6)


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    assert rank_and_world() == (rank, 2)
    assert list(my_batches(5)) == [rank, rank + 2, rank + 4][: 3 - rank]
    images = blob_images(30, seed=0)
    results = {name: _run(name, images)["value"] for name in NAMES}
    (out_dir / f"rank{rank}.json").write_text(json.dumps(results))
    torch.distributed.destroy_process_group()


def test_two_ranks_match_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), tmp_path), nprocs=2, join=True)
    single = {name: _run(name, blob_images(30, seed=0))["value"] for name in NAMES}
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == pytest.approx(single, rel=1e-5)


def test_single_process_is_a_no_op():
    assert rank_and_world() == (0, 1)
    assert list(my_batches(3)) == [0, 1, 2]
    assert gather_in_order({1: "b", 0: "a"}, 2) == ["a", "b"]
