"""The restricted-unpickler core shared by the foreign pickle readers (io.nvidia_pickle, io.tf_pickle).

A pickle is a small program: its GLOBAL opcodes name any importable callable and its REDUCE / BUILD
opcodes call it. Every reader here subclasses :class:`RestrictedUnpickler`, which looks each global up
in the reader's explicit allowlist and hands back a stand-in of ours that only builds data; any other
global raises :class:`UnsafePickleError` at lookup time, before it can be called. Stand-ins return
plain data or an :class:`Inert` record (no methods the unpickler could call except a checked
``__setstate__``), so BUILD, APPEND and SETITEM opcodes cannot reach code either.

What both readers need lives here:

- the unpickler base with ``find_class`` on an allowlist and no persistent ids;
- numpy stand-ins, in the numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) spellings:
  ``numpy.dtype`` (numbers only: object dtypes would carry pickles of their own), scalars, and numeric
  arrays rebuilt with ``numpy.frombuffer`` from the raw bytes of the BUILD state;
- file handling: reading the source, the pickle header check, a memo-index check done by walking the
  opcodes before anything is built, the globals a pickle names (also without building anything), and
  the translation of every unpickling failure into one :class:`FormatError` naming the file.

    with pickle_errors(name, "TensorFlow StyleGAN pickle"):
        check_memo_indices(data, "pickle")
        raw = RestrictedUnpickler(io.BytesIO(data), allowed, refusal).load()
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import pickletools
import re
import struct
import sys
from types import MappingProxyType
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Union

import numpy as np

from stylegan.errors import FormatError, UnsafePickleError, UserInputError

Source = Union[str, os.PathLike, BinaryIO]


def require(condition: bool, what: str) -> None:
    """Raise FormatError(what) unless `condition` holds."""
    if not condition:
        raise FormatError(what)


def is_int(value) -> bool:
    """A Python int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# Inert records. The unpickler may BUILD (set state) on, APPEND to or SETITEM into any object it
# holds. Everything a stand-in returns is plain data or one of these slot classes, which have no
# such methods and refuse __setstate__ unless they define a checked one.


class Inert:
    """Base of the records stand-ins return: no __dict__, no append/setitem, state refused."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafePickleError(
            f"the pickle tries to set state on a {type(self).__name__.lstrip('_')}, which no "
            "official file does; refusing to go on"
        )


class NumpyDType(Inert):
    """A numpy dtype of a number kind (float, int, uint, bool), decoded without calling numpy.

    kind:     'f', 'i', 'u' or 'b'.
    itemsize: bytes per element.
    """

    __slots__ = ("kind", "itemsize", "byteorder")

    def __init__(self, kind: str, itemsize: int):
        self.kind = kind
        self.itemsize = itemsize
        self.byteorder = "<"

    def __setstate__(self, state):
        # numpy pickles (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")):
            raise FormatError(f"unexpected numpy dtype state {state!r:.80}")
        if state[2] is not None or state[3] is not None or state[4] is not None:
            raise FormatError("structured numpy dtypes are not used by official files")
        self.byteorder = state[1]

    @property
    def name(self) -> str:
        kinds = {"f": "float", "i": "int", "u": "uint", "b": "bool"}
        return "bool" if self.kind == "b" else f"{kinds[self.kind]}{8 * self.itemsize}"

    @property
    def order(self) -> str:
        """'<' or '>': the byte order of the stored data ('|' one-byte types read either way)."""
        return ">" if self.byteorder == ">" or (self.byteorder == "=" and sys.byteorder == "big") else "<"

    def to_numpy(self) -> np.dtype:
        """The equivalent numpy dtype, with its stored byte order."""
        return np.dtype(f"{self.order}{self.kind}{self.itemsize}")


class _NDArrayType(Inert):
    """Stands for the class ``numpy.ndarray``, which pickles name only as _reconstruct's first argument."""

    __slots__ = ()


NDARRAY = _NDArrayType()


