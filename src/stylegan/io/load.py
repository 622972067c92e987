"""One entry point for every network file: `load_network` and `load_generator`.

Recognised by content, not by extension:
- our export (`.safetensors` with a stylegan header, see io.export);
- an official NVIDIA training snapshot (`network-snapshot-*.pkl` from stylegan2-ada-pytorch or stylegan3),
  read by io.nvidia_pickle's restricted unpickler: no code from the file runs; networks are rebuilt from
  their class name and init kwargs through an explicit class table, and weights are checked by name and shape.
- an official TensorFlow-era `(G, D, Gs)` pickle (NVlabs/stylegan, stylegan2, stylegan2-ada), told apart from a
  PyTorch snapshot by the globals it names (opcodes walked, nothing built), read by io.tf_pickle's restricted
  unpickler (no TensorFlow, `build_module_src` never runs) and mapped by io.tf_networks' name tables;
  `Gs` becomes `G_ema`.
- a rosinality/stylegan2-pytorch `.pt` checkpoint (train.py or convert_weight.py), read by io.rosinality with
  torch.load(weights_only=True) and mapped through its name table.

Instead of a path, both functions take an http(s) URL, hf://OWNER/REPO/FILE or a name from io.catalog
(`stylegan3-t-ffhqu-256x256`): io.fetch downloads it once into a cache and the file is read as above.
"""
from __future__ import annotations

import os
from typing import Union

import torch
from torch import nn

from ..errors import FormatError, UnsupportedNetworkError, UserInputError
from ..networks.registry import OFFICIAL_CLASS_NAMES, build_network
from .export import load_export, load_state_strict

SNAPSHOT_ROLES = ("G", "D", "G_ema")


def parse_device(device: Union[str, torch.device]) -> torch.device:
    """A torch.device from user input, checked: an unknown name or CUDA without a GPU is a UserInputError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserInputError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device {device!r}: CUDA is not available on this machine; use cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserInputError(f"device {device!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


def _sniff(path: Union[str, os.PathLike]) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserInputError(f"{path}: is a directory; give a network file (.safetensors, .pkl or .pt)") from None
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        from .tf_pickle import is_tf_pickle
        return "tf-pickle" if is_tf_pickle(path) else "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise FormatError(f"{path}: neither a stylegan export (.safetensors), an NVIDIA pickle (.pkl) nor a "
                      f"rosinality checkpoint (.pt); see docs/pretrained.md for the files that load")


def _rebuild_official(foreign, source: str) -> nn.Module:
    key = OFFICIAL_CLASS_NAMES.get(foreign.class_name)
    if key is None:
        raise UnsupportedNetworkError(
            f"{source}: network class {foreign.class_name!r} is not supported (this package rebuilds "
            f"{', '.join(sorted(OFFICIAL_CLASS_NAMES))})")
    if foreign.init_args:
        raise FormatError(f"{source}: {foreign.class_name} was built with positional arguments; cannot rebuild it")
    try:
        module = build_network(key, dict(foreign.init_kwargs))
    except TypeError as exc:
        raise FormatError(f"{source}: cannot rebuild {foreign.class_name} from its stored kwargs ({exc})") from None
    load_state_strict(module, dict(foreign.state_dict), source)
    return module


def load_official_snapshot(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> dict:
    """Read an official snapshot into our modules: {'G', 'D', 'G_ema', 'augment_p', 'training_set_kwargs'}."""
    from .nvidia_pickle import ForeignModule, augment_p, read_nvidia_snapshot

    snapshot = read_nvidia_snapshot(path)
    result = {}
    for role in SNAPSHOT_ROLES:
        foreign = snapshot.get(role)
        if isinstance(foreign, ForeignModule):
            result[role] = _rebuild_official(foreign, f"{path} [{role}]").to(device).eval().requires_grad_(False)
    if "G_ema" not in result:
        raise FormatError(f"{path}: the snapshot holds no G_ema network (keys: {sorted(snapshot)})")
    p = augment_p(snapshot)
    if p is not None:
        result["augment_p"] = p
    if isinstance(snapshot.get("training_set_kwargs"), dict):
        result["training_set_kwargs"] = dict(snapshot["training_set_kwargs"])
    return result


TF_ROLES = {"G": "G", "D": "D", "Gs": "G_ema"}  # official (G, D, Gs) -> our roles


def load_tf_pickle(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> dict:
    """Read an official TensorFlow (G, D, Gs) pickle into our modules: {'G', 'D', 'G_ema'} (G_ema = Gs)."""
    from .tf_networks import build_from_tf
    from .tf_pickle import read_tf_pickle

    nets = read_tf_pickle(path)
    return {ours: build_from_tf(nets[theirs], f"{path} [{theirs}]").to(device) for theirs, ours in TF_ROLES.items()}


def load_network(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu", *,
                 cache_dir: Union[str, os.PathLike, None] = None) -> dict:
    """Load any supported network file: {'G_ema': module, 'G': ..., 'D': ..., plus extras}, all in eval mode.

    path: a file, an http(s) URL, hf://OWNER/REPO/FILE or a catalog name (downloaded once, see io.fetch).
    cache_dir: the download cache root (None: $STYLEGAN_CACHE or ~/.cache/stylegan).
    """
    from .fetch import resolve_network
    from .rosinality import is_torch_checkpoint, load_rosinality

    device = parse_device(device)
    path = resolve_network(path, cache_dir=cache_dir)
    if is_torch_checkpoint(path):  # before _sniff: a legacy torch.save file also starts with a pickle header
        return load_rosinality(path, device)
    kind = _sniff(path)
    if kind == "pickle":
        return load_official_snapshot(path, device)
    if kind == "tf-pickle":
        return load_tf_pickle(path, device)
    result = load_export(path, device)
    if "G_ema" not in result and "G" in result:
        result["G_ema"] = result["G"]
    return result


def load_generator(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu", *,
                   cache_dir: Union[str, os.PathLike, None] = None) -> nn.Module:
    """The generator to sample from (G_ema), in eval mode (path and cache_dir: as load_network)."""
    result = load_network(path, device, cache_dir=cache_dir)
    if "G_ema" not in result:
        raise FormatError(f"{path}: holds no generator")
    return result["G_ema"]
