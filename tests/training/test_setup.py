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


def test_training_draws_do_not_replay_the_initialisation(tmp_path):
    """The latents and the per-rank draws (noise, mixing, augmentation) come from fresh streams, not from the run's
    seed again: re-seeding with it made the first steps' latents the numbers the weights were drawn from (the rows
    of the mapping's first weight). The streams still follow from the seed, for the same run twice."""
    from train_helpers import make_dataset, tiny_options
    data = make_dataset(tmp_path / "data", count=8)
    opts = tiny_options(data, tmp_path / "runs", seed=3, compile="off", channels_last=False, precision="fp32")
    init_stream = torch.Generator().manual_seed(3)
    replayed = torch.randn([4096], generator=init_stream)
    runs, z, noise = [], [], []
    for outside in (123, 0):  # the global stream stood elsewhere before each: the run's streams are its own
        torch.manual_seed(outside)
        runs.append(setup.setup_run(opts, say=lambda *a: None))
        z.append(torch.randn([4096], generator=runs[-1].gen))
        noise.append(torch.randn([4096]))
    for drawn in (z[0], noise[0]):
        assert not torch.isclose(drawn, replayed).any()
    assert torch.equal(z[0], z[1]) and torch.equal(noise[0], noise[1])
    fc0 = runs[0].G.mapping.fc0.weight.detach().flatten()
    assert not torch.isin(z[0], fc0).any() and not torch.isin(noise[0], fc0).any()
    assert not torch.isclose(z[0], noise[0]).any()  # latents and per-rank draws: two streams