class NumpyArrayRecord(Inert):
    """A numeric numpy array: ``_reconstruct`` makes it empty, one BUILD gives it its data.

    array: the numpy array (native byte order, writable, C order), None until the BUILD.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray | None = None):
        self.array = array

    def __setstate__(self, state):
        # numpy's ndarray.__reduce__ state: ([version,] shape, dtype, is_fortran, raw bytes).
        require(self.array is None, "a numpy array in the pickle is given its data twice")
        ok = isinstance(state, tuple) and (len(state) == 4 or (len(state) == 5 and state[0] == 1))
        require(ok, f"unexpected numpy array state {state!r:.80}")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _array_from_bytes(raw, dtype, shape, fortran)


def _array_from_bytes(raw, dtype, shape, fortran) -> np.ndarray:
    require(isinstance(dtype, NumpyDType), "a numpy array without a number dtype (object arrays are refused)")
    ok = isinstance(shape, (tuple, list)) and all(is_int(d) and d >= 0 for d in shape)
    require(ok, f"a numpy array with a bad shape {shape!r:.80}")
    require(isinstance(fortran, bool), "a numpy array with a bad fortran-order flag")
    require(isinstance(raw, (bytes, bytearray)), "a numpy array whose data is not raw bytes")
    count = math.prod(shape)
    require(len(raw) == count * dtype.itemsize,
            f"a numpy array of shape {tuple(shape)} x {dtype.name} holds {len(raw)} bytes, "
            f"not {count * dtype.itemsize}")
    flat = np.frombuffer(raw, dtype=dtype.to_numpy(), count=count)
    array = flat.reshape(tuple(shape), order="F" if fortran else "C")
    return np.array(array, dtype=dtype.to_numpy().newbyteorder("="), order="C", copy=True)  # writable, native


# ---------------------------------------------------------------------------------------------
# numpy stand-ins. Each checks its arguments.

_DTYPE_PATTERN = re.compile(r"^[<>|=]?([a-zA-Z])(\d+)$")
_SCALAR_FORMATS = MappingProxyType({
    ("f", 2): "e", ("f", 4): "f", ("f", 8): "d",
    ("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
    ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
    ("b", 1): "?",
})


def numpy_dtype(descr, align=False, copy=True) -> NumpyDType:
    """``numpy.dtype(descr, align, copy)`` for number kinds; object dtypes are refused."""
    match = _DTYPE_PATTERN.match(descr) if isinstance(descr, str) else None
    if match is not None and match.group(1) == "O":
        raise UnsafePickleError("the pickle holds a numpy object array or scalar, whose elements are pickles of "
                                "their own; official files hold number arrays only, so it is refused")
    ok = match is not None and isinstance(align, bool) and isinstance(copy, bool)
    require(ok, f"numpy.dtype({descr!r:.40}) is not a plain number type")
    kind, itemsize = match.group(1), int(match.group(2))
    require((kind, itemsize) in _SCALAR_FORMATS, f"numpy dtype {descr!r} is not supported")
    return NumpyDType(kind, itemsize)


def numpy_scalar(dtype, data):
    """A numpy scalar (e.g. a 0-d variable, ``weight_gain``) as a Python float, int or bool."""
    require(isinstance(dtype, NumpyDType), "numpy scalar without a number dtype")
    require(isinstance(data, bytes) and len(data) == dtype.itemsize, "numpy scalar with malformed bytes")
    return struct.unpack(dtype.order + _SCALAR_FORMATS[(dtype.kind, dtype.itemsize)], data)[0]


def numpy_reconstruct(subtype, shape, dtype_code) -> NumpyArrayRecord:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an empty array that BUILD fills."""
    ok = subtype is NDARRAY and isinstance(shape, (tuple, list)) and tuple(shape) == (0,)
    require(ok and dtype_code in (b"b", "b"), "numpy _reconstruct is called with unusual arguments")
    return NumpyArrayRecord()


def numpy_frombuffer(buffer, dtype, shape, order) -> NumpyArrayRecord:
    """``numpy.core.numeric._frombuffer``: how numpy pickles a contiguous array under protocol 5."""
    require(order in ("C", "F"), f"numpy _frombuffer with order {order!r:.10}")
    if isinstance(buffer, pickle.PickleBuffer):
        buffer = bytes(buffer)
    return NumpyArrayRecord(_array_from_bytes(buffer, dtype, shape, order == "F"))


# (module, name) -> stand-in, for every numpy global a pickle of number arrays and scalars names.
NUMPY_GLOBALS = MappingProxyType({
    ("numpy", "dtype"): numpy_dtype,
    ("numpy", "ndarray"): NDARRAY,
    **{(f"{core}.multiarray", "scalar"): numpy_scalar for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.multiarray", "_reconstruct"): numpy_reconstruct for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.numeric", "_frombuffer"): numpy_frombuffer for core in ("numpy.core", "numpy._core")},
})


