"""Read official NVIDIA training snapshots (``network-snapshot-*.pkl``) without executing them.

The official training loops (NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3) save
``pickle.dump(dict(G=..., D=..., G_ema=..., augment_pipe=..., training_set_kwargs=...))``.
Each network is a "persistent" object: the pickle calls
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, which in the official code
``exec``s ``meta['module_src']`` (a copy of the network source) and then builds the module.
Loading such a file with ``pickle.load`` runs whatever code the file carries.

Here the pickle is read by the restricted unpickler of io.restricted_unpickler (shared with the
TensorFlow reader, io.tf_pickle): every global the file names is looked up in an explicit allowlist
and replaced by a small function of ours that only builds data (dicts, tensors, numbers, numpy number
arrays such as StyleGAN3's ``in_size``). ``module_src`` is never read. Any other global raises
:class:`UnsafePickleError` at lookup time, before it can be called.

    snapshot = read_nvidia_snapshot("network-snapshot-000200.pkl")
    g = snapshot["G_ema"]           # ForeignModule
    g.class_name                    # 'training.networks_stylegan2.Generator'
    g.init_kwargs["z_dim"], g.state_dict["mapping.fc0.weight"].shape
    augment_p(snapshot)             # ADA probability, e.g. 0.125

Turning a ForeignModule into one of our networks (name tables, shape checks) is a separate step.
"""

from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, BinaryIO

import numpy as np
import torch

from stylegan.errors import FormatError, UnsafePickleError, UserInputError
from stylegan.io.restricted_unpickler import (
    NUMPY_GLOBALS, Inert, NumpyArrayRecord, NumpyDType, RestrictedUnpickler, Source, check_header,
    check_memo_indices, describe, is_int, load_restricted, pickle_errors, read_source, require,
)

__all__ = ["ForeignModule", "read_nvidia_snapshot", "augment_p"]

NETWORK_KEYS = ("G", "D", "G_ema")  # a snapshot must hold at least one of these networks


@dataclass
class ForeignModule:
    """A network from an official snapshot, as data: what to build and which weights to load.

    class_name:  official dotted class name, e.g. 'training.networks_stylegan2.Generator'.
    init_args:   positional constructor arguments as saved by the official persistence wrapper.
    init_kwargs: keyword constructor arguments; plain dicts/lists/numbers/strings throughout.
    state_dict:  parameters and persistent buffers of the module and all its submodules, with
                 the dotted names and order of ``torch.nn.Module.state_dict()``.
    attributes:  other public attributes of the top module (z_dim, num_ws, training, ...).
    """

    class_name: str
    init_args: tuple
    init_kwargs: dict
    state_dict: dict[str, torch.Tensor]
    attributes: dict


# ---------------------------------------------------------------------------------------------
# Records (io.restricted_unpickler.Inert: the unpickler can neither call nor set state on them).


class _PersistentRecord(Inert):
    """One official persistent object: its bare class name and its ``__dict__``."""

    __slots__ = ("class_name", "state")

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state


class _TensorRecord(Inert):
    """A tensor or parameter, wrapped so that the pickle cannot call Tensor.__setstate__."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class _StorageRecord(Inert):
    """A typed storage: a flat tensor of ``numel`` elements (filled once its bytes are read)."""

    __slots__ = ("dtype", "numel", "flat", "view_of")

    def __init__(self, dtype: torch.dtype, numel: int, view_of: tuple | None = None):
        self.dtype = dtype
        self.numel = numel
        self.flat: torch.Tensor | None = None
        self.view_of = view_of  # (root _StorageRecord, element offset) for ancient storage views


class _StorageType(Inert):
    """Stands for ``torch.FloatStorage`` etc. inside a legacy storage stream."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _EasyDict(dict):
    """Stands for ``dnnlib.util.EasyDict`` (a dict with attribute access); turned into a dict."""

    def __setstate__(self, state):
        if state:  # EasyDict keeps everything in the dict itself; its instance state is empty.
            raise FormatError("an EasyDict in the pickle carries unexpected instance state")


# ---------------------------------------------------------------------------------------------
# Safe stand-ins for the globals an official snapshot references. Each checks its arguments.


