"""The training run's execution path (training/setup.py `choose_training_path`)."""
import torch

from stylegan.networks.registry import build_network
from stylegan.presets import resolve_preset
from stylegan.runtime.choice import PathChoice
from stylegan.runtime.path import FAST
from stylegan.training import setup
from stylegan.training.options import RunOptions


def _sg3_pair(cfg):
    net = cfg.network
    net.channel_base, net.channel_max, net.map_depth = 256, 16, 1
    G = build_network(net.generator_class, net.generator_kwargs(16, 1, 0))
    D = build_network(net.discriminator_class, net.discriminator_kwargs(16, 1, 0))
    return G, D


def test_path_length_keeps_filtered_lrelu_differentiable_twice(monkeypatch):
    """The Triton filtered_lrelu differentiates once: a StyleGAN3 run with path length regularisation (not the
    presets', but a config can ask for it) keeps the 'fast' filtered_lrelu where the choice picked 'triton'."""
    triton_path = FAST.replace(ops={"filtered_lrelu": "triton", "bias_act": "triton"})
    monkeypatch.setattr(setup, "choose_path", lambda *a, **k: PathChoice(triton_path, "CUDA"))
    cfg = resolve_preset("stylegan3-t", 16)
    G, D = _sg3_pair(cfg)
    for pl_weight, expected in ((0.0, "triton"), (2.0, "fast")):
        cfg.pl_weight, cfg.g_reg_interval = pl_weight, 4
        opts = RunOptions(data="-", outdir="-", config=cfg, compile="off")
        choice = setup.choose_training_path(opts, G, D, torch.device("cpu"), 2)
        assert choice.path.ops["filtered_lrelu"] == expected and choice.path.ops["bias_act"] == "triton"
