"""Reading foreign weight files as plain tensors, never running code from them."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch

from stylegan.errors import FormatError


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True when `path` is a TorchScript zip (it holds serialized code, not just tensors).

    path: file to inspect.
    """
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.split("/", 1)[-1].startswith("code/") for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_state_dict_file(path: str | os.PathLike, what: str) -> dict:
    """A dict of tensors from a `torch.save`d state dict, read with `weights_only=True`.

    TorchScript archives are refused up front (torch.load would otherwise hand them to
    torch.jit.load); they are only accepted through an explicit opt-in such as `inception-nvidia`.

    path: the `.pth` file.
    what: what the file should hold, for error messages (e.g. "pytorch-fid's Inception weights").
    """
    path = Path(path)
    if is_torchscript_archive(path):
        raise FormatError(f"{path} is a TorchScript archive, not a plain state dict ({what}); TorchScript "
                          f"is only loaded on request: for NVIDIA's Inception use --feature-net inception-nvidia:PATH")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FormatError(f"{path} is not a readable PyTorch state dict ({what}): {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(f"{path} does not hold a dict of tensors; expected {what}")
    return state


def build_uninitialized(factory):
    """Build a module without spending time on random initialisation (its weights are loaded next).

    The module is created on the meta device and given uninitialised CPU storage; batch-norm
    counters, which files often omit, are zeroed.

    factory: a no-argument callable returning the module.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    for name, buffer in module.named_buffers():
        if name.endswith("num_batches_tracked"):
            buffer.zero_()
    return module