def _reconstruct_persistent_obj(meta):
    """Record class name and state of a persistent object. ``meta['module_src']`` is never read."""
    require(isinstance(meta, dict), "_reconstruct_persistent_obj expects a meta dict")
    require(meta.get("type") == "class", f"persistent object of type {meta.get('type')!r:.40}; only 'class' is known")
    require(is_int(meta.get("version")), "persistent object meta has no integer 'version'")
    class_name = meta.get("class_name")
    require(isinstance(class_name, str) and class_name.isidentifier(), f"bad persistent class name {class_name!r:.60}")
    state = meta.get("state")
    require(isinstance(state, dict), f"persistent object {class_name} has no state dict")
    return _PersistentRecord(class_name, state)


def _check_hooks(backward_hooks, where: str) -> None:
    require(isinstance(backward_hooks, dict), f"{where}: backward_hooks must be a dict")
    if backward_hooks:
        raise UnsafePickleError(f"{where}: the pickle attaches backward hooks (code) to a tensor")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """A tensor viewing ``storage``, with every index checked to stay inside it."""
    where = "_rebuild_tensor_v2"
    require(isinstance(storage, _StorageRecord), f"{where}: first argument is not a storage")
    require(is_int(storage_offset) and storage_offset >= 0, f"{where}: bad storage offset {storage_offset!r:.40}")
    for label, dims in (("size", size), ("stride", stride)):
        ok = isinstance(dims, (tuple, list)) and all(is_int(d) and d >= 0 for d in dims)
        require(ok, f"{where}: bad {label} {dims!r:.80}")
    require(len(size) == len(stride), f"{where}: size {tuple(size)} and stride {tuple(stride)} differ in length")
    require(isinstance(requires_grad, bool), f"{where}: requires_grad must be a bool")
    _check_hooks(backward_hooks, where)
    require(metadata is None or isinstance(metadata, dict), f"{where}: bad metadata")
    if all(s > 0 for s in size):
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        require(last < storage.numel,
                 f"{where}: tensor of size {tuple(size)} reaches element {last} of a storage of {storage.numel}")
    if storage.flat is None:
        raise FormatError(f"{where}: storage has no data")
    return _TensorRecord(torch.as_strided(storage.flat, tuple(size), tuple(stride), storage_offset))


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """A parameter is just its tensor here; ``state`` (a parameter's __dict__) is dropped."""
    require(isinstance(data, _TensorRecord), "_rebuild_parameter: first argument is not a tensor")
    require(isinstance(requires_grad, bool), "_rebuild_parameter: requires_grad must be a bool")
    _check_hooks(backward_hooks, "_rebuild_parameter")
    require(state is None or isinstance(state, dict), "_rebuild_parameter: bad parameter state")
    return data


def _load_from_bytes(blob):
    require(isinstance(blob, (bytes, bytearray)), "_load_from_bytes expects bytes")
    return _read_legacy_storage(bytes(blob))


def _ordered_dict(*args):
    require(not args, "OrderedDict is called with arguments; official snapshots fill it item by item")
    return {}


def _set(items=()):
    require(isinstance(items, (list, tuple)), "set() is called with a non-list argument")
    return set(items)


def _frozenset(items=()):
    require(isinstance(items, (list, tuple)), "frozenset() is called with a non-list argument")
    return frozenset(items)


def _codecs_encode(text, encoding="utf-8"):
    """How protocol-2 pickles spell a bytes object."""
    ok = isinstance(text, str) and encoding in ("latin1", "latin-1")
    require(ok, "_codecs.encode is used for something other than bytes")
    return text.encode("latin-1")


# (module, qualified name) -> our stand-in. Nothing else may be named by a snapshot.
_SNAPSHOT_GLOBALS = MappingProxyType({
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    **NUMPY_GLOBALS,  # dtypes, scalars (weight_gain, ...) and number arrays (StyleGAN3's in_size, ...)
    ("builtins", "set"): _set,  # pickle protocols 2 and 3 spell sets this way
    ("builtins", "frozenset"): _frozenset,
    ("__builtin__", "set"): _set,  # protocol 2 written with fix_imports
    ("__builtin__", "frozenset"): _frozenset,
    ("_codecs", "encode"): _codecs_encode,
})

