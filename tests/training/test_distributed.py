"""One step on two gloo processes equals one process with the same global batch."""
import os
import socket

import torch
import torch.multiprocessing as mp

from stylegan.training.checkpoint import load_checkpoint
from stylegan.training.loop import train

from train_helpers import make_dataset, tiny_config, tiny_options


def _config():
    # Randomness that is drawn per process is switched off so the comparison is exact: no augmentation,
    # no style mixing, no path length noise. Adam's eps is large so the first update is smooth in the
    # gradient (with a tiny eps it is lr * sign(g), which float rounding could flip for g ~ 0). Minibatch
    # stddev is off because its groups depend on how the batch is partitioned, which legitimately differs.
    cfg = tiny_config(total_kimg=0.008, aug="noaug", style_mixing_prob=0.0, pl_weight=0.0, eps=1.0, batch_size=8)
    cfg.network.mbstd_num_channels = 0
    return cfg


def _worker(rank, world, port, data, outdir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(tiny_options(data, outdir, config=_config()))
    torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    data = make_dataset(tmp_path / "data")
    mp.spawn(_worker, args=(2, _free_port(), data, tmp_path / "dist"), nprocs=2, join=True)
    single = train(tiny_options(data, tmp_path / "single", config=_config()))
    a = load_checkpoint(next((tmp_path / "dist").iterdir()) / "checkpoint.safetensors")
    b = load_checkpoint(single / "checkpoint.safetensors")
    assert a["state"]["cur_nimg"] == b["state"]["cur_nimg"] == 8
    compared = 0
    for role in ("G", "D", "G_ema"):
        for key, value in a["modules"][role].items():
            if key.endswith("noise_strength"):
                # Its gradient multiplies the random noise images, drawn per process; every other
                # gradient is independent of them at step 0 because the strengths start at zero.
                continue
            torch.testing.assert_close(value, b["modules"][role][key], atol=1e-6, rtol=1e-5, msg=f"{role}.{key}")
            compared += 1
    assert compared > 50


def test_gradient_accumulation_rounds_match_one_pass(tmp_path):
    """As NVIDIA's loop, R rounds sum their mean losses: R times the gradient of one pass, which Adam notices only
    through its eps, so R rounds with eps * R take one pass's step exactly. (w_avg moves once per round, as
    NVIDIA's: tests/training/test_phases.py.)"""
    data = make_dataset(tmp_path / "data")
    whole = train(tiny_options(data, tmp_path / "whole", config=_config()))
    rounds_cfg = _config()
    rounds_cfg.eps *= 4
    rounds = train(tiny_options(data, tmp_path / "rounds", config=rounds_cfg, batch_gpu=2))
    a = load_checkpoint(whole / "checkpoint.safetensors")["modules"]
    b = load_checkpoint(rounds / "checkpoint.safetensors")["modules"]
    for role in ("G", "D"):
        for key, value in a[role].items():
            if not key.endswith(("noise_strength", "w_avg")):
                torch.testing.assert_close(value, b[role][key], atol=1e-6, rtol=1e-5, msg=f"{role}.{key}")
