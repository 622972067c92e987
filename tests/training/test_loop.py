"""The training loop end to end on tiny networks: run directory, exact resume, NaN stop, transfer, conditional."""
import json

import pytest
import torch

import stylegan
from stylegan.errors import UserInputError
from stylegan.training.checkpoint import load_checkpoint
from stylegan.training.loop import TrainingDiverged, train
from stylegan.training.tensorboard import read_scalars

from train_helpers import assert_same_training_state, capture_compiles, make_dataset, tiny_config, tiny_options


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "blobs")


def test_run_directory_contents(data, tmp_path):
    run_dir = train(tiny_options(data, tmp_path, image_snap=True))
    assert run_dir.parent == tmp_path and run_dir.name.startswith("00000-blobs-tiny")
    names = {p.name for p in run_dir.iterdir()}
    assert {"training_options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png",
            "checkpoint.safetensors", "network-snapshot-000000.safetensors", "fakes000000.png"} <= names
    assert any(n.startswith("events.out.tfevents.") for n in names)
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["Progress/kimg"] for s in stats] == [0.016, 0.032, 0.048]
    assert all(s["Timing/img_per_sec"] > 0 and "Loss/G/loss" in s and "Timing/phase/Dreg_sec" in s for s in stats)
    log = (run_dir / "log.txt").read_text()
    assert sum(line.startswith("tick ") for line in log.splitlines()) == 3 and "kimg 0.048" in log
    events = next(run_dir.glob("events.out.tfevents.*"))
    tags = {tag for _, tag, _ in read_scalars(events)}
    assert {"Loss/G/loss", "Loss/D/loss", "Progress/augment"} <= tags
    G = stylegan.load_generator(run_dir / "network-snapshot-000000.safetensors")
    assert G(torch.randn(2, 16), None).shape == (2, 1, 16, 16)
    ckpt = load_checkpoint(run_dir / "checkpoint.safetensors")
    assert ckpt["state"]["cur_nimg"] == 48 and ckpt["state"]["step"] == 6
    assert set(ckpt["optimizers"]) == {"G", "D"} and "augment_pipe" in ckpt["modules"]


def _final_state(run_dir):
    ckpt = load_checkpoint(run_dir / "checkpoint.safetensors")
    return ckpt


def test_exact_resume(data, tmp_path):
    cfg = tiny_config(total_kimg=0.064)
    straight = train(tiny_options(data, tmp_path / "a", config=cfg))
    first = train(tiny_options(data, tmp_path / "b", config=tiny_config(total_kimg=0.024)))
    resumed = train(tiny_options(data, tmp_path / "b", config=tiny_config(total_kimg=0.064), resume="auto"))
    assert resumed == first  # continued in the same run directory
    a, b = _final_state(straight), _final_state(resumed)
    assert a["state"]["cur_nimg"] == b["state"]["cur_nimg"] == 64
    assert a["state"]["ada"]["p"] > 0  # ADA really adjusted p, and it survived the resume
    assert a["state"]["ada"] == b["state"]["ada"] and a["state"]["pl_mean"] == b["state"]["pl_mean"]
    assert_same_training_state(a, b)
    for key in a["rng"]:
        assert torch.equal(a["rng"][key], b["rng"][key])


def test_nan_stops_before_a_bad_checkpoint(data, tmp_path):
    cfg = tiny_config(g_lr=1e30, d_lr=1e30, total_kimg=0.2)
    opts = tiny_options(data, tmp_path, config=cfg, snap_ticks=100)
    with pytest.raises(TrainingDiverged, match="NaN/Inf"):
        train(opts)
    run_dir = next(tmp_path.iterdir())
    assert not (run_dir / "checkpoint.safetensors").exists()
    assert not list(run_dir.glob("network-snapshot-*"))