_STORAGE_DTYPES = MappingProxyType({
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
})


def _refusal(module: str, name: str) -> UnsafePickleError:
    hint = "Only StyleGAN2/StyleGAN2-ADA/StyleGAN3 PyTorch training snapshots can be read."
    if module.startswith("dnnlib.tflib"):
        hint = ("This looks like a TensorFlow-era StyleGAN pickle: read it with stylegan.load_network or "
                "stylegan.io.tf_pickle.read_tf_pickle.")
    return UnsafePickleError(
        f"the pickle references the global {module}.{name}, which is not on the allowlist for "
        f"NVIDIA snapshots; nothing from the file was executed. {hint}"
    )


# ---------------------------------------------------------------------------------------------
# Legacy (non-zip) torch.save streams, as found in the bytes handed to _load_from_bytes:
# pickle(magic) pickle(1001) pickle(sys_info) pickle(storage, via persistent id) pickle(keys)
# then per key: int64 little-endian element count + raw little-endian data.

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


_STORAGE_GLOBALS = MappingProxyType({
    (module, name): _StorageType(dtype) for module in ("torch", "torch.cuda") for name, dtype in _STORAGE_DTYPES.items()
})


class _LegacyStorageUnpickler(RestrictedUnpickler):
    """Unpickler for one legacy storage stream: globals only ``torch.<Type>Storage``, storages by persistent id."""

    def __init__(self, file: BinaryIO, storages: dict):
        super().__init__(file, _STORAGE_GLOBALS, _refusal)
        self.storages = storages  # key -> root _StorageRecord, shared by the stream's pickles

    def persistent_load(self, pid):
        ok = isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
        require(ok, f"unexpected persistent id {pid!r:.80} in a torch storage stream")
        _, storage_type, key, location, numel, view = pid
        require(isinstance(storage_type, _StorageType), "persistent id names no storage type")
        require(isinstance(key, str) and isinstance(location, str), "bad storage key or location")
        require(is_int(numel) and numel >= 0, f"bad storage size {numel!r:.40}")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _StorageRecord(storage_type.dtype, numel)
        require(root.dtype == storage_type.dtype and root.numel == numel, f"storage {key} is declared twice")
        if view is None:
            return root
        # torch < 1.x storage views: (view key, element offset, element count).
        ok = isinstance(view, tuple) and len(view) == 3 and is_int(view[1]) and is_int(view[2])
        require(ok and 0 <= view[1] and 0 <= view[2] and view[1] + view[2] <= numel, f"bad storage view {view!r:.80}")
        return _StorageRecord(root.dtype, view[2], view_of=(root, view[1]))


def _read_legacy_storage(blob: bytes) -> _StorageRecord:
    stream = io.BytesIO(blob)
    storages: dict[str, _StorageRecord] = {}

    def load():
        start = stream.tell()
        check_memo_indices(stream, "storage stream")
        stream.seek(start)
        return _LegacyStorageUnpickler(stream, storages).load()

    require(load() == _LEGACY_MAGIC, "a storage is not a torch.save stream (wrong magic number)")
    require(load() == _LEGACY_PROTOCOL, "a storage stream has an unknown torch.save protocol version")
    sys_info = load()
    require(isinstance(sys_info, dict), "a storage stream has no sys_info")
    require(sys_info.get("little_endian") is True, "a storage stream was written big-endian; not supported")
    result = load()
    require(isinstance(result, _StorageRecord), "a storage stream holds something other than a storage")
    keys = load()
    ok = isinstance(keys, list) and all(isinstance(k, str) and k in storages for k in keys)
    require(ok, "a storage stream has a bad key list")
    require(sorted(set(keys)) == sorted(storages), "a storage stream lacks data for some storages")
    for key in keys:
        root = storages[key]
        head = stream.read(8)
        require(len(head) == 8, "a storage stream is truncated")
        (count,) = struct.unpack("<q", head)
        require(count == root.numel, f"storage {key} holds {count} elements, its header says {root.numel}")
        itemsize = torch.empty((), dtype=root.dtype).element_size()
        data = stream.read(count * itemsize)
        require(len(data) == count * itemsize, "a storage stream is truncated")
        root.flat = _tensor_from_le_bytes(data, root.dtype, itemsize)
    if result.view_of is not None:
        base, offset = result.view_of
        result.flat = base.flat[offset : offset + result.numel]
    return result


