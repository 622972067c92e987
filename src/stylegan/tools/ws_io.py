"""Latents on disk: `.npz` files with key 'w' holding ws `[N, num_ws, w_dim]` float32.

`stylegan project` writes them (one w per target, NVIDIA projector.py's `projected_w.npz` layout) and
`stylegan generate --ws` renders them.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..errors import FormatError, UserInputError
from ..io.atomic import atomic_path

WS_KEY = "w"


def save_ws(path: Union[str, os.PathLike], ws: Union[torch.Tensor, np.ndarray], **extra: np.ndarray) -> Path:
    """Write ws `[N, num_ws, w_dim]` (and any extra named arrays) to an .npz file, atomically.

    path:  destination file (written as given; no suffix is added).
    ws:    the latents, `[N, num_ws, w_dim]`.
    extra: further arrays stored beside 'w' (ignored by `load_ws`).
    """
    w = ws.detach().cpu().float().numpy() if isinstance(ws, torch.Tensor) else np.asarray(ws, dtype=np.float32)
    if w.ndim != 3:
        raise ValueError(f"ws must be [N, num_ws, w_dim], got shape {list(w.shape)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{WS_KEY: w.astype(np.float32)}, **{k: np.asarray(v) for k, v in extra.items()})
    return path


def load_ws(path: Union[str, os.PathLike], G: Optional[nn.Module] = None) -> torch.Tensor:
    """Read ws `[N, num_ws, w_dim]` float32 from an .npz file, checked against generator `G` when given.

    path: an .npz file with key 'w' (as written by `save_ws` or `stylegan project`).
    G:    the generator the ws are for; its num_ws and w_dim must match.
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file; give an .npz file with key 'w' (e.g. from stylegan project)")
    if path.is_dir():
        raise UserInputError(f"{path}: is a directory; give an .npz file with key 'w'")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key == WS_KEY}
            names = list(data.files)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npz file ({exc}); expected ws [N, num_ws, w_dim] under key 'w'") \
            from None
    if WS_KEY not in arrays:
        raise FormatError(f"{path}: has no array 'w' (it holds {', '.join(names) or 'nothing'}); "
                          f"expected ws [N, num_ws, w_dim] under key 'w'")
    w = arrays[WS_KEY]
    if w.dtype.kind not in "fiu":
        raise FormatError(f"{path}: 'w' has dtype {w.dtype}; expected floating-point ws")
    if w.ndim != 3 or w.shape[0] == 0:
        want = f"[N, {G.num_ws}, {G.w_dim}]" if G is not None else "[N, num_ws, w_dim]"
        raise FormatError(f"{path}: 'w' has shape {list(w.shape)}; expected {want} (N >= 1)")
    if G is not None and (w.shape[1] != G.num_ws or w.shape[2] != G.w_dim):
        raise UserInputError(f"{path}: 'w' has shape {list(w.shape)}, but this network takes ws "
                             f"[N, {G.num_ws}, {G.w_dim}] (num_ws={G.num_ws}, w_dim={G.w_dim}); were these ws "
                             f"made for another network?")
    if not np.isfinite(w).all():
        raise FormatError(f"{path}: 'w' contains NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