def test_transfer_learning_from_snapshot(data, tmp_path):
    first = train(tiny_options(data, tmp_path / "a", config=tiny_config(total_kimg=0.016)))
    snapshot = next(first.glob("network-snapshot-*.safetensors"))
    source = stylegan.load_network(snapshot)
    cfg = tiny_config(total_kimg=0.008)
    cfg.network.freeze_d_layers = 2
    second = train(tiny_options(data, tmp_path / "b", config=cfg, resume=str(snapshot)))
    nets = stylegan.load_network(next(second.glob("network-snapshot-*.safetensors")))
    # The first two D layers (b16.fromrgb, b16.conv0) were frozen: unchanged from the source.
    for name in ("b16.fromrgb.weight", "b16.conv0.weight", "b16.conv0.bias"):
        assert torch.equal(nets["D"].state_dict()[name], source["D"].state_dict()[name])
    assert not torch.equal(nets["D"].state_dict()["b16.conv1.weight"], source["D"].state_dict()["b16.conv1.weight"])
    assert not torch.equal(nets["G"].state_dict()["synthesis.b16.conv1.weight"],
                           source["G"].state_dict()["synthesis.b16.conv1.weight"])


def test_conditional_training(tmp_path):
    data = make_dataset(tmp_path / "labelled", labels=True)
    run_dir = train(tiny_options(data, tmp_path / "runs", config=tiny_config(total_kimg=0.016), cond=True))
    G = stylegan.load_generator(next(run_dir.glob("network-snapshot-*")))
    assert G.c_dim == 4
    with pytest.raises(UserInputError, match="needs labels"):
        train(tiny_options(make_dataset(tmp_path / "plain"), tmp_path / "r2", cond=True))


def test_bad_batch_arguments(data, tmp_path):
    with pytest.raises(UserInputError, match="batch-gpu"):
        train(tiny_options(data, tmp_path, batch_gpu=3))
    with pytest.raises(UserInputError, match="no such file or run folder"):
        train(tiny_options(data, tmp_path, resume=str(tmp_path / "missing.pkl")))


