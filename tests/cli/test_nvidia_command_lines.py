"""NVIDIA's command lines (READMEs and --help examples of stylegan2-ada-pytorch and stylegan3) work as written.

Each line is run with our own dataset in place of theirs and a tiny --kimg, through --dry-run, and the resolved
options are checked; what cannot apply here is refused with one line and exit code 2.
"""
import json
import shlex

import pytest

from stylegan.cli.main import run

from train_helpers import make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("d") / "blobs", resolution=32, labels=True)


def dry_run(capsys, line, data, outdir):
    argv = shlex.split(line.replace("DATA", str(data)).replace("OUT", str(outdir)))
    assert argv[:2] == ["python", "train.py"]
    code = run(["train", *argv[2:], "--kimg=1", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# (command line from NVIDIA's docs with their dataset path replaced, expected resolved values)
README_LINES = [
    # stylegan2-ada-pytorch README / train.py --help
    ("python train.py --outdir=OUT --gpus=1 --data=DATA --dry-run",
     dict(num_processes=1, cfg="auto", batch=32, mirror=False, cond=False)),
    ("python train.py --outdir=OUT --data=DATA --gpus=2 --cfg=cifar --cond=1",
     dict(num_processes=2, cfg="cifar", batch=64, cond=True, gamma=0.01)),
    ("python train.py --outdir=OUT --data=DATA --gpus=8 --cfg=stylegan2 --mirror=1 --aug=noaug",
     dict(num_processes=8, cfg="stylegan2", batch=32, mirror=True, aug="noaug", gamma=10.0)),
    ("python train.py --outdir=OUT --gpus=8 --data=DATA --cfg=paper256 --mirror=1 --metrics=none --snap=10",
     dict(num_processes=8, cfg="paper256", batch=64, mirror=True, metrics=[], snap_ticks=10)),
    ("python train.py --outdir=OUT --data=DATA --gpus=1 --cfg=paper256 --aug=fixed --p=0.3 --augpipe=bgcf "
     "--freezed=2 --subset=20 --seed=3 --fp32=1 --nhwc=1 --nobench=1 --allow-tf32=1 --workers=3",
     dict(aug="fixed", aug_p=0.3, augpipe="bgcf", freezed=2, max_size=20, seed=3, precision="fp32",
          channels_last=True, cudnn_benchmark=False, allow_tf32=True, workers=3)),
    ("python train.py --outdir=OUT --data=DATA --gpus=1 --mirror=0 --cond=false --fp32=0 --nobench=0 "
     "--metrics=fid50k_full,kid50k_full --resume=noresume",
     dict(mirror=False, cond=False, precision="auto", cudnn_benchmark=True, resume=None,
          metrics=["fid50k_full", "kid50k_full"])),
    # stylegan3 README / train.py --help, --cfg=stylegan2
    ("python train.py --outdir=OUT --cfg=stylegan2 --data=DATA --gpus=8 --batch=32 --gamma=10 --mirror=1 --aug=noaug",
     dict(num_processes=8, cfg="stylegan2", batch=32, gamma=10.0, mirror=True, aug="noaug", ema_kimg=10.0,
          ema_rampup=0.05)),  # stylegan3's train.py keeps training_loop's ramp-up for --cfg=stylegan2
    ("python train.py --outdir=OUT --cfg=stylegan2 --data=DATA --gpus=2 --batch=16 --gamma=6.6 --batch-gpu=4 "
     "--cbase=16384 --cmax=256 --glr=0.0025 --dlr=0.002 --map-depth=2 --mbstd-group=4 --tick=1 --snap=5 "
     "--desc=test --mirror=1 --cond=True",
     dict(num_processes=2, batch=16, gamma=6.6, batch_gpu=4, channel_base=16384, channel_max=256, g_lr=0.0025,
          map_depth=2, tick_kimg=1.0, snap_ticks=5, desc="test", mirror=True, cond=True, ema_kimg=5.0)),
    # stylegan3 README / train.py --help, --cfg=stylegan3-t/-r
    ("python train.py --outdir=OUT --cfg=stylegan3-t --data=DATA --gpus=8 --batch=32 --gamma=8.2 --mirror=1",
     dict(num_processes=8, cfg="stylegan3-t", batch=32, gamma=8.2, mirror=True, ema_kimg=10.0, ema_rampup=0.05)),
    ("python train.py --outdir=OUT --cfg=stylegan3-r --data=DATA --gpus=8 --batch=32 --gamma=6.6 --mirror=1 "
     "--kimg=5000 --snap=5",
     dict(num_processes=8, cfg="stylegan3-r", batch=32, gamma=6.6, mirror=True, snap_ticks=5)),
    ("python train.py --outdir=OUT --cfg=stylegan3-t --data=DATA --gpus=8 --batch=32 --gamma=2 --batch-gpu=8 "
     "--mirror=1 --metrics=none --nobench=True",
     dict(cfg="stylegan3-t", gamma=2.0, batch_gpu=8, metrics=[], cudnn_benchmark=False)),
    # our own spellings keep working next to NVIDIA's
    ("python train.py --outdir OUT --data DATA --mirror --cond --fp32 --channels-last",
     dict(mirror=True, cond=True, precision="fp32", channels_last=True, num_processes=1)),
    ("python train.py --outdir OUT --data DATA --mirror 1 --cond 0 -n",
     dict(mirror=True, cond=False)),
]


def _resolved(opts, key):
    cfg = opts["config"]
    table = dict(cfg=cfg["name"], batch=cfg["batch_size"], gamma=cfg["r1_gamma"], aug=cfg["aug"],
                 aug_p=cfg["aug_p"], augpipe=cfg["augpipe"], freezed=cfg["network"]["freeze_d_layers"],
                 channel_base=cfg["network"]["channel_base"], channel_max=cfg["network"]["channel_max"],
                 map_depth=cfg["network"]["map_depth"], g_lr=cfg["g_lr"], ema_kimg=cfg["ema_kimg"],
                 ema_rampup=cfg["ema_rampup"])
    return table[key] if key in table else opts[key]


@pytest.mark.parametrize("line,expected", README_LINES, ids=[f"line{i}" for i in range(len(README_LINES))])
def test_nvidia_train_lines_resolve(data, tmp_path, capsys, line, expected):
    opts = dry_run(capsys, line, data, tmp_path)
    assert opts["config"]["total_kimg"] == 1
    for key, value in expected.items():
        assert _resolved(opts, key) == value, key
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


@pytest.mark.parametrize("flags,message", [
    (["--mirror=maybe"], "'maybe' is not a valid boolean"),
    (["--mirror-y=1"], "--mirror-y"),
    (["--resume=ftp://example.com/net.pkl"], "only http:// and https://"),
    (["--gpus=0"], "--gpus"),
    (["--img-snap=10"], "use --snap 10"),
    (["--cfg=stylegan4"], "unknown preset 'stylegan4'"),
    (["--gpus=3", "--batch=8"], "--batch 8 must be divisible by --gpus 3"),
    (["--gpus=2", "--device=cuda:1"], "cuda"),
])
def test_refused_with_one_line(data, tmp_path, capsys, flags, message):
    code = run(["train", f"--data={data}", f"--outdir={tmp_path}", "--kimg=0.008", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_img_snap_equal_to_snap_and_snap_res_are_accepted(data, tmp_path, capsys):
    assert run(["train", f"--data={data}", f"--outdir={tmp_path}", "--snap=10", "--img-snap=10", "--snap-res=4k",
                "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["snap_ticks"] == 10
    assert "--snap-res 4k has no effect" in captured.err


def test_gpus_two_processes_train(data, tmp_path, capsys):
    """--gpus 2 starts two gloo processes on the CPU; rank 0 writes one run folder with a resumable checkpoint."""
    code = run(["train", f"--data={data}", f"--outdir={tmp_path}", "--gpus=2", "--cfg=cpu", "--batch=8",
                "--kimg=0.008", "--tick=0.008", "--snap=1", "--workers=0", "--no-progress", "--aug=noaug",
                "--mirror=1"])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.iterdir()
    assert "gpus2" in run_dir.name
    log = (run_dir / "log.txt").read_text()
    assert "2 process(es) x 1 round(s) x 4" in log and "Done: 0.008 kimg" in log
    opts = json.loads((run_dir / "training_options.json").read_text())
    assert opts["num_processes"] == 2 and opts["mirror"] is True
    assert (run_dir / "checkpoint.safetensors").is_file()


def test_gpus_bad_input_in_a_process_is_one_line(data, tmp_path, capsys):
    """A check that fails inside the spawned processes comes back as the same one line and exit code 2."""
    code = run(["train", f"--data={data}", f"--outdir={tmp_path}", "--gpus=2", "--cfg=cpu", "--batch=8",
                "--batch-gpu=3", "--kimg=0.008", "--workers=0", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --batch-gpu 3 must divide the per-process batch 4"]


def test_backend_flags_restored():
    import torch

    from stylegan.training.distributed import cuda_backend_flags
    before = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    with cuda_backend_flags(cudnn_benchmark=not before[0], allow_tf32=not before[1]):
        assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == (not before[0], not before[1])
    assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32) == before


# ---- generate: gen_images.py / generate.py lines ---------------------------------------------------------------


def test_nvidia_generate_line(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from official_helpers import OFFICIAL_SNAPSHOT
    line = f"--outdir={tmp_path / 'out'} --trunc=1 --seeds=0-3 --noise-mode=const --network={OFFICIAL_SNAPSHOT}"
    assert run(["generate", *line.split()]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    assert run(["generate", f"--outdir={tmp_path / 'ours'}", "--seeds", "2", "--network", str(OFFICIAL_SNAPSHOT)]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "seed0002.png")),
                          np.asarray(Image.open(tmp_path / "ours" / "seed0002.png")))
    # gen_images.py's StyleGAN3 options: accepted when neutral, refused with the reason otherwise.
    assert run(["generate", *line.split(), "--translate=0,0", "--rotate=0"]) == 0
    capsys.readouterr()
    for extra, message in ((["--translate=0.3,1"], "StyleGAN3"), (["--rotate=10"], "StyleGAN3"),
                           (["--translate=0.3"], "two numbers")):
        assert run(["generate", *line.split(), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_nvidia_generate_projected_w(tmp_path):
    import numpy as np

    from official_helpers import OFFICIAL_SNAPSHOT
    from stylegan.io.load import load_generator
    G = load_generator(OFFICIAL_SNAPSHOT)
    np.savez(tmp_path / "projected_w.npz", w=np.zeros([1, G.num_ws, G.w_dim], np.float32))
    assert run(["generate", f"--outdir={tmp_path / 'out'}", f"--projected-w={tmp_path / 'projected_w.npz'}",
                f"--network={OFFICIAL_SNAPSHOT}"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["w0000.png"]


# ---- dataset: dataset_tool.py lines -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import numpy as np
    from PIL import Image
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("flags,side", [
    (["--resolution=32x32", "--transform=center-crop"], 32),
    (["--resolution=16x16", "--transform=center-crop-wide", "--max-images=2"], 16),
    (["--width=32", "--height=32", "--transform=center-crop", "--resize-filter=box"], 32),  # stylegan2-ada-pytorch
    (["--resolution", "32", "--transform", "center-crop"], 32),  # ours
])
def test_nvidia_dataset_tool_lines(photos, tmp_path, capsys, flags, side):
    from stylegan.data.dataset import ImageDataset
    dest = tmp_path / "out.zip"
    assert run(["dataset", f"--source={photos}", f"--dest={dest}", *flags]) == 0, capsys.readouterr().err
    dataset = ImageDataset(dest)
    assert dataset.resolution == side and len(dataset) == (2 if "--max-images=2" in flags else 3)


@pytest.mark.parametrize("flags,message", [
    (["--resolution=64x32"], "square"),
    (["--resolution=abc"], "not a size"),
    (["--resolution=32", "--width=64"], "disagree"),
])
def test_dataset_tool_refusals(photos, tmp_path, capsys, flags, message):
    assert run(["dataset", f"--source={photos}", f"--dest={tmp_path / 'o.zip'}", "--transform=center-crop",
                *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("argv", [
    ["generate", "--outdir=OUT", "--trunc=1", "--seeds=0-35", "--class=1",
     "--network=ftp://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/cifar10.pkl"],
    ["metrics", "--metrics=fid50k_full", "--network=s3://example/net.pkl", "--data=DATA"],
])
def test_network_urls_other_than_http_refused_in_one_line(tmp_path, capsys, argv):
    """http(s) URLs are downloaded (tests/cli/test_pretrained_cli.py, against a local server); other schemes not."""
    argv = [a.replace("OUT", str(tmp_path / "o")).replace("DATA", str(tmp_path)) for a in argv]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only http:// and https://" in err[0]


def test_resume_from_a_network_sets_what_nvidias_train_py_sets(data, tmp_path, capsys):
    """train.py --resume=NETWORK: ADA reacts faster (ada_kimg 100), no G EMA ramp-up, no D blur fade-in; resuming a
    run folder keeps the run's own settings."""
    from official_helpers import OFFICIAL_SNAPSHOT
    base = (f"python train.py --outdir=OUT --data=DATA --gpus=1 --cfg=stylegan3-r --gamma=6.6 --batch=8 "
            f"--mirror=1")
    fresh = dry_run(capsys, base, data, tmp_path)["config"]
    assert fresh["ema_rampup"] == 0.05 and fresh["blur_init_sigma"] == 10 and fresh["ada_kimg"] == 500
    resumed = dry_run(capsys, base + f" --resume={OFFICIAL_SNAPSHOT}", data, tmp_path)["config"]
    assert (resumed["ada_kimg"], resumed["ema_rampup"], resumed["blur_init_sigma"]) == (100, None, 0.0)
    run_dir = tmp_path / "00000-run"
    run_dir.mkdir()
    assert dry_run(capsys, base + f" --resume={run_dir}", data, tmp_path)["config"]["ema_rampup"] == 0.05
