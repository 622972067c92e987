"""CIFAR-10 "python version": `cifar-10-python.tar.gz` or its extracted `cifar-10-batches-py/` folder.

Each batch file is a pickled dict {b'data': uint8 [N, 3072] (R plane, G plane, B plane of 32x32),
b'labels': [N ints], ...}; `batches.meta` holds {b'label_names': [...]}. Pickles can run code when
loaded, so they are read with a restricted unpickler that only rebuilds plain containers and numpy
arrays; any other global in the file is refused (UnsafePickleError) before anything runs.
Only the training split (data_batch_1 .. data_batch_5) is converted, as NVIDIA's tool does.
"""
from __future__ import annotations

import io
import pickle
import re
import tarfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from stylegan.errors import FormatError, UnsafePickleError

_BATCH_NAME = re.compile(r"^data_batch_(\d+)$")
_META_NAME = "batches.meta"
_FOLDER_NAME = "cifar-10-batches-py"
_SIDE = 32


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR batch pickle may reference: what numpy needs to rebuild an array."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    import _codecs

    allowed = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    # Python 3 pickles of bytes at protocol 2 spell them as _codecs.encode(text, 'latin1').
    allowed[("_codecs", "encode")] = _codecs.encode
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in `_allowed_globals()`.

    file: binary file to read the pickle from.
    """

    def __init__(self, file):
        super().__init__(file, encoding="bytes")
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only numpy arrays and lists; "
                "this file is not a genuine CIFAR-10 batch (download it again from the official site)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing a pickle with persistent ids; this is not a CIFAR-10 batch file")


def safe_load_pickle(data: bytes, where: str) -> Any:
    """Unpickle `data` allowing only plain data and numpy arrays; `where` names it in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{where}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise FormatError(f"{where} is not a readable pickle ({type(e).__name__}: {e}); it is corrupt or truncated") from None


def _get(d: dict, key: str) -> Any:
    if key in d:
        return d[key]
    return d.get(key.encode("ascii"))


def _parse_batch(obj: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a dict with 'data' and 'labels', got {type(obj).__name__}")
    data, labels = _get(obj, "data"), _get(obj, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * _SIDE * _SIDE:
        raise FormatError(f"{where}: 'data' must be a uint8 array [N, {3 * _SIDE * _SIDE}]")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: 'labels' must be a list of integers") from None
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise FormatError(f"{where}: need one label in 0..9 per image ({data.shape[0]} images)")
    images = data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)  # [N, H, W, C]
    return np.ascontiguousarray(images), labels


def _parse_meta(obj: Any) -> Optional[list[str]]:
    names = _get(obj, "label_names") if isinstance(obj, dict) else None
    if not isinstance(names, list):
        return None
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


def find_batch_folder(path: Path) -> Optional[Path]:
    """The folder holding `data_batch_*` files: `path` itself or its `cifar-10-batches-py/`."""
    for folder in (path, path / _FOLDER_NAME):
        if folder.is_dir() and any(_BATCH_NAME.match(p.name) for p in folder.iterdir()):
            return folder
    return None


def _read_files(path: Path) -> tuple[dict[int, tuple[bytes, str]], Optional[tuple[bytes, str]]]:
    """Raw bytes of each training batch (by number) and of batches.meta, from a tar or folder."""
    batches, meta = {}, None
    if path.is_dir():
        folder = find_batch_folder(path)
        if folder is None:
            raise FormatError(f"{path} has no CIFAR-10 data_batch_* files")
        for p in folder.iterdir():
            m = _BATCH_NAME.match(p.name)
            if m and p.is_file():
                batches[int(m[1])] = (p.read_bytes(), str(p))
            elif p.name == _META_NAME:
                meta = (p.read_bytes(), str(p))
        return batches, meta
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                m = _BATCH_NAME.match(base)
                if not member.isfile() or not (m or base == _META_NAME):
                    continue
                data = tar.extractfile(member).read()  # read in memory; nothing is extracted to disk
                where = f"{path}:{member.name}"
                if m:
                    batches[int(m[1])] = (data, where)
                else:
                    meta = (data, where)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FormatError(f"cannot read {path} as a tar archive ({e}); it is corrupt or truncated") from None
    return batches, meta


def read_cifar10(path: Path) -> tuple[np.ndarray, np.ndarray, Optional[list[str]]]:
    """Training images uint8 [N, 32, 32, 3], labels int64 [N] and class names (or None)."""
    batches, meta = _read_files(Path(path))
    if not batches:
        raise FormatError(
            f"{path} holds no data_batch_* files; expected the CIFAR-10 python version (cifar-10-python.tar.gz)"
        )
    images, labels = [], []
    for number in sorted(batches):
        data, where = batches[number]
        batch_images, batch_labels = _parse_batch(safe_load_pickle(data, where), where)
        images.append(batch_images)
        labels.append(batch_labels)
    class_names = _parse_meta(safe_load_pickle(*meta)) if meta is not None else None
    return np.concatenate(images), np.concatenate(labels), class_names