def test_metrics_at_snapshots(data, tmp_path):
    run_dir = train(tiny_options(data, tmp_path, config=tiny_config(total_kimg=0.016), snap_ticks=2,
                                 metrics=("swd",), metrics_num=32))
    records = [json.loads(line) for line in (run_dir / "metric-swd.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["metric"] == "swd" and records[0]["num_fake"] == 32
    assert "metric" in (run_dir / "log.txt").read_text()
    with pytest.raises(UserInputError, match="unknown metric"):
        train(tiny_options(data, tmp_path, metrics=("fid9000",)))


def test_resume_refuses_another_dataset(data, tmp_path):
    train(tiny_options(data, tmp_path, config=tiny_config(total_kimg=0.008)))
    other = make_dataset(tmp_path / "other")
    with pytest.raises(UserInputError, match="trained on"):
        train(tiny_options(other, tmp_path, config=tiny_config(total_kimg=0.016), resume="auto"))


def test_reference_resampling_path_trains(data, tmp_path, monkeypatch):
    """--resample reference trains on the reference ops, and only on them: every op call of every phase ran the
    implementation named 'reference' (the registry's entries are replaced by recorders)."""
    from stylegan.ops.registry import OPS
    ran = set()
    for op in ("bias_act", "conv2d_resample"):
        for impl, fn in list(OPS[op].items()):
            def recorder(*args, _key=(op, impl), _fn=fn, **kwargs):
                ran.add(_key)
                return _fn(*args, **kwargs)
            monkeypatch.setitem(OPS[op], impl, recorder)
    run_dir = train(tiny_options(data, tmp_path, config=tiny_config(total_kimg=0.016), resample="reference"))
    assert ran == {("bias_act", "reference"), ("conv2d_resample", "reference")}
    options = json.loads((run_dir / "training_options.json").read_text())
    assert options["resample"] == "reference" and set(options["speed_path"]["ops"].values()) == {"reference"}
    G = stylegan.load_generator(next(run_dir.glob("network-snapshot-*")))
    assert torch.isfinite(G(torch.randn(2, 16), None)).all()


def test_compiled_and_channels_last_paths_train_like_eager(data, tmp_path, monkeypatch):
    """--compile captures the G main and D main passes as graphs (here with the graph-capture-only backend, which
    must reproduce eager bit for bit; Inductor's kernels are checked in tests/networks/test_fast_paths.py);
    --channels-last changes only the memory layout (float32 rounding)."""
    from safetensors.torch import load_file
    import stylegan.runtime.path as runtime_path
    from stylegan.runtime.path import set_channels_last
    compiled, graph_runs = capture_compiles(monkeypatch)
    layouts = []

    def record_layout(module, enabled):
        layouts.append((type(module).__name__, enabled))
        return set_channels_last(module, enabled)
    monkeypatch.setattr(runtime_path, "set_channels_last", record_layout)
    config = tiny_config(total_kimg=0.016)

    def final_state(name, **overrides):
        run_dir = train(tiny_options(data, tmp_path / name, config=config, **overrides))
        return run_dir, load_file(run_dir / "checkpoint.safetensors")

    _, eager = final_state("eager")
    assert not graph_runs and not layouts
    run_dir, graphs = final_state("compiled", compile="reduce-overhead")
    # 2 steps x (G main: mapping x2 (style mixing), synthesis, D; D main: mapping x2, synthesis, D x2) at least
    assert len(graph_runs) >= 2 * 9
    _, nhwc = final_state("nhwc", channels_last=True)
    assert layouts == [("Generator", True), ("Discriminator", True)]
    assert sorted(compiled) == [("Discriminator", "reduce-overhead"), ("MappingNetwork", "reduce-overhead"),
                                ("SynthesisNetwork", "reduce-overhead")]
    assert json.loads((run_dir / "training_options.json").read_text())["compile"] == "reduce-overhead"
    assert eager.keys() == graphs.keys() == nhwc.keys()
    for key in eager:
        assert torch.equal(eager[key], graphs[key]), key
        torch.testing.assert_close(nhwc[key], eager[key], rtol=1e-4, atol=1e-5, msg=key)


def test_compile_and_channels_last_refuse_what_they_cannot_do(data, tmp_path):
    with pytest.raises(UserInputError, match="compile must be one of"):
        train(tiny_options(data, tmp_path, compile="fastest"))
    from stylegan.presets import with_stylegan1
    with pytest.raises(UserInputError, match="progressive growing"):
        train(tiny_options(data, tmp_path, config=with_stylegan1(tiny_config(), 16), compile="default"))
    with pytest.raises(UserInputError, match="channels-last"):
        train(tiny_options(data, tmp_path, config=with_stylegan1(tiny_config(), 16), channels_last=True))


def test_adam_is_fused_with_lazy_regularisation_scaling():
    """One fused Adam kernel per update on the CPU (the per-tensor loop cost ~4% of a small step), with lr and
    betas scaled by interval / (interval + 1) for lazy regularisation, and the same update as the plain Adam."""
    from stylegan.training.setup import make_optimizer
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt = make_optimizer(a, 0.002, (0.0, 0.99), 1e-8, reg_interval=4)
    assert opt.defaults["fused"] is True
    assert opt.defaults["lr"] == pytest.approx(0.002 * 0.8) and opt.defaults["betas"][1] == pytest.approx(0.99 ** 0.8)
    plain = torch.optim.Adam(b.parameters(), lr=0.002 * 0.8, betas=(0.0, 0.99 ** 0.8), eps=1e-8, foreach=False)
    for _ in range(3):
        for module, optimizer in ((a, opt), (b, plain)):
            optimizer.zero_grad()
            module(torch.ones(4, 3)).square().sum().backward()
            optimizer.step()
    torch.testing.assert_close(a.weight, b.weight)
