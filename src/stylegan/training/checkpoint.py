"""Training checkpoints: everything needed to resume exactly, in one safetensors file, no pickle.

Tensors (network weights, optimizer moments, RNG states) are stored by name; everything else (counters,
ADA statistics, the options of the run, optimizer hyperparameters) goes into a JSON document in the
safetensors metadata. Loading never unpickles anything.

Layout of tensor names:
  net.<role>.<state key>           G, G_ema, D (and augment_pipe)
  opt.<name>.state.<idx>.<key>     Adam moments and step of optimizer <name>
  rng.<name>                       uint8 RNG states
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import FormatError, UserInputError
from ..io.atomic import atomic_path

CHECKPOINT_FORMAT = "stylegan-training-checkpoint"
CHECKPOINT_VERSION = 1


def _flatten_optimizer(name: str, opt_state: dict, tensors: Dict[str, torch.Tensor]) -> dict:
    """Put tensors of an optimizer state_dict into `tensors`; return the JSON-able remainder."""
    plain_state = {}
    for idx, entry in opt_state["state"].items():
        plain_entry = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{name}.state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_entry[key] = value
        plain_state[str(idx)] = plain_entry
    return {"state": plain_state, "param_groups": opt_state["param_groups"]}


def _unflatten_optimizer(name: str, plain: dict, tensors: Dict[str, torch.Tensor]) -> dict:
    state = {int(idx): dict(entry) for idx, entry in plain["state"].items()}
    prefix = f"opt.{name}.state."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[field] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(path: Union[str, os.PathLike], modules: Dict[str, torch.nn.Module],
                    optimizers: Dict[str, torch.optim.Optimizer], rng_states: Dict[str, torch.Tensor],
                    state: dict) -> None:
    """Write a checkpoint atomically; the previous file stays in place until the new one is complete."""
    tensors: Dict[str, torch.Tensor] = {}
    for role, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"net.{role}.{key}"] = value.detach().cpu().contiguous()
    opt_plain = {name: _flatten_optimizer(name, opt.state_dict(), tensors) for name, opt in optimizers.items()}
    for name, value in rng_states.items():
        tensors[f"rng.{name}"] = value.detach().cpu().contiguous()
    header = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "state": state,
              "optimizers": opt_plain}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"stylegan": json.dumps(header)})


def load_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """Read a checkpoint: {'modules': {role: state_dict}, 'optimizers': {name: state_dict}, 'rng': {...}, 'state': {...}}."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such checkpoint")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            header = json.loads((f.metadata() or {})["stylegan"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable training checkpoint ({exc})") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: not a training checkpoint (format {header.get('format')!r})")
    modules: Dict[str, Dict[str, torch.Tensor]] = {}
    rng = {}
    for key, value in tensors.items():
        if key.startswith("net."):
            role, name = key[4:].split(".", 1)
            modules.setdefault(role, {})[name] = value
        elif key.startswith("rng."):
            rng[key[4:]] = value
    optimizers = {name: _unflatten_optimizer(name, plain, tensors) for name, plain in header["optimizers"].items()}
    return {"modules": modules, "optimizers": optimizers, "rng": rng, "state": header["state"]}
