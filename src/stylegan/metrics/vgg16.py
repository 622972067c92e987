"""VGG16 (Simonyan & Zisserman 2015, configuration D) as a feature network (`vgg16`, fc7 features
for precision/recall as in Kynkäänniemi et al. 2019) and as the backbone of LPIPS (Zhang et al.
2018), the distance of the perceptual path length (Karras et al. 2019, section 4.2).

The ImageNet backbone is not shipped: the user supplies torchvision's `vgg16-397923af.pth` (a plain
state dict, loaded with `torch.load(weights_only=True)`; names `features.{i}` / `classifier.{i}`
are this module's own). The LPIPS v0.1 linear heads ship as `weights/lpips_vgg16_v0.1_heads.safetensors`
(from the `lpips` package, BSD-2-Clause; see weights/NOTICE.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from stylegan.errors import FormatError, UserInputError
from stylegan.metrics.preprocess import match_channels, resize, to_unit_range
from stylegan.metrics.state_dict_io import build_uninitialized, load_state_dict_file

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE
LPIPS_HEADS_FILE = Path(__file__).resolve().parent / "weights" / "lpips_vgg16_v0.1_heads.safetensors"

# Configuration D: conv widths, 'M' = 2x2 max pool.
_CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# Indices in `features` of the ReLUs LPIPS reads: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_LPIPS_TAPS = (3, 8, 15, 22, 29)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# LPIPS input scaling of [-1, 1] images (Zhang et al. 2018 reference code's constants).
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


class VGG16(nn.Module):
    """VGG16 with torchvision's parameter names; returns fc7 (post-ReLU) features and ImageNet logits."""

    name = "vgg16"
    input_size = 224
    feature_dim = 4096
    num_classes = 1000

    def __init__(self, with_classifier: bool = True):
        """with_classifier: build fc6-fc8 (needed for features; LPIPS uses the convolutions only)."""
        super().__init__()
        layers, cin = [], 3
        for v in _CFG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = None
        if with_classifier:
            self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                                            nn.Linear(4096, 1000))

    def forward(self, images: torch.Tensor):
        """images: uint8 or [-1, 1] `[N, C, H, W]`; returns (fc7 features [N, 4096], logits [N, 1000])."""
        if self.classifier is None:
            raise RuntimeError("this VGG16 was built without its classifier (LPIPS only)")
        x = resize(match_channels(to_unit_range(images), 3), self.input_size)
        mean = torch.tensor(_IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = self.features((x - mean) / std)
        x = F.adaptive_avg_pool2d(x, 7).flatten(1)
        fc7 = self.classifier[:5](x)
        return fc7, self.classifier[6](fc7)

    def lpips_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five ReLU outputs LPIPS compares, for already scaled input.

        x: `[N, 3, H, W]` scaled by `LPIPSDistance.scale_input`.
        """
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _LPIPS_TAPS:
                taps.append(x)
                if i == _LPIPS_TAPS[-1]:
                    break
        return taps


def load_vgg16(weights: str | os.PathLike | None = None, with_classifier: bool = True) -> VGG16:
    """Build VGG16 in eval mode from a torchvision-format state dict.

    weights: path to `vgg16-397923af.pth`; None = search $STYLEGAN_WEIGHTS and ~/.cache/stylegan/weights.
    with_classifier: also load fc6-fc8 (False for LPIPS, which needs only `features.*`).
    """
    from stylegan.metrics.inception import default_search_paths

    candidates = [Path(weights)] if weights is not None else default_search_paths(VGG16_FILE)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise UserInputError(
            f"VGG16 weights not found (looked at {', '.join(map(str, candidates))}). Download torchvision's "
            f"{VGG16_FILE} from {VGG16_URL} and put it in $STYLEGAN_WEIGHTS or ~/.cache/stylegan/weights/, "
            f"or pass it with --feature-net vgg16:PATH / --ppl-distance lpips-vgg16:PATH. Offline alternatives: "
            f"--feature-net effnet-lite0 or fmnist; PPL falls back to the effnet-lite0 distance")
    state = load_state_dict_file(path, f"torchvision's {VGG16_FILE}")
    net = build_uninitialized(lambda: VGG16(with_classifier))
    reference = net.state_dict()
    for key in reference:
        if key not in state:
            raise FormatError(f"{path} lacks {key!r}; is it torchvision's {VGG16_FILE}?")
        if tuple(state[key].shape) != tuple(reference[key].shape):
            raise FormatError(f"{path}: {key} has shape {tuple(state[key].shape)}, expected {tuple(reference[key].shape)}")
    net.load_state_dict({k: state[k] for k in reference})
    return net.eval().requires_grad_(False)


def load_lpips_heads(path: str | os.PathLike = LPIPS_HEADS_FILE) -> list[torch.Tensor]:
    """The five LPIPS v0.1 channel-weight vectors (lengths 64, 128, 256, 512, 512).

    path: safetensors file with keys lin0..lin4.
    """
    from safetensors.torch import load_file

    heads = load_file(str(path))
    return [heads[f"lin{i}"] for i in range(5)]


def unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Scale each spatial position's channel vector to unit length (LPIPS, Zhang et al. 2018 eq. 1).

    x: `[N, C, H, W]` activations.
    eps: added to the norm to avoid division by zero.
    """
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPSDistance(nn.Module):
    """LPIPS-VGG16 v0.1: d(x, y) = sum_l mean_hw || w_l * (f_l(x) - f_l(y)) ||^2 (Zhang et al. 2018 eq. 1)."""

    name = "lpips-vgg16"

    def __init__(self, vgg: VGG16, heads: list[torch.Tensor]):
        """vgg: a loaded VGG16 backbone.
        heads: the five non-negative channel weights from `load_lpips_heads`.
        """
        super().__init__()
        self.vgg = vgg
        for i, w in enumerate(heads):
            self.register_buffer(f"lin{i}", w.view(1, -1, 1, 1).float())

    def scale_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images (no resize; LPIPS is fully convolutional) -> LPIPS input scaling.

        Float input is not clamped, so PPL's eps-sized differences survive in saturated pixels.

        images: `[N, C, H, W]`.
        """
        x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
        x = match_channels(x, 3)
        shift = torch.tensor(_LPIPS_SHIFT, device=x.device).view(1, 3, 1, 1)
        scale = torch.tensor(_LPIPS_SCALE, device=x.device).view(1, 3, 1, 1)
        return (x - shift) / scale

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: image batches of equal shape; returns the distance per pair `[N]`."""
        taps_a = self.vgg.lpips_taps(self.scale_input(a))
        taps_b = self.vgg.lpips_taps(self.scale_input(b))
        total = 0
        for i, (fa, fb) in enumerate(zip(taps_a, taps_b)):
            diff = (unit_normalize(fa) - unit_normalize(fb)).square()
            total = total + (diff * getattr(self, f"lin{i}")).sum(dim=1).mean(dim=(1, 2))
        return total


def load_lpips_vgg16(weights: str | os.PathLike | None = None) -> LPIPSDistance:
    """LPIPS-VGG16 from the user's torchvision VGG16 weights and the shipped v0.1 heads.

    weights: path to `vgg16-397923af.pth`; None = default search paths.
    """
    return LPIPSDistance(load_vgg16(weights, with_classifier=False), load_lpips_heads()).eval()
