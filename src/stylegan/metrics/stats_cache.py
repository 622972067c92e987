"""On-disk cache of real-image statistics, keyed by (dataset fingerprint, feature net, count, kind).

Files are safetensors (float64 arrays) with the key fields in the header metadata, written through
a temporary file and a rename; a corrupt or foreign file counts as a miss. The dataset fingerprint
hashes file names, sizes and CRC-32s (zip central directory or folder bytes), the feature net id
hashes the network's weights, so a changed dataset or network never reuses stale numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from stylegan.io.atomic import atomic_path

CACHE_VERSION = "1"  # bump when feature extraction changes in a way the key does not capture


def cache_file(cache_dir: str | os.PathLike, fingerprint: str, net_id: str, count: int, kind: str) -> Path:
    """Path of the cache entry for these key fields.

    cache_dir: the cache folder.
    fingerprint: dataset content fingerprint.
    net_id: feature network identifier (name + weights hash).
    count: number of real images the statistics cover.
    kind: what is stored ('mean_cov' or 'features').
    """
    key = json.dumps(dict(v=CACHE_VERSION, data=fingerprint, net=net_id, count=int(count), kind=kind), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(cache_dir).expanduser() / f"{kind}-{net_id.split('-')[0]}-{count}-{digest}.safetensors"


def load_cached(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays stored at `path`, or None when the file is missing or unreadable.

    path: a file from `cache_file`.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        return None
    try:
        return {k: v.numpy() for k, v in load_file(str(path)).items()}
    except Exception:  # a truncated or foreign file is a miss; it will be rewritten
        return None


def save_cached(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write `arrays` atomically with `meta` (str -> str) in the header.

    path: destination from `cache_file`.
    arrays: name -> numpy array.
    meta: description fields stored in the safetensors metadata.
    """
    from safetensors.torch import save_file

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    return Path(path)
