"""Read a `torch.save` file (a rosinality/stylegan2-pytorch checkpoint) without running code from it.

`is_torch_checkpoint` tells such a file by its container (a zip holding `*/data.pkl`, or the legacy format's
magic number); `read_torch_checkpoint` loads it with `torch.load(weights_only=True, map_location="cpu")`,
allowing `argparse.Namespace` (rosinality's train.py stores its args as one) only for a file that refers to it.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import zipfile
from typing import Union

import torch

from ..errors import FormatError, UnsafePickleError

# The first pickle of a legacy (torch < 1.6, non-zip) torch.save file is this magic number, protocol 2:
# PROTO 2, LONG1 with 10 bytes.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little")


def is_torch_checkpoint(path: Union[str, os.PathLike]) -> bool:
    """Whether `path` is a torch.save file: a zip holding */data.pkl, or the legacy format's magic number.

    A missing or unreadable file is False (load_network's own checks report it). A zip that cannot be read
    at all is a FormatError.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_HEAD))
    except OSError:
        return False
    if head == _LEGACY_HEAD:
        return True
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        raise FormatError(f"{path}: a zip archive that cannot be read; the file is truncated or corrupt") from None
    return any(name == "data.pkl" or name.endswith("/data.pkl") for name in names)


# torch's two wordings: an allowlistable global, and one from a blocked module (os, subprocess, ...).
_UNSUPPORTED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")


def read_torch_checkpoint(path: Union[str, os.PathLike]) -> object:
    """torch.load(path, weights_only=True, map_location='cpu'); argparse.Namespace allowed only when needed.

    Namespaces become plain dicts. Anything else a weights-only load refuses is an UnsafePickleError; a
    truncated or corrupt file is a FormatError.
    """
    def load(allowed: list):
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)

    try:
        try:
            obj = load([])
        except pickle.UnpicklingError as exc:
            found = _UNSUPPORTED_GLOBAL.search(str(exc))
            if found is None or found.group(1) != "argparse.Namespace":
                raise
            obj = load([argparse.Namespace])
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        if found is not None:
            raise UnsafePickleError(f"{path}: refers to {found.group(1)}, which a weights-only load does not "
                                    f"allow; nothing from the file was executed") from None
        if "Weights only load failed" in str(exc):
            raise UnsafePickleError(f"{path}: holds something a weights-only load does not allow "
                                    f"({_weights_only_reason(exc)}); nothing from the file was executed") from None
        raise FormatError(f"{path}: cannot read this PyTorch file ({_first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read this PyTorch file; it is truncated or corrupt "
                          f"({_first_line(exc)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("args"), argparse.Namespace):
        obj = {**obj, "args": dict(vars(obj["args"]))}
    return obj


def _weights_only_reason(exc: BaseException) -> str:
    """The line of torch's weights-only message that says what was refused."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if "WeightsUnpickler error" in line]
    return (detail or lines[1:2] or lines or ["refused"])[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