def _tensor_from_le_bytes(data: bytes, dtype: torch.dtype, itemsize: int) -> torch.Tensor:
    if not data:
        return torch.empty(0, dtype=dtype)
    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if sys.byteorder == "big" and itemsize > 1:
        flat = flat.view(-1, itemsize).flip(1).reshape(-1)
    return flat.view(dtype)


# ---------------------------------------------------------------------------------------------
# From unpickled records to ForeignModule / plain data.

_STYLEGAN3_MARKER = "SynthesisInput"  # only networks_stylegan3 has it


def _submodules(record: _PersistentRecord):
    modules = record.state.get("_modules") or {}
    require(isinstance(modules, dict), f"{record.class_name}._modules is not a dict")
    return modules.items()


def _walk_records(obj, seen: set):
    """Yield every persistent record reachable from ``obj`` (containers, states, submodules)."""
    if id(obj) in seen:
        return
    if isinstance(obj, _PersistentRecord):
        seen.add(id(obj))
        yield obj
        yield from _walk_records(obj.state, seen)
    elif isinstance(obj, dict):
        seen.add(id(obj))
        for value in obj.values():
            yield from _walk_records(value, seen)
    elif isinstance(obj, (list, tuple)):
        seen.add(id(obj))
        for value in obj:
            yield from _walk_records(value, seen)


def _network_module(raw_top) -> str:
    """Which official file defined the StyleGAN2 classes: the pickle stores only bare class names.

    stylegan3's training/networks_stylegan2.py gives FullyConnectedLayer an ``in_features``
    attribute; stylegan2-ada-pytorch's training/networks.py does not.
    """
    layers = [r for r in _walk_records(raw_top, set()) if r.class_name == "FullyConnectedLayer"]
    if layers and not any("in_features" in r.state for r in layers):
        return "training.networks"
    return "training.networks_stylegan2"


class _Converter:
    """Turns the unpickled tree into plain data and ForeignModules."""

    def __init__(self, network_module: str):
        self.network_module = network_module
        self.active: set[int] = set()  # ids on the current path, to catch reference cycles

    def official_name(self, record: _PersistentRecord) -> str:
        if record.class_name == "AugmentPipe":
            return "training.augment.AugmentPipe"
        stylegan3 = any(r.class_name == _STYLEGAN3_MARKER for r in _walk_records(record, set()))
        module = "training.networks_stylegan3" if stylegan3 else self.network_module
        return f"{module}.{record.class_name}"

    def enter(self, obj) -> None:
        if id(obj) in self.active:
            raise FormatError("the pickle contains a reference cycle, which no official snapshot has")
        self.active.add(id(obj))

    def plain(self, obj) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, np.ndarray)):
            return obj
        if isinstance(obj, _TensorRecord):
            return obj.tensor
        if isinstance(obj, _StorageRecord):
            return obj.flat
        if isinstance(obj, NumpyDType):
            return obj.name
        if isinstance(obj, NumpyArrayRecord):
            require(obj.array is not None, "a numpy array in the snapshot has no data")
            return obj.array
        if isinstance(obj, _PersistentRecord):
            return self.module(obj)
        if not isinstance(obj, (dict, list, tuple, set, frozenset)):
            raise FormatError(f"unexpected {type(obj).__name__} object in the snapshot")
        self.enter(obj)
        if isinstance(obj, dict):  # includes EasyDict -> plain dict
            result = {self.plain(k): self.plain(v) for k, v in obj.items()}
        elif isinstance(obj, list):
            result = [self.plain(v) for v in obj]
        else:  # tuple, set, frozenset
            result = type(obj)(self.plain(v) for v in obj)
        self.active.discard(id(obj))
        return result

    def module(self, record: _PersistentRecord) -> ForeignModule:
        state = record.state
        init_args = self.plain(state.get("_init_args", ()))
        init_kwargs = self.plain(state.get("_init_kwargs", {}))
        require(isinstance(init_args, (tuple, list)), f"{record.class_name}._init_args is not a tuple")
        require(isinstance(init_kwargs, dict), f"{record.class_name}._init_kwargs is not a dict")
        state_dict: dict[str, torch.Tensor] = {}
        self.collect_state(record, "", state_dict)
        attributes = {k: self.plain(v) for k, v in state.items() if isinstance(k, str) and not k.startswith("_")}
        return ForeignModule(self.official_name(record), tuple(init_args), init_kwargs, state_dict, attributes)

    def collect_state(self, record: _PersistentRecord, prefix: str, out: dict) -> None:
        """Mirror nn.Module.state_dict(): own parameters, own persistent buffers, then children."""
        self.enter(record)
        state, where = record.state, prefix.rstrip(".") or record.class_name
        params = state.get("_parameters") or {}
        buffers = state.get("_buffers") or {}
        skip = state.get("_non_persistent_buffers_set") or set()
        require(isinstance(params, dict) and isinstance(buffers, dict), f"{where}: _parameters/_buffers are not dicts")
        require(isinstance(skip, (set, frozenset, list, tuple)), f"{where}: bad _non_persistent_buffers_set")
        entries = list(params.items()) + [(k, v) for k, v in buffers.items() if k not in skip]
        for name, value in entries:
            if value is None:
                continue
            ok = isinstance(name, str) and isinstance(value, _TensorRecord)
            require(ok, f"{where}: entry {name!r:.40} is not a tensor")
            require(prefix + name not in out, f"{where}: {name} appears twice")
            out[prefix + name] = value.tensor
        for name, child in _submodules(record):
            if child is None:
                continue
            ok = isinstance(name, str) and isinstance(child, _PersistentRecord)
            require(ok, f"{where}: submodule {name!r:.40} is not a persistent module")
            self.collect_state(child, f"{prefix}{name}.", out)
        self.active.discard(id(record))


