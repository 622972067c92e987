"""`stylegan train` flag mapping (--dry-run), bad arguments, and a real short run through the CLI."""
import json

import pytest

from stylegan.cli.main import run
from stylegan.training.tensorboard import crc32c

from train_helpers import make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("d") / "blobs", resolution=32)


def dry_run(capsys, data, tmp_path, *flags):
    assert run(["train", "--data", str(data), "--outdir", str(tmp_path), *flags, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_dry_run_resolves_preset_and_overrides(data, tmp_path, capsys):
    opts = dry_run(capsys, data, tmp_path, "--cfg", "paper256")
    cfg = opts["config"]
    assert (cfg["batch_size"], cfg["r1_gamma"], cfg["ema_kimg"], cfg["network"]["channel_base"]) == (64, 1.0, 20.0, 16384)
    opts = dry_run(capsys, data, tmp_path, "--cfg", "stylegan2", "--batch", "16", "--gamma", "0.5", "--cbase", "8192",
                   "--cmax", "256", "--map-depth", "2", "--glr", "0.001", "--dlr", "0.003", "--mbstd-group", "8",
                   "--kimg", "0.5", "--aug", "fixed", "--p", "0.3", "--augpipe", "bgcf", "--freezed", "3", "--mirror")
    cfg = opts["config"]
    assert cfg["batch_size"] == 16 and cfg["ema_kimg"] == 5.0  # ema follows the batch as in train.py
    assert (cfg["r1_gamma"], cfg["g_lr"], cfg["d_lr"], cfg["total_kimg"]) == (0.5, 0.001, 0.003, 0.5)
    net = cfg["network"]
    assert (net["channel_base"], net["channel_max"], net["map_depth"], net["mbstd_group_size"], net["freeze_d_layers"]) \
        == (8192, 256, 2, 8, 3)
    assert (cfg["aug"], cfg["aug_p"], cfg["augpipe"], opts["mirror"]) == ("fixed", 0.3, "bgcf", True)
    assert not list(tmp_path.iterdir())  # a dry run writes nothing
    assert dry_run(capsys, data, tmp_path, "--resample", "reference")["resample"] == "reference"
    fast = dry_run(capsys, data, tmp_path, "--compile", "--channels-last")
    assert (fast["compile"], fast["channels_last"]) == ("default", True)
    assert dry_run(capsys, data, tmp_path, "--compile=max-autotune")["compile"] == "max-autotune"
    default = dry_run(capsys, data, tmp_path)  # left to the automatic path choice (runtime/choice.py)
    assert (default["precision"], default["channels_last"], default["compile"]) == ("auto", None, "auto")
    assert dry_run(capsys, data, tmp_path, "--compile", "off", "--nhwc=0")["channels_last"] is False
    assert dry_run(capsys, data, tmp_path, "--nhwc=1")["channels_last"] is True
    v1 = dry_run(capsys, data, tmp_path, "--cfg", "cpu", "--arch", "stylegan1", "--loss", "wgan-gp")["config"]
    assert v1["network"]["arch"] == "stylegan1" and v1["progressive"]["initial_resolution"] == 8
    assert v1["loss"] == "wgan-gp" and v1["d_reg_interval"] is None and v1["pl_weight"] == 0


@pytest.mark.parametrize("flags,message", [
    (["--augpipe", "xyz"], "unknown --augpipe"),
    (["--batch", "0"], "must be positive"),
    (["--p", "1.5"], "--p must be in [0, 1]"),
    (["--cfg", "huge"], "huge"),
])
def test_bad_flags(data, tmp_path, capsys, flags, message):
    assert run(["train", "--data", str(data), "--outdir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_dataset(tmp_path, capsys):
    assert run(["train", "--data", str(tmp_path / "none.zip"), "--outdir", str(tmp_path)]) == 2
    assert "dataset not found" in capsys.readouterr().err


def test_short_run_bf16(data, tmp_path, capsys):
    code = run(["train", "--data", str(data), "--outdir", str(tmp_path), "--cfg", "cpu", "--batch", "8", "--kimg",
                "0.016", "--tick", "0.008", "--snap", "1", "--workers", "0", "--precision", "bf16", "--no-progress",
                "--aug", "noaug"])
    assert code == 0
    run_dir = next(tmp_path.iterdir())
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2 and all(abs(s["Loss/G/loss"]) < 100 for s in stats)
    assert (run_dir / "network-snapshot-000000.safetensors").exists()


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
