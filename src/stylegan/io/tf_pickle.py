"""Read NVIDIA's TensorFlow-era network pickles without TensorFlow and without executing them.

NVlabs/stylegan (v1), NVlabs/stylegan2 and NVlabs/stylegan2-ada (TensorFlow) save snapshots with
``pickle.dump((G, D, Gs), f)`` of ``dnnlib.tflib.Network`` objects. A Network pickles as that class
plus a state dict (``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
``build_func_name``, ``variables``); the official ``__setstate__`` ``exec``s ``build_module_src`` (a
copy of the network file), so ``pickle.load`` runs whatever source the file carries. State versions:
3 (stylegan), 4 (stylegan2), 5 (stylegan2-ada, whose ``__getstate__`` adds ``input_shapes``,
``output_shapes``, ``input_names`` and ``output_names``: checked to be plain data, not kept); the
official reader also takes 2 (no ``components``).

Here the file is read by the restricted unpickler of io.restricted_unpickler with an allowlist of
exactly what real TF snapshots name: ``dnnlib.tflib.network.Network`` (a record of ours that keeps
the state dict as data) and numpy number arrays, dtypes and scalars (numpy 1 and numpy 2 spellings).
``build_module_src`` is dropped unread; object arrays and every other global are refused before
anything is called.

    nets = read_tf_pickle("network-snapshot-010000.pkl")   # {'G': TFNetwork, 'D': ..., 'Gs': ...}
    nets["Gs"].build_func_name, nets["Gs"].static_kwargs["resolution"]
    nets["Gs"].vars()["G_synthesis/4x4/Const/const"].shape

Building our modules from a TFNetwork is io.tf_networks.build_from_tf.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Dict, Union

import torch

from stylegan.errors import FormatError, UnsafePickleError
from stylegan.io.restricted_unpickler import (
    NUMPY_GLOBALS, Inert, NumpyArrayRecord, Source, check_header, describe, is_int, load_restricted, pickle_errors,
    pickle_globals, read_source, require,
)
from stylegan.io.tf_record import TFNetwork

__all__ = ["read_tf_pickle", "is_tf_pickle", "TF_ROLES"]

TF_ROLES = ("G", "D", "Gs")  # the order of the official (G, D, Gs) tuple
STATE_VERSIONS = (2, 3, 4, 5)  # the official __setstate__ takes these (3: stylegan, 4: stylegan2, 5: stylegan2-ada)
IO_KEYS = ("input_shapes", "output_shapes", "input_names", "output_names")  # version 5's additions
WHAT = "a TensorFlow StyleGAN pickle"
NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")


class _NetworkRecord(Inert):
    """Stands for ``dnnlib.tflib.network.Network``: NEWOBJ makes it, one BUILD gives it its state dict."""

    __slots__ = ("state",)

    def __setstate__(self, state):
        require(not hasattr(self, "state"), "a Network in the pickle is given its state twice")
        require(isinstance(state, dict), f"a Network's state is a {type(state).__name__}, not a dict")
        self.state = state


_TF_GLOBALS = MappingProxyType({**NUMPY_GLOBALS, NETWORK_GLOBAL: _NetworkRecord})  # everything a TF pickle may name


def _refusal(module: str, name: str) -> UnsafePickleError:
    hint = "Only (G, D, Gs) pickles of NVlabs/stylegan, stylegan2 and stylegan2-ada (TensorFlow) are read here."
    if module.split(".")[0] in ("torch", "torch_utils"):
        hint = "This looks like a PyTorch snapshot: read it with stylegan.load_network or read_nvidia_snapshot."
    return UnsafePickleError(
        f"the pickle references the global {module}.{name}, which is not on the allowlist for "
        f"TensorFlow StyleGAN pickles; nothing from the file was executed. {hint}"
    )


class _Converter:
    """Turns unpickled Network records into TFNetworks, checking every field."""

    def __init__(self):
        self.active: set[int] = set()  # records on the current path, to catch reference cycles

    def network(self, record, where: str) -> TFNetwork:
        require(isinstance(record, _NetworkRecord), f"{where} is {describe(record)}, not a Network")
        require(hasattr(record, "state"), f"{where}: a Network without state")
        require(id(record) not in self.active, f"{where}: the pickle contains a reference cycle of Networks")
        self.active.add(id(record))
        state = record.state
        version = state.get("version")
        require(is_int(version) and version in STATE_VERSIONS,
                f"{where}: Network state version {version!r:.20}; the official code writes {STATE_VERSIONS}")
        name, func = state.get("name"), state.get("build_func_name")
        require(isinstance(name, str) and name, f"{where}: the Network has no name")
        require(isinstance(func, str) and func, f"{where} ({name}): the Network has no build_func_name")
        where = where if name == where else f"{where} ({name})"
        static_kwargs = self.plain(state.get("static_kwargs"), f"{where}.static_kwargs")
        require(isinstance(static_kwargs, dict) and all(isinstance(k, str) for k in static_kwargs),
                f"{where}: static_kwargs is not a dict of keyword arguments")
        for key in IO_KEYS:  # version 5: the network's input/output names and shapes (e.g. [None, 512]), unused
            self.plain(state.get(key), f"{where}.{key}")
        components = state.get("components", {})  # version 2 has none
        require(isinstance(components, dict) and all(isinstance(k, str) for k in components),
                f"{where}: components is not a dict of networks")
        net = TFNetwork(
            name=name, build_func_name=func, version=version, static_kwargs=static_kwargs,
            components={key: self.network(comp, f"{where}.components[{key!r}]") for key, comp in components.items()},
            variables=self.variables(state.get("variables"), where),
        )
        self.active.discard(id(record))
        return net

    def variables(self, pairs, where: str) -> Dict[str, torch.Tensor]:
        require(isinstance(pairs, (list, tuple)), f"{where}: variables is not a list of (name, value) pairs")
        result: Dict[str, torch.Tensor] = {}
        for pair in pairs:
            ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)
            require(ok, f"{where}: a variables entry is not a (name, value) pair")
            name, value = pair
            require(name not in result, f"{where}: variable {name} appears twice")
            result[name] = _variable_tensor(value, f"{where}: variable {name}")
        return result

    def plain(self, obj, where: str):
        """Static kwargs as plain Python data (numbers, strings, lists, dicts)."""
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, NumpyArrayRecord):
            require(obj.array is not None, f"{where}: a numpy array without data")
            return obj.array.tolist()
        require(isinstance(obj, (dict, list, tuple)), f"{where} holds {describe(obj)}, not plain data")
        require(id(obj) not in self.active, f"{where}: the pickle contains a reference cycle")
        self.active.add(id(obj))
        if isinstance(obj, dict):
            result = {self.plain(k, where): self.plain(v, f"{where}[{k!r:.40}]") for k, v in obj.items()}
        else:
            result = type(obj)(self.plain(v, where) for v in obj)
        self.active.discard(id(obj))
        return result


def _variable_tensor(value, where: str) -> torch.Tensor:
    """A stored variable (numpy float array, or a numpy float scalar for 0-d ones) as a float32 tensor."""
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    require(isinstance(value, NumpyArrayRecord) and value.array is not None,
            f"{where} is {describe(value)}, not a numpy array")
    require(value.array.dtype.kind == "f", f"{where} has dtype {value.array.dtype}; TF StyleGAN variables are floats")
    return torch.from_numpy(value.array).to(torch.float32)


def read_tf_pickle(source: Source) -> Dict[str, TFNetwork]:
    """Read an official TensorFlow StyleGAN / StyleGAN2 / StyleGAN2-ADA pickle without executing it.

    source: path of the .pkl (e.g. ``network-snapshot-*.pkl``, ``stylegan2-ffhq-config-f.pkl``), or a
            binary file object.
    Returns ``{'G': TFNetwork, 'D': TFNetwork, 'Gs': TFNetwork}`` (the official tuple order).
    Raises UserInputError (missing file), FormatError (truncated, corrupt, not such a pickle) or
    UnsafePickleError (the file names a global outside the allowlist, or holds an object array).
    """
    data, name = read_source(source, WHAT)
    check_header(data, name, WHAT)
    with pickle_errors(name, WHAT):
        raw = load_restricted(data, _TF_GLOBALS, _refusal)
        ok = isinstance(raw, tuple) and len(raw) == len(TF_ROLES) and all(isinstance(n, _NetworkRecord) for n in raw)
        if not ok:
            what = f"a {len(raw)}-tuple" if isinstance(raw, tuple) else describe(raw)
            raise FormatError(f"the pickle holds {what}, but TensorFlow StyleGAN pickles hold a (G, D, Gs) "
                              "tuple of networks")
        converter = _Converter()
        return {role: converter.network(record, role) for role, record in zip(TF_ROLES, raw)}


def is_tf_pickle(path: Union[str, os.PathLike]) -> bool:
    """Whether the pickle at `path` names a ``dnnlib.tflib`` global (opcodes walked, nothing built).

    The walk stops at the first such global (TF pickles name ``dnnlib.tflib.network.Network`` first), so a
    truncated TF pickle is still recognised; anything pickletools cannot walk before that is not one.
    """
    try:
        with open(path, "rb") as f:
            return any(module.startswith("dnnlib.tflib") for module, _ in pickle_globals(f))
    except (ValueError, EOFError, OSError):
        return False
