"""Our export format: one `.safetensors` file, no pickle.

Tensors are stored under `<role>.<state-dict key>` (roles: G, G_ema, D). The safetensors metadata header holds
one JSON document under the key `stylegan`:

    {"format": "stylegan-export", "format_version": 1,
     "networks": {"G_ema": {"class": "stylegan2.Generator", "kwargs": {...}}, ...},
     "extra": {"augment_p": 0.125, "training_set_kwargs": {...}, ...}}

Loading rebuilds each network from its class name (see networks.registry) and kwargs, then loads the tensors
by name with strict key and shape checks. Nothing in the file is executed.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import FormatError, UserInputError
from ..networks.registry import build_network, class_key
from .atomic import atomic_path

FORMAT_NAME = "stylegan-export"
FORMAT_VERSION = 1
METADATA_KEY = "stylegan"
ROLES = ("G", "G_ema", "D")


def save_network(path: Union[str, os.PathLike], networks: Dict[str, nn.Module], extra: Optional[dict] = None) -> None:
    """Write `networks` (role -> module, roles among G, G_ema, D) and JSON-able `extra` to `path` atomically."""
    tensors: Dict[str, torch.Tensor] = {}
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "networks": {}, "extra": extra or {}}
    for role, module in networks.items():
        if role not in ROLES:
            raise ValueError(f"unknown network role {role!r}; use one of {ROLES}")
        if module is None:
            continue
        header["networks"][role] = {"class": class_key(module), "kwargs": module.init_kwargs}
        for key, value in module.state_dict().items():
            tensors[f"{role}.{key}"] = value.detach().to("cpu").contiguous()
    metadata = {METADATA_KEY: json.dumps(header, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_header(path: Union[str, os.PathLike]) -> dict:
    """The JSON header of an export, validated; raises FormatError for anything else."""
    try:
        with open(path, "rb") as f:
            size_bytes = f.read(8)
            if len(size_bytes) < 8:
                raise FormatError(f"{path}: file is too short to be a safetensors export ({len(size_bytes)} bytes)")
            size = int.from_bytes(size_bytes, "little")
            if size > 100_000_000:
                raise FormatError(f"{path}: not a safetensors file (header size {size} is implausible)")
            raw = f.read(size)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    if len(raw) < size:
        raise FormatError(f"{path}: truncated safetensors header; the file is incomplete — copy or export it again")
    try:
        meta = json.loads(raw).get("__metadata__") or {}
        header = json.loads(meta[METADATA_KEY])
    except (ValueError, KeyError, AttributeError, TypeError):
        raise FormatError(f"{path}: a safetensors file, but not a stylegan export (no '{METADATA_KEY}' metadata); "
                          f"convert official snapshots with `stylegan convert`") from None
    if header.get("format") != FORMAT_NAME:
        raise FormatError(f"{path}: unknown format {header.get('format')!r}")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise FormatError(f"{path}: format version {header.get('format_version')} is newer than this package "
                          f"supports ({FORMAT_VERSION}); upgrade stylegan")
    return header


def load_state_strict(module: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `module`, checking that names and shapes match one to one."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise FormatError(f"{source}: weights do not match the network: missing {missing[:5]}"
                          f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                          f"{' ...' if len(unexpected) > 5 else ''}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise FormatError(f"{source}: {key} has shape {list(value.shape)}, the network expects "
                              f"{list(expected[key].shape)}")
    module.load_state_dict(state, strict=True)


def load_export(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> dict:
    """Read an export: {'G': ..., 'G_ema': ..., 'D': ... (modules, where present), **extra}."""
    header = read_header(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise FormatError(f"{path}: cannot read the tensors ({exc}); the file is truncated or corrupt") from None
    result = dict(header.get("extra", {}))
    for role, spec in header["networks"].items():
        module = build_network(spec["class"], spec["kwargs"]).to(device)
        prefix = f"{role}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_state_strict(module, state, f"{path} [{role}]")
        result[role] = module.eval().requires_grad_(False)
    return result