# ---------------------------------------------------------------------------------------------
# Public API.

WHAT = "an NVIDIA snapshot pickle"


def read_nvidia_snapshot(source: Source) -> dict:
    """Read an official StyleGAN2(-ADA)/StyleGAN3 training snapshot without executing it.

    source: path of the .pkl, or a binary file object.
    Returns the pickled dict (usually G, D, G_ema, augment_pipe, training_set_kwargs), with every
    network as a :class:`ForeignModule` and everything else as plain Python data.
    Raises UserInputError (missing file), FormatError (truncated, corrupt, not a snapshot) or
    UnsafePickleError (the file names a global outside the allowlist).
    """
    data, name = read_source(source, WHAT)
    check_header(data, name, WHAT)
    with pickle_errors(name, WHAT):
        raw = load_restricted(data, _SNAPSHOT_GLOBALS, _refusal)
        if not isinstance(raw, dict):
            raise FormatError(f"the pickle holds {describe(raw)}, but NVIDIA snapshots hold a dict of networks")
        snapshot = _Converter(_network_module(raw)).plain(raw)
    if not any(isinstance(snapshot.get(key), ForeignModule) for key in NETWORK_KEYS):
        keys = ", ".join(repr(k) for k in list(snapshot)[:10])
        raise FormatError(f"{name}: the pickle holds a dict with keys [{keys}] but no network 'G', 'D' or 'G_ema'; "
                          "is it an NVIDIA training snapshot?")
    return snapshot


def augment_p(snapshot: dict) -> float | None:
    """The ADA augmentation probability ``p`` of a snapshot, or None if it has no augment pipe."""
    if not isinstance(snapshot, dict):
        raise UserInputError(f"augment_p expects the dict from read_nvidia_snapshot, got {type(snapshot).__name__}")
    pipe = snapshot.get("augment_pipe")
    if pipe is None:
        return None
    if not isinstance(pipe, ForeignModule):
        raise FormatError(f"the snapshot's augment_pipe is a {type(pipe).__name__}, not a module")
    p = pipe.state_dict.get("p")
    if p is None or p.numel() != 1:
        raise FormatError(f"the snapshot's augment_pipe ({pipe.class_name}) has no scalar buffer 'p'")
    return float(p.reshape(()).item())
