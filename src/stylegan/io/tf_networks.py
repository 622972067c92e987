"""TensorFlow-era NVIDIA networks (NVlabs/stylegan, stylegan2, stylegan2-ada) -> our modules.

`build_from_tf(net, source)` takes one :class:`TFNetwork` (G, Gs or D of an official pickle, read by
`io.tf_pickle`) and returns the matching network of ours, weights loaded, in eval mode:

| build function                                                    | ours                        | table            |
| ----------------------------------------------------------------- | --------------------------- | ---------------- |
| `G_style` (+ `G_mapping`, `G_synthesis`), NVlabs/stylegan         | `stylegan1.Generator`       | `tf_stylegan1`   |
| `D_basic`, NVlabs/stylegan                                        | `stylegan1.Discriminator`   | `tf_stylegan1`   |
| `G_main` (+ `G_mapping`, `G_synthesis_stylegan2`), NVlabs/stylegan2 | `stylegan2.Generator`     | `tf_stylegan2`   |
| `D_stylegan2`, NVlabs/stylegan2                                   | `stylegan2.Discriminator`   | `tf_stylegan2`   |
| configs B-D: `G_synthesis_stylegan_revised`, `D_stylegan` (lod 0)  | StyleGAN2 'orig'            | `tf_stylegan2`   |
| `G_main` (+ `G_mapping`, `G_synthesis`), NVlabs/stylegan2-ada     | `stylegan2.Generator`       | `tf_stylegan2`   |
| `D_main`, NVlabs/stylegan2-ada                                    | `stylegan2.Discriminator`   | `tf_stylegan2`   |

Two helpers keep the name tables honest: :class:`VariableTable` hands out every TF variable exactly once
(with a shape check) and fails on leftovers, and :func:`resolve_kwargs` merges the stored static kwargs
with the official defaults, refusing kwargs the official build functions do not take.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence

import torch
from torch import nn

from ..errors import FormatError, UnsupportedNetworkError
from .export import load_state_strict
from .tf_record import TFNetwork


class VariableTable:
    """The variables of one TF network (official `Network.vars` names), each handed out exactly once.

    net:    the network.
    source: file name (and role) for messages.
    """

    def __init__(self, net: TFNetwork, source: str):
        self.source = source
        self.vars = net.vars()
        self.used: Dict[str, str] = {}

    def has(self, name: str) -> bool:
        return name in self.vars

    def take(self, name: str, shape: Sequence[int]) -> torch.Tensor:
        """Variable `name` as float32, checked to have `shape` (a one-element variable may be a scalar)."""
        if name not in self.vars:
            raise FormatError(f"{self.source}: the network has no variable {name!r} (it has "
                              f"{len(self.vars)} variables, e.g. {sorted(self.vars)[:3]})")
        if name in self.used:
            raise AssertionError(f"name table bug: {name} used twice")
        value = torch.as_tensor(self.vars[name]).to(torch.float32)
        if list(shape) == [] and value.numel() == 1:
            value = value.reshape([])
        if list(value.shape) != list(shape):
            raise FormatError(f"{self.source}: variable {name} has shape {list(value.shape)}, the network built "
                              f"from the stored kwargs expects {list(shape)}")
        self.used[name] = "taken"
        return value

    def skip(self, name: str, shape: Sequence[int], reason: str) -> None:
        """Consume `name` without loading it (e.g. a value the official code overwrites at run time)."""
        self.take(name, shape)
        self.used[name] = reason

    def check_all_used(self) -> None:
        left = [name for name in self.vars if name not in self.used]
        if left:
            raise UnsupportedNetworkError(f"{self.source}: {len(left)} variable(s) have no place in the network "
                                          f"built from the stored kwargs: {left[:5]}{' ...' if len(left) > 5 else ''}")


def resolve_kwargs(net: TFNetwork, source: str, defaults: Dict[str, object], runtime: Iterable[str] = ()) -> dict:
    """`net.static_kwargs` over the official `defaults` of its build function(s).

    defaults: every kwarg the official build functions take that changes the network, with its default.
    runtime:  kwargs that only choose run-time behaviour (accepted and dropped, e.g. `randomize_noise`).
    A kwarg in neither comes from modified code: refused, naming it (the official code would ignore it,
    but a network built by other code may depend on it).
    """
    runtime = set(runtime)
    unknown = sorted(k for k in net.static_kwargs if k not in defaults and k not in runtime)
    if unknown:
        raise UnsupportedNetworkError(
            f"{source}: {net.name} ({net.build_func_name}) was built with kwarg(s) {unknown} that NVIDIA's "
            f"{net.build_func_name} does not take; the file comes from modified code this package cannot map")
    return {**defaults, **{k: v for k, v in net.static_kwargs.items() if k in defaults}}


def refuse(condition: bool, net: TFNetwork, source: str, kwarg: str, value, why: str) -> None:
    """Raise UnsupportedNetworkError naming `kwarg` of `net` when `condition` holds."""
    if condition:
        raise UnsupportedNetworkError(f"{source}: {net.name} ({net.build_func_name}) has {kwarg}={value!r}, "
                                      f"which this package does not support: {why}")


def tf_weight_coef(gain: float, fan_in: int, use_wscale: bool, lrmul: float) -> float:
    """The official `get_weight` run-time multiplier: he_std * lrmul with use_wscale, else lrmul."""
    return gain / math.sqrt(fan_in) * lrmul if use_wscale else lrmul


def rescale(value: torch.Tensor, factor: float) -> torch.Tensor:
    """`value * factor`, untouched when the factor is 1 (exactly representable weights stay exact)."""
    return value if abs(factor - 1.0) < 1e-12 else value * factor


def conv_weight(value: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """TF [kh, kw, in, out] -> ours [out, in, kh, kw]; `flip` rotates the kernel by 180 degrees."""
    value = value.permute(3, 2, 0, 1)
    return value.flip([2, 3]) if flip else value


def finish(module: nn.Module, state: Dict[str, torch.Tensor], table: VariableTable, source: str) -> nn.Module:
    """Check every variable was used, load `state` strictly and freeze `module` for inference."""
    table.check_all_used()
    load_state_strict(module, {k: v.contiguous() for k, v in state.items()}, source)
    return module.eval().requires_grad_(False)


def build_from_tf(net: TFNetwork, source: str) -> nn.Module:
    """Our network equivalent to the official TF network `net` (weights loaded, eval mode, frozen).

    net:    G, Gs or D of an official TensorFlow pickle.
    source: file name (and role) used in error messages.
    """
    func = net.build_func_name
    if func in ("G_style", "D_basic"):
        from . import tf_stylegan1
        build = tf_stylegan1.generator_from_tf if func == "G_style" else tf_stylegan1.discriminator_from_tf
        return build(net, source)
    if func in ("G_main", "D_stylegan2", "D_stylegan", "D_main"):
        from . import tf_stylegan2
        build = tf_stylegan2.generator_from_tf if func == "G_main" else tf_stylegan2.discriminator_from_tf
        return build(net, source)
    if func in ("G_mapping", "G_synthesis", "G_synthesis_stylegan2", "G_synthesis_stylegan_revised"):
        raise UnsupportedNetworkError(f"{source}: {net.name} is a sub-network ({func}); load the whole generator "
                                      f"(G or Gs), which holds it as a component")
    raise UnsupportedNetworkError(f"{source}: {net.name} was built by {func!r}, which this package does not map "
                                  f"(supported: G_style, D_basic, G_main, D_stylegan2, D_stylegan, D_main)")


def component(net: TFNetwork, key: str, source: str, expected: Optional[Sequence[str]] = None) -> TFNetwork:
    """`net.components[key]`, checked to exist (and to be built by one of `expected`)."""
    comp = net.components.get(key)
    if comp is None:
        raise FormatError(f"{source}: {net.name} ({net.build_func_name}) has no '{key}' component "
                          f"(components: {sorted(net.components)})")
    if expected is not None and comp.build_func_name not in expected:
        raise UnsupportedNetworkError(f"{source}: {net.name}'s {key} network is built by {comp.build_func_name!r}; "
                                      f"this package maps {' or '.join(expected)}")
    return comp