# ---------------------------------------------------------------------------------------------
# The unpickler.


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose globals come only from `allowed`.

    file:    binary stream positioned at the pickle.
    allowed: (module, qualified name) -> the stand-in returned for that global.
    refusal: builds the exception for a global outside `allowed` (it names the global and the format).
    """

    def __init__(self, file: BinaryIO, allowed: Mapping[tuple, Any], refusal: Callable[[str, str], Exception]):
        super().__init__(file)
        self.allowed = allowed
        self.refusal = refusal

    def find_class(self, module, name):
        safe = self.allowed.get((module, name))
        if safe is None:
            raise self.refusal(module, name)
        return safe

    def persistent_load(self, pid):
        raise FormatError("the pickle uses persistent ids, which pickle.dump never writes")


def describe(obj) -> str:
    """What an unpickled value is, for messages ('a numpy array', 'a tuple', ...)."""
    if isinstance(obj, NumpyArrayRecord):
        return "a numpy array"
    return f"a {type(obj).__name__.lstrip('_')}"


# ---------------------------------------------------------------------------------------------
# Checks done by walking opcodes (nothing is built).


def check_memo_indices(data: bytes | BinaryIO, what: str) -> None:
    """Reject memo indices no real pickle uses, before unpickling.

    A pickle can ask for memo slot 2**31; the C unpickler would then try to allocate gigabytes.
    """
    count = 0
    for opcode, arg, _ in pickletools.genops(data):
        count += 1
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > count:
            raise FormatError(f"the {what} stores into memo slot {arg} after only {count} opcodes; the file is corrupt")


_STRING_OPCODES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                             "STRING", "BINSTRING", "SHORT_BINSTRING"})


def pickle_globals(data: bytes | BinaryIO) -> Iterator[tuple[str, str]]:
    """The (module, name) pairs a pickle's GLOBAL / STACK_GLOBAL opcodes name, in file order, found without unpickling.

    STACK_GLOBAL takes its two strings from the stack; they are tracked through the memo, which is
    enough for anything a pickler writes. Used to tell formats apart, not as a safety check (the
    readers' allowlists are that). A corrupt stream raises the pickletools error (a ValueError) once
    the walk reaches the damage; the globals before it have been yielded.
    """
    recent: list = []  # what the last pushing opcodes pushed: the string, or None for anything else
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name == "GLOBAL":
            module, _, qualname = arg.partition(" ")
            yield module, qualname
            recent.append(None)
        elif name == "STACK_GLOBAL":
            if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                yield recent[-2], recent[-1]
            recent.append(None)
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = recent[-1] if recent else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(arg))
        elif name == "FRAME":
            continue
        else:
            recent.append(arg if name in _STRING_OPCODES else None)
        del recent[:-2]


# ---------------------------------------------------------------------------------------------
# Files and errors.


def read_source(source: Source, what: str) -> tuple[bytes, str]:
    """The bytes and a display name of a path or binary file object; `what` names the expected file."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise UserInputError(f"{path}: no such file; give the path of {what} (.pkl)")
        if os.path.isdir(path):
            raise UserInputError(f"{path}: is a directory; give the path of {what} (.pkl)")
        with open(path, "rb") as f:
            return f.read(), path
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise UserInputError(f"{name}: file object returned text; open the file in binary mode ('rb')")
        return bytes(data), name
    raise UserInputError(f"expected a path or a binary file object, got {type(source).__name__}")


def check_header(data: bytes, name: str, what: str) -> None:
    """Refuse empty files, zip archives and anything without a pickle protocol 2-5 header."""
    if not data:
        raise FormatError(f"{name}: file is empty; expected {what}")
    if data[:4] == b"PK\x03\x04":
        raise FormatError(f"{name}: is a zip archive (e.g. a torch.save checkpoint), not {what}")
    if len(data) < 2 or data[0] != 0x80 or not 2 <= data[1] <= 5:
        raise FormatError(f"{name}: not a pickle file (no protocol 2-5 header); expected {what} (.pkl)")


CORRUPT_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                  AttributeError, OverflowError, MemoryError, RecursionError, struct.error, RuntimeError)


@contextlib.contextmanager
def pickle_errors(name: str, what: str) -> Iterator[None]:
    """Translate everything that can go wrong while unpickling into one error naming the file.

    Our own errors keep their class and get the file name in front; anything else the unpickler or
    numpy raises on corrupt input becomes a FormatError ("truncated" when the stream ends early).
    """
    try:
        yield
    except UserInputError as err:
        raise type(err)(f"{name}: {err}") from None
    except CORRUPT_ERRORS as err:
        text = str(err)
        if isinstance(err, EOFError) or "truncated" in text or "exhausted" in text or "remain" in text:
            raise FormatError(f"{name}: file is truncated (the pickle ends early); copy or download it again") from None
        detail = f"{type(err).__name__}: {text[:200]}"
        raise FormatError(f"{name}: corrupt or not {what} ({detail})") from None


def load_restricted(data: bytes, allowed: Mapping[tuple, Any], refusal: Callable[[str, str], Exception]):
    """Check memo indices, then unpickle `data` with `allowed` globals only (call inside pickle_errors)."""
    check_memo_indices(data, "pickle")
    return RestrictedUnpickler(io.BytesIO(data), allowed, refusal).load()
