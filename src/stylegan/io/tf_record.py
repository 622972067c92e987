"""One network of a TensorFlow-era NVIDIA pickle, as plain data.

NVlabs/stylegan, stylegan2 and stylegan2-ada (TensorFlow) save `(G, D, Gs)` as `dnnlib.tflib.Network`
objects. Their pickled state is a dict: `version`, `name`, `static_kwargs`, `components`,
`build_module_src`, `build_func_name`, `variables`. `io.tf_pickle` reads that state without running
anything and fills a :class:`TFNetwork`; the name tables (`io.tf_stylegan1`, `io.tf_stylegan2`) turn one
into our modules. `build_module_src` is not kept: it is code, and nothing here needs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import torch


@dataclass
class TFNetwork:
    """A `dnnlib.tflib.Network` as data.

    name:            the network's name ('G', 'D', 'Gs', 'G_mapping', 'G_synthesis', ...).
    build_func_name: the official build function ('G_style', 'G_main', 'D_basic', 'D_stylegan2', ...).
    version:         the pickle state version (3 in NVlabs/stylegan, 4 in stylegan2, 5 in stylegan2-ada).
    static_kwargs:   the build function's keyword arguments, plain Python data.
    components:      sub-networks by key ('mapping', 'synthesis' for generators; empty otherwise).
    variables:       this network's own variables by local name, as stored (unscaled, TF layouts
                     [kh, kw, in, out] and [in, out]), float32 tensors, in file order.
    """

    name: str
    build_func_name: str
    version: int
    static_kwargs: dict
    components: Dict[str, "TFNetwork"] = field(default_factory=dict)
    variables: Dict[str, torch.Tensor] = field(default_factory=dict)

    def vars(self) -> Dict[str, torch.Tensor]:
        """Every variable as the official `Network.vars` names it: own variables by local name, then each
        component's prefixed with the component's *name* (e.g. 'G_mapping/Dense0/weight', not 'mapping/...')."""
        result = dict(self.variables)
        for comp in self.components.values():
            for key, value in comp.vars().items():
                result[f"{comp.name}/{key}"] = value
        return result
