"""Which network classes exist, by short name, and how to build one from stored kwargs.

Exports store the short name (e.g. 'stylegan2.Generator') and the constructor kwargs; official snapshots
store NVIDIA's dotted class names, mapped here through an explicit table.
"""
from __future__ import annotations

from typing import Dict, Type

from torch import nn

from ..errors import UnsupportedNetworkError
from .discriminator import Discriminator
from .stylegan1 import Generator1
from .stylegan1_discriminator import Discriminator1
from .stylegan2 import Generator
from .stylegan3 import Generator3


def network_classes() -> Dict[str, Type[nn.Module]]:
    """Short name -> class for every network the export format can hold."""
    return {
        "stylegan2.Generator": Generator,
        "stylegan2.Discriminator": Discriminator,
        "stylegan1.Generator": Generator1,
        "stylegan1.Discriminator": Discriminator1,
        "stylegan3.Generator": Generator3,
    }


# NVIDIA's class names (stylegan3 and stylegan2-ada-pytorch) -> ours.
OFFICIAL_CLASS_NAMES: Dict[str, str] = {
    "training.networks_stylegan2.Generator": "stylegan2.Generator",
    "training.networks_stylegan2.Discriminator": "stylegan2.Discriminator",
    "training.networks.Generator": "stylegan2.Generator",
    "training.networks.Discriminator": "stylegan2.Discriminator",
    "training.networks_stylegan3.Generator": "stylegan3.Generator",
}


def class_key(module: nn.Module) -> str:
    """The short name under which `module`'s class is stored."""
    for key, cls in network_classes().items():
        if type(module) is cls:
            return key
    raise UnsupportedNetworkError(f"{type(module).__name__} is not a network class the export format knows")


def build_network(key: str, kwargs: dict) -> nn.Module:
    """Instantiate network `key` with constructor `kwargs` (no weights loaded)."""
    classes = network_classes()
    if key not in classes:
        raise UnsupportedNetworkError(f"unknown network class {key!r}; this version supports {sorted(classes)}")
    return classes[key](**kwargs)
