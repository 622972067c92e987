"""A small Fashion-MNIST classifier used as an offline feature network (`fmnist`).

Trained by `scripts/train_fmnist_classifier.py` on the Fashion-MNIST training set (Xiao et al.
2017) from the Debian package `dataset-fashion-mnist`; the weights ship with this package as
`weights/fmnist_classifier.safetensors` (with `fmnist_classifier.json` holding the recorded test
accuracy). Features are the 128-d penultimate layer (after ReLU); logits (10 classes) serve the
Inception Score. Any image size and channel count is accepted: images are converted to grayscale
(BT.601) and resized to 28x28 (see `preprocess.py`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from stylegan.errors import FormatError, UserInputError
from stylegan.metrics.preprocess import prepare

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "fmnist_classifier.safetensors"
INFO_FILE = WEIGHTS_DIR / "fmnist_classifier.json"


class ConvBlock(nn.Module):
    """3x3 convolution, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        """in_channels: input feature maps.
        out_channels: output feature maps.
        """
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class FashionMnistNet(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool-conv128-GAP-fc128-fc10 (about 160k parameters)."""

    name = "fmnist"
    input_size = 28
    feature_dim = 128
    num_classes = 10

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(ConvBlock(1, 32), ConvBlock(32, 32))      # 28x28
        self.block2 = nn.Sequential(ConvBlock(32, 64), ConvBlock(64, 64))     # 14x14
        self.block3 = ConvBlock(64, 128)                                      # 7x7
        self.fc = nn.Linear(128, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def normalized_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images of any size -> `[N, 1, 28, 28]` in [-1, 1].

        images: `[N, C, H, W]` (see `preprocess.py` for the conventions).
        """
        return prepare(images, self.input_size, 1) * 2 - 1

    def forward_normalized(self, x: torch.Tensor):
        """Run on already normalized `[N, 1, 28, 28]` input; returns (features [N, 128], logits [N, 10]).

        x: output of `normalized_input`.
        """
        x = F.max_pool2d(self.block1(x), 2)
        x = F.max_pool2d(self.block2(x), 2)
        x = self.block3(x).mean(dim=(2, 3))
        features = F.relu(self.fc(x))
        return features, self.head(features)

    def forward(self, images: torch.Tensor):
        """images: uint8 or [-1, 1] `[N, C, H, W]`; returns (features [N, 128], logits [N, 10])."""
        return self.forward_normalized(self.normalized_input(images))


def load_fmnist_net(weights: str | os.PathLike | None = None) -> FashionMnistNet:
    """Build the classifier in eval mode with the committed (or the given) safetensors weights.

    weights: path to a safetensors file written by the training script; None = the shipped one.
    """
    from safetensors.torch import load_file

    path = Path(weights) if weights is not None else WEIGHTS_FILE
    if not path.is_file():
        raise UserInputError(
            f"fmnist classifier weights not found at {path}; recreate them with "
            "`python scripts/train_fmnist_classifier.py` (needs `apt-get install dataset-fashion-mnist`)")
    net = FashionMnistNet()
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise FormatError(f"{path} is not a readable safetensors file ({e})") from e
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FormatError(f"{path} does not hold fmnist classifier weights "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval().requires_grad_(False)


def recorded_accuracy() -> dict:
    """The JSON written next to the shipped weights (test accuracy, epochs, seed)."""
    return json.loads(INFO_FILE.read_text())


def fashion_mnist_tensors(split: str, folder=None):
    """(uint8 images [N, 1, 28, 28], int64 labels [N]) of a Fashion-MNIST split as torch tensors.

    split: 'train' or 't10k'.
    folder: where the idx files are; None = the Debian package's folder.
    """
    from stylegan.data.fashion_mnist import FASHION_MNIST_DIR, load_fashion_mnist

    images, labels = load_fashion_mnist(split, FASHION_MNIST_DIR if folder is None else folder)
    return torch.from_numpy(images[:, None]), torch.from_numpy(labels)
