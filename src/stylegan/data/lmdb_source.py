"""LSUN LMDB folders (`bedroom_train_lmdb/` holding `data.mdb` and `lock.mdb`), read as NVIDIA's dataset tool does.

LSUN ships each category as an LMDB environment whose keys are image ids (40 hex digits, ASCII) and whose values
are encoded images (WebP in the LSUN release; other exports store JPEG or PNG). NVIDIA's tools (stylegan2
`create_lsun`, stylegan2-ada-pytorch / stylegan3 `open_lmdb`) open it read-only without a lock, walk the cursor in
key order, decode each value (OpenCV, Pillow when OpenCV cannot), skip values that do not decode, and give no
labels; `--max-images` stops the walk. Here values are decoded with Pillow (the same libwebp / libjpeg decoders).

Needs the `lmdb` package: pip install "stylegan[lmdb]".

Example:
    >>> with LmdbDatabase(Path("bedroom_train_lmdb")) as db:
    ...     key, size = next(db.entries())
    ...     image_bytes = db.value(key)
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stylegan.errors import FormatError, UserInputError

DATA_FILE = "data.mdb"
FOLDER_SUFFIX = "_lmdb"  # NVIDIA's dataset_tool recognises LSUN folders by this ending


def is_lmdb(path: Path) -> bool:
    """True for an LMDB folder (holding data.mdb, or named *_lmdb as NVIDIA's tool expects) or a data.mdb file."""
    if path.is_dir():
        return (path / DATA_FILE).is_file() or path.name.endswith(FOLDER_SUFFIX)
    return path.name == DATA_FILE


def _import_lmdb():
    try:
        import lmdb
    except ImportError:
        raise UserInputError('reading LSUN LMDB folders needs the lmdb package: pip install "stylegan[lmdb]"') from None
    return lmdb


class LmdbDatabase:
    """A read-only LMDB environment and one read transaction, open until `close` (or the `with` block ends).

    folder: the LMDB folder (holding data.mdb), or its data.mdb file.
    """

    def __init__(self, folder: Path):
        folder = Path(folder)
        if folder.name == DATA_FILE and folder.is_file():
            folder = folder.parent
        if not (folder / DATA_FILE).is_file():
            raise UserInputError(f"{folder} has no {DATA_FILE}; give an LSUN LMDB folder such as bedroom_train_lmdb/")
        lmdb = _import_lmdb()
        self._error = lmdb.Error
        try:
            # As NVIDIA's tool: read-only and without the lock file, so read-only copies and mounts open too.
            self._env = lmdb.open(str(folder), readonly=True, lock=False, subdir=True)
        except lmdb.Error as e:
            raise FormatError(f"cannot open {folder} as an LMDB database ({e}); is it a whole LSUN download?") from None
        self._txn = self._env.begin(write=False, buffers=True)
        self.folder = folder

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def entries(self) -> Iterator[tuple[bytes, int]]:
        """(key, size of the value in bytes) of every entry, in key order (the order NVIDIA's tool reads)."""
        for key, value in self._txn.cursor():
            yield bytes(key), len(value)

    def value(self, key: bytes) -> bytes:
        """The stored bytes of `key` (an encoded image for LSUN); OSError when the database cannot give them."""
        try:
            value = self._txn.get(key)
        except self._error as e:
            raise OSError(f"LMDB read failed ({e})") from None
        if value is None:
            raise OSError(f"key {key!r} is missing")
        return bytes(value)

    def close(self) -> None:
        self._txn.abort()
        self._env.close()

    def __enter__(self) -> "LmdbDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
