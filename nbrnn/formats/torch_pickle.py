"""Read PyTorch checkpoints (``torch.save`` files) without PyTorch and without running code.

A ``.pt`` / ``.pth`` / ``.ckpt`` file is a Python pickle.  An ordinary unpickler
imports and calls whatever the file names, so loading an untrusted pickle can run
arbitrary code.  This module never does that:

* every pickle is first scanned opcode by opcode (:func:`pickletools.genops`, which
  only parses) to refuse forbidden globals, opcodes PyTorch never writes, memo
  indices out of proportion and excessive nesting, before anything is built;
* the unpickler's ``find_class`` admits only an explicit allow-list of names
  (``collections.OrderedDict``, the ``torch._utils`` tensor-rebuild functions, the
  storage classes, dtypes, ``torch.Size``, ``torch.device`` and ``builtins.set`` /
  ``frozenset``), each mapped to a stand-in defined here.  Nothing named in the file
  is ever imported; any other global raises :class:`~nbrnn.errors.UnsafeModelError`;
* tensors are rebuilt lazily as (storage, offset, size, stride) records and turned
  into arrays only after offset, size and stride have been checked against the
  number of elements actually present in the file.

Both layouts written by ``torch.save`` are read:

* the zip layout (PyTorch >= 1.6): ``<archive>/data.pkl`` plus one raw record
  ``<archive>/data/<key>`` per storage and an optional ``<archive>/byteorder``;
* the legacy stream (``_use_new_zipfile_serialization=False`` and PyTorch < 1.6):
  magic number, protocol version and ``sys_info`` pickles, the main pickle, the
  list of storage keys, then each storage as an 8-byte little-endian element count
  followed by its raw little-endian bytes.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import warnings
import zipfile

import numpy as np

from ..errors import ModelFormatError, NbrnnError, UnsafeModelError, shown
from ._common import MAX_FILE_BYTES, MAX_TENSOR_VALUES, MAX_ZIP_RECORDS, first_repeated, read_bytes, zip_entries
from ._common import plain as _plain

__all__ = ["read_torch_checkpoint", "STATE_DICT_KEYS", "MAX_FILE_BYTES"]

#: Keys under which a checkpoint may nest its model's ``state_dict``, tried in this order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")

#: First pickle of a legacy stream.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: Second pickle of a legacy stream.
LEGACY_PROTOCOL = 1001

#: Largest pickle (``data.pkl`` or the main pickle of a stream) that is parsed.
MAX_PICKLE_BYTES = 64 << 20
#: Largest number of pickle opcodes parsed in one pickle: a state_dict takes a few dozen per tensor, a training
#: checkpoint (optimizer state, hyper-parameters) some more; every opcode may build an object.
MAX_PICKLE_OPS = 1_000_000
#: Deepest nesting of MARK-delimited groups in a pickle.
MAX_MARK_DEPTH = 200
#: Deepest nesting of dictionaries followed when looking for tensors.
MAX_DICT_DEPTH = 32
#: Most dimensions a tensor may have.
MAX_NDIM = 32
#: A tensor may hold more elements than its storage (stride-0 views) only up to this count.
MAX_BROADCAST_ELEMENTS = 1 << 20

_ZIP_MAGIC = b"PK\x03\x04"
# Largest offset, dimension or stride accepted (keeps every product and message finite).
_MAX_INDEX = 1 << 62
# Size limit for the magic-number, protocol-version and sys_info pickles of a legacy stream.
_SMALL_PICKLE = 1 << 16

# Opcodes PyTorch never writes.  INST/OBJ/NEWOBJ/NEWOBJ_EX instantiate classes,
# EXT* consult the copyreg extension registry, PERSID is the text form of a
# persistent id, and out-of-band buffers do not exist in a file.
_REFUSED_OPCODES = frozenset(
    ["INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "NEXT_BUFFER", "READONLY_BUFFER"]
)
_STRING_OPCODES = frozenset(
    ["STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"]
)
_MEMO_OPCODES = frozenset(["PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "FRAME"])
_PUT_OPCODES = frozenset(["PUT", "BINPUT", "LONG_BINPUT"])


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------


def _show(value) -> str:
    """A short, safe description of a value taken from an untrusted file."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        if abs(value) < 10**30:
            return repr(value)
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (str, bytes)):
        text = value[:100] if isinstance(value, str) else value[:100].decode("latin-1")
        text = text.encode("unicode_escape").decode("ascii")
        if len(text) > 80:
            text = text[:77] + "..."
        return f"'{text}'"
    if isinstance(value, tuple) and len(value) <= 8 and all(
        v is None or isinstance(v, (int, float, str)) for v in value
    ):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (_Storage, _TensorRef, _DType, _StorageType, _StandIn)):
        return repr(value)
    return f"a {type(value).__name__}"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _exc_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a hostile object's __str__ cannot be trusted either
        text = ""
    text = _plain(text) if text else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Malformed(Exception):
    """Internal: a stand-in found a malformed value; re-raised with the file name attached."""


# ----------------------------------------------------------------------------
# stand-ins for the few objects a state_dict pickle refers to
# ----------------------------------------------------------------------------


class _Inert:
    """Base of the stand-ins: no instance dictionary and no pickle BUILD state."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Malformed(f"the pickle tries to set the state of {self!r}, which a PyTorch checkpoint never does")


class _DType(_Inert):
    """A torch dtype: its name and the numpy dtype of its little-endian bytes (None if unsupported)."""

    __slots__ = ("name", "np_dtype", "itemsize")

    def __init__(self, name: str, np_dtype, itemsize: int):
        self.name = name
        self.np_dtype = None if np_dtype is None else np.dtype(np_dtype)
        self.itemsize = itemsize

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType(_Inert):
    """A storage class such as ``torch.FloatStorage`` (or ``torch.UntypedStorage``, as bytes)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: _DType):
        self.name = name
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Inert):
    """A storage referenced by a persistent id: its key, element type and element count.

    For a legacy view (``view_metadata``), ``base`` is the root storage and
    ``base_offset`` the view's first element in it.
    """

    __slots__ = ("key", "dtype", "numel", "base", "base_offset")

    def __init__(self, key: str, dtype: _DType, numel: int, base=None, base_offset: int = 0):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.base = base
        self.base_offset = base_offset

    def __repr__(self):
        return f"storage '{_plain(self.key)}' ({self.numel} x {self.dtype.name})"


class _TensorRef(_Inert):
    """A tensor still to be built: storage, element offset, size, stride and dtype."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, dtype: _DType):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype = dtype

    def __repr__(self):
        return f"tensor of size {self.size}"


class _StateDict(dict):
    """Stand-in for ``collections.OrderedDict`` (a dict keeps insertion order)."""

    __slots__ = ()

    def __setstate__(self, state):
        # torch stores the module version table as {'_metadata': OrderedDict}; it is not needed.
        if state is not None and not isinstance(state, dict):
            raise _Malformed(f"OrderedDict state must be a dict, not {_show(state)}")


class _StandIn(_Inert):
    """A callable stand-in for an allow-listed global; calling it never runs file-provided code."""

    __slots__ = ("qualname", "fn")

    def __init__(self, qualname: str, fn):
        self.qualname = qualname
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return self.qualname


def _make_dtypes() -> dict:
    specs = [
        # name, numpy dtype of the stored bytes, itemsize, aliases
        ("float32", "<f4", 4, ("float",)),
        ("float64", "<f8", 8, ("double",)),
        ("float16", "<f2", 2, ("half",)),
        ("bfloat16", "<u2", 2, ()),  # widened to float32 when built
        ("int8", "i1", 1, ()),
        ("uint8", "u1", 1, ()),
        ("int16", "<i2", 2, ("short",)),
        ("int32", "<i4", 4, ("int",)),
        ("int64", "<i8", 8, ("long",)),
        ("uint16", "<u2", 2, ()),
        ("uint32", "<u4", 4, ()),
        ("uint64", "<u8", 8, ()),
        ("bool", "?", 1, ()),
        ("complex64", "<c8", 8, ("cfloat",)),
        ("complex128", "<c16", 16, ("cdouble",)),
        # Known, so that optimizer state holding them does not stop a load, but never built.
        ("float8_e4m3fn", None, 1, ()),
        ("float8_e5m2", None, 1, ()),
        ("float8_e4m3fnuz", None, 1, ()),
        ("float8_e5m2fnuz", None, 1, ()),
    ]
    table = {}
    for name, np_dtype, itemsize, aliases in specs:
        dt = _DType(name, np_dtype, itemsize)
        table[name] = dt
        for alias in aliases:
            table[alias] = dt
    return table


_DTYPES = _make_dtypes()

_STORAGE_TYPES = {
    name: _StorageType(name, _DTYPES[dtype])
    for name, dtype in [
        ("FloatStorage", "float32"),
        ("DoubleStorage", "float64"),
        ("HalfStorage", "float16"),
        ("BFloat16Storage", "bfloat16"),
        ("CharStorage", "int8"),
        ("ByteStorage", "uint8"),
        ("ShortStorage", "int16"),
        ("IntStorage", "int32"),
        ("LongStorage", "int64"),
        ("BoolStorage", "bool"),
        ("ComplexFloatStorage", "complex64"),
        ("ComplexDoubleStorage", "complex128"),
        ("UntypedStorage", "uint8"),
    ]
}


def _check_tensor_args(storage, offset, size, stride) -> None:
    if not isinstance(storage, _Storage):
        raise _Malformed(f"a tensor's storage must come from a persistent id, not {_show(storage)}")
    if not _is_int(offset) or not 0 <= offset <= _MAX_INDEX:
        raise _Malformed(f"a tensor's storage offset must be an integer in 0..2**62, not {_show(offset)}")
    for label, value in (("size", size), ("stride", stride)):
        if not isinstance(value, tuple):
            raise _Malformed(f"a tensor's {label} must be a tuple, not {_show(value)}")
        if len(value) > MAX_NDIM:
            raise _Malformed(f"a tensor's {label} has {len(value)} dimensions; at most {MAX_NDIM} are supported")
        if not all(_is_int(v) and 0 <= v <= _MAX_INDEX for v in value):
            raise _Malformed(f"a tensor's {label} must hold integers in 0..2**62, not {_show(value)}")
    if len(size) != len(stride):
        raise _Malformed(f"a tensor's size {_show(size)} and stride {_show(stride)} differ in length")


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    _check_tensor_args(storage, storage_offset, size, stride)
    return _TensorRef(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v2(*args):
    # (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if len(args) not in (6, 7):
        raise _Malformed(f"torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, the pickle gives {len(args)}")
    return _rebuild_tensor(*args[:4])


def _rebuild_tensor_v1(*args):
    if len(args) != 4:
        raise _Malformed(f"torch._utils._rebuild_tensor takes 4 arguments, the pickle gives {len(args)}")
    return _rebuild_tensor(*args)


def _rebuild_tensor_v3(*args):
    # (untyped storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
    if len(args) not in (7, 8):
        raise _Malformed(f"torch._utils._rebuild_tensor_v3 takes 7 or 8 arguments, the pickle gives {len(args)}")
    storage, offset, size, stride, _grad, _hooks, dtype = args[:7]
    _check_tensor_args(storage, offset, size, stride)
    if not isinstance(dtype, _DType):
        raise _Malformed(f"torch._utils._rebuild_tensor_v3 needs a torch dtype, not {_show(dtype)}")
    if storage.dtype.itemsize != 1:
        raise _Malformed(f"torch._utils._rebuild_tensor_v3 needs an untyped (byte) storage, not {shown(storage)}")
    return _TensorRef(storage, offset, size, stride, dtype)


def _rebuild_parameter(*args):
    # (data, requires_grad, backward_hooks) or, with state, 4 arguments
    if len(args) not in (3, 4):
        raise _Malformed(f"torch._utils._rebuild_parameter takes 3 or 4 arguments, the pickle gives {len(args)}")
    if not isinstance(args[0], _TensorRef):
        raise _Malformed(f"a parameter must wrap a tensor, not {_show(args[0])}")
    return args[0]


def _make_ordered_dict(*args):
    if len(args) > 1:
        raise _Malformed(f"collections.OrderedDict takes at most 1 argument, the pickle gives {len(args)}")
    out = _StateDict()
    if args:
        items = args[0]
        if not isinstance(items, (list, tuple)):
            raise _Malformed(f"collections.OrderedDict needs a list of pairs, not {_show(items)}")
        for pair in items:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise _Malformed(f"collections.OrderedDict needs (key, value) pairs, not {_show(pair)}")
            out[pair[0]] = pair[1]
    return out


def _make_size(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (tuple, list))):
        raise _Malformed("torch.Size takes one tuple of integers")
    values = tuple(args[0]) if args else ()
    if not all(_is_int(v) for v in values):
        raise _Malformed(f"torch.Size must hold integers, not {_show(values)}")
    return values


def _make_device(*args):
    if not 1 <= len(args) <= 2 or not isinstance(args[0], str):
        raise _Malformed("torch.device takes a device name and an optional index")
    if len(args) == 2 and args[1] is not None and not _is_int(args[1]):
        raise _Malformed(f"torch.device index must be an integer, not {_show(args[1])}")
    return args[0] if len(args) == 1 or args[1] is None else f"{args[0]}:{args[1]}"


def _make_set(*args):
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise _Malformed("builtins.set takes one list")
    return set(args[0]) if args else set()


def _make_frozenset(*args):
    return frozenset(_make_set(*args))


def _allow_list() -> dict:
    table = {}
    for module in ("collections",):
        table[(module, "OrderedDict")] = _StandIn("collections.OrderedDict", _make_ordered_dict)
    for name, fn in (
        ("_rebuild_tensor", _rebuild_tensor_v1),
        ("_rebuild_tensor_v2", _rebuild_tensor_v2),
        ("_rebuild_tensor_v3", _rebuild_tensor_v3),
        ("_rebuild_parameter", _rebuild_parameter),
        ("_rebuild_parameter_with_state", _rebuild_parameter),
    ):
        table[("torch._utils", name)] = _StandIn(f"torch._utils.{name}", fn)
    for name, storage_type in _STORAGE_TYPES.items():
        table[("torch", name)] = storage_type
        table[("torch.cuda", name)] = storage_type  # storages saved by very old releases from the GPU
    table[("torch.storage", "UntypedStorage")] = _STORAGE_TYPES["UntypedStorage"]
    for name, dtype in _DTYPES.items():
        table[("torch", name)] = dtype
    table[("torch", "Size")] = _StandIn("torch.Size", _make_size)
    table[("torch", "device")] = _StandIn("torch.device", _make_device)
    for module in ("builtins", "__builtin__"):
        table[(module, "set")] = _StandIn("builtins.set", _make_set)
        table[(module, "frozenset")] = _StandIn("builtins.frozenset", _make_frozenset)
    return table


_ALLOWED = _allow_list()


# ----------------------------------------------------------------------------
# the restricted unpickler
# ----------------------------------------------------------------------------


def _refuse_global(source: str, module: str, name: str):
    hint = ""
    if module.startswith("__torch__"):
        hint = " (this looks like a TorchScript archive: save model.state_dict() with torch.save instead)"
    raise UnsafeModelError(
        f"refusing to load '{source}': the pickle asks for global '{_plain(f'{module}.{name}')}', "
        f"which a PyTorch state_dict never needs; nothing was executed{hint}"
    )


def _scan_pickle(data: bytes, start: int, source: str, what: str, limit: int = MAX_PICKLE_BYTES) -> int:
    """Check the pickle starting at ``data[start]`` opcode by opcode; return the offset after its STOP.

    Nothing is built or called: :func:`pickletools.genops` only parses opcodes and
    their arguments.  Refuses forbidden globals (UnsafeModelError), unsupported
    opcodes, memo indices beyond the number of opcodes seen, MARK nesting deeper
    than :data:`MAX_MARK_DEPTH`, and pickles larger than :data:`MAX_PICKLE_BYTES`.
    """
    window = data[start : start + MAX_PICKLE_BYTES]
    stream = io.BytesIO(window)
    depth = 0
    recent: list = []  # the last strings pushed, for STACK_GLOBAL
    end = None
    count = 0
    try:
        with warnings.catch_warnings():
            # text-protocol strings with invalid escapes warn; they are data, not a user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            for count, (op, arg, pos) in enumerate(pickletools.genops(stream)):
                name = op.name
                if count >= MAX_PICKLE_OPS:
                    raise ModelFormatError(
                        f"cannot read '{source}': {what} has more than {MAX_PICKLE_OPS} opcodes; "
                        "a PyTorch checkpoint's pickle is far smaller"
                    )
                if name == "GLOBAL" or name == "INST":
                    module, _, attr = str(arg).partition(" ")
                    if (module, attr) not in _ALLOWED:
                        _refuse_global(source, module, attr)
                elif name == "STACK_GLOBAL" and len(recent) >= 2:
                    module, attr = recent[-2], recent[-1]
                    if (module, attr) not in _ALLOWED:
                        _refuse_global(source, module, attr)
                if name in _REFUSED_OPCODES:
                    raise ModelFormatError(
                        f"cannot read '{source}': {what} uses pickle opcode {name} at byte {start + pos}, "
                        "which PyTorch checkpoints never contain"
                    )
                if name in _STRING_OPCODES:
                    recent = (recent + [arg if isinstance(arg, str) else bytes(arg).decode("latin-1")])[-2:]
                elif name not in _MEMO_OPCODES:
                    recent = []
                if name == "PROTO" and not 0 <= arg <= pickle.HIGHEST_PROTOCOL:
                    raise ModelFormatError(f"cannot read '{source}': {what} declares pickle protocol {arg}")
                if name in _PUT_OPCODES and not 0 <= arg <= count:
                    raise ModelFormatError(
                        f"cannot read '{source}': {what} stores memo entry {_show(arg)} after only {count} opcodes "
                        f"(byte {start + pos})"
                    )
                if name == "FRAME" and arg > len(window) - pos:
                    raise ModelFormatError(
                        f"cannot read '{source}': {what} declares a frame of {arg} bytes at byte {start + pos}, "
                        f"but only {len(window) - pos} remain"
                    )
                if name == "MARK":
                    depth += 1
                    if depth > MAX_MARK_DEPTH:
                        raise ModelFormatError(
                            f"cannot read '{source}': {what} nests deeper than {MAX_MARK_DEPTH} levels "
                            f"(byte {start + pos})"
                        )
                elif pickletools.markobject in op.stack_before:
                    depth -= 1
                    if depth < 0:
                        raise ModelFormatError(
                            f"cannot read '{source}': {what} closes a group it never opened (byte {start + pos})"
                        )
                if name == "STOP":
                    end = start + stream.tell()
                    break
    except NbrnnError:
        raise
    except Exception as exc:  # ValueError for bad opcodes/truncation, UnicodeDecodeError, ...
        if len(data) - start > limit and stream.tell() >= len(window):
            end = None  # ran into the end of the window: reported below
        else:
            raise ModelFormatError(
                f"cannot read '{source}': {what} is not a valid pickle ({_exc_text(exc)})"
            ) from None
    if end is None:
        if len(data) - start > limit:
            raise ModelFormatError(
                f"cannot read '{source}': {what} has no STOP opcode in its first {limit} bytes; "
                "a PyTorch checkpoint's pickle is far smaller"
            )
        raise ModelFormatError(f"cannot read '{source}': {what} ends before its STOP opcode (truncated)")
    return end


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only from the allow-list and never imports anything."""

    def __init__(self, data: bytes, source: str, persistent):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._source = source
        self._persistent = persistent

    def find_class(self, module, name):
        key = (module, name)
        if key not in _ALLOWED:
            _refuse_global(self._source, str(module), str(name))
        return _ALLOWED[key]

    def persistent_load(self, pid):
        if self._persistent is None:
            raise _Malformed(f"this pickle may not reference external data, yet it holds persistent id {_show(pid)}")
        return self._persistent(pid)


def _unpickle(data: bytes, start: int, source: str, what: str, persistent=None, limit: int = MAX_PICKLE_BYTES):
    """Scan, then unpickle the pickle at ``data[start]``; return (object, offset after it)."""
    end = _scan_pickle(data, start, source, what, limit)
    try:
        with warnings.catch_warnings():
            # text-protocol strings with invalid escapes warn; they are data, not a user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            obj = _RestrictedUnpickler(data[start:end], source, persistent).load()
    except NbrnnError:
        raise
    except _Malformed as exc:
        raise ModelFormatError(f"cannot read '{source}': {what}: {exc}") from None
    except Exception as exc:  # UnpicklingError, TypeError from a bad call, RecursionError, MemoryError, ...
        raise ModelFormatError(f"cannot read '{source}': {what} is malformed ({_exc_text(exc)})") from None
    return obj, end


class _StorageTable:
    """Storages declared by persistent ids, keyed by storage key (shared between tensors)."""

    def __init__(self, legacy: bool):
        self.legacy = legacy
        self.by_key: dict = {}

    def __call__(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise _Malformed(f"unexpected persistent id {_show(pid)}; PyTorch writes ('storage', ...) tuples")
        typename = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if typename == "module" and self.legacy:
            raise _Malformed("the file pickles a whole nn.Module (persistent id 'module'); save its state_dict()")
        expected = 6 if self.legacy else 5
        if typename != "storage" or len(pid) != expected:
            raise _Malformed(
                f"unexpected persistent id {_show(pid)}; this layout uses ('storage', storage type, key, "
                f"location, numel{', view' if self.legacy else ''}) ({expected} items)"
            )
        storage_type, key, location, numel = pid[1:5]
        if isinstance(storage_type, _DType):
            dtype = storage_type
        elif isinstance(storage_type, _StorageType):
            dtype = storage_type.dtype
        else:
            raise _Malformed(f"persistent id names storage type {_show(storage_type)}, not a torch storage class")
        if not isinstance(key, str) or not key or len(key) > 256 or "/" in key or "\\" in key or key in (".", ".."):
            raise _Malformed(f"storage key must be a short name, not {_show(key)}")
        if not isinstance(location, (str, bytes)):
            raise _Malformed(f"storage location must be a string such as 'cpu' or 'cuda:0', not {_show(location)}")
        if not _is_int(numel) or not 0 <= numel <= MAX_FILE_BYTES:
            raise _Malformed(f"storage '{_plain(key)}' declares {_show(numel)} elements")
        storage = self._declare(key, dtype, numel)
        if self.legacy and pid[5] is not None:
            return self._view(storage, pid[5])
        return storage

    def _declare(self, key: str, dtype: _DType, numel: int, base=None, base_offset: int = 0) -> _Storage:
        known = self.by_key.get(key)
        if known is None:
            known = self.by_key[key] = _Storage(key, dtype, numel, base, base_offset)
        elif known.dtype is not dtype or known.numel != numel or known.base is not base:
            raise _Malformed(
                f"storage '{_plain(key)}' is declared twice differently: {known!r} and {numel} x {dtype.name}"
            )
        return known

    def _view(self, root: _Storage, meta) -> _Storage:
        if not (isinstance(meta, tuple) and len(meta) == 3):
            raise _Malformed(f"storage view metadata must be (key, offset, size), not {_show(meta)}")
        view_key, offset, size = meta
        if not isinstance(view_key, str) or not view_key or len(view_key) > 256:
            raise _Malformed(f"storage view key must be a short name, not {_show(view_key)}")
        if not (_is_int(offset) and _is_int(size) and offset >= 0 and size >= 0 and offset + size <= root.numel):
            raise _Malformed(
                f"storage view '{_plain(view_key)}' ({_show(offset)} + {_show(size)} elements) "
                f"does not fit in {root!r}"
            )
        return self._declare(view_key, root.dtype, size, root, offset)


# ----------------------------------------------------------------------------
# finding the state_dict and building arrays
# ----------------------------------------------------------------------------


def _candidates(obj, source: str) -> list:
    """The dicts that may be the state_dict, most specific first: [(dict, description)]."""
    if not isinstance(obj, dict):
        raise ModelFormatError(
            f"cannot read '{source}': the checkpoint holds {_show(obj)}, not a dict of tensors; "
            "save model.state_dict() rather than the model object"
        )
    found = [(obj[key], f"'{key}'") for key in STATE_DICT_KEYS if isinstance(obj.get(key), dict)]
    return found + [(obj, "the top level")]


def _collect_tensors(state: dict, source: str, where: str) -> list:
    """Flatten ``state`` (nested dicts joined with '.') into [(name, _TensorRef)]; other values are skipped."""
    found = []
    names = set()
    seen = {id(state)}
    stack = [("", state, 0)]
    while stack:
        prefix, mapping, depth = stack.pop()
        items = list(mapping.items())
        nested = []
        for key, value in items:
            if isinstance(key, str):
                label = key
            elif _is_int(key) and abs(key) < 1 << 63:
                label = str(key)
            else:
                raise ModelFormatError(
                    f"cannot read '{source}': the state_dict at {where} has a key {_show(key)}; names must be strings"
                )
            name = f"{prefix}{label}"
            if isinstance(value, _TensorRef):
                if name in names:
                    raise ModelFormatError(f"cannot read '{source}': tensor name '{_plain(name)}' occurs twice")
                names.add(name)
                found.append((name, value))
            elif isinstance(value, dict):
                if id(value) in seen:
                    raise ModelFormatError(
                        f"cannot read '{source}': the state_dict at {where} holds the same dict twice "
                        f"(or itself), at '{_plain(name)}'"
                    )
                if depth + 1 > MAX_DICT_DEPTH:
                    raise ModelFormatError(
                        f"cannot read '{source}': the state_dict at {where} nests dicts deeper than {MAX_DICT_DEPTH}"
                    )
                seen.add(id(value))
                nested.append((f"{name}.", value, depth + 1))
        # Keep the file's order: nested dicts are expanded after the tensors of their parent, in order.
        stack.extend(reversed(nested))
    return found


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _build_array(name: str, ref: _TensorRef, storage_bytes, source: str) -> np.ndarray:
    """Build one contiguous array from a validated view into its storage's bytes."""
    dtype = ref.dtype
    if dtype.np_dtype is None:
        raise ModelFormatError(f"cannot read '{source}': tensor '{_plain(name)}' has dtype torch.{dtype.name}, "
                               "which nbrnn does not read")
    buf, byteorder = storage_bytes(ref.storage, name)
    itemsize = dtype.itemsize
    available = len(buf) // itemsize
    size = tuple(int(s) for s in ref.size)
    numel = math.prod(size)
    np_dtype = dtype.np_dtype if byteorder == "little" else dtype.np_dtype.newbyteorder(">")
    if numel == 0:
        # no values whatever the other dimensions say, but numpy refuses shapes they multiply beyond its range
        if math.prod(d for d in size if d) > MAX_TENSOR_VALUES:
            raise ModelFormatError(f"cannot read '{source}': tensor '{_plain(name)}' has size {size}; its non-zero "
                                   f"dimensions may multiply to at most {MAX_TENSOR_VALUES} values")
        arr = np.zeros(size, dtype=np_dtype.newbyteorder("="))
    else:
        last = ref.offset + sum((s - 1) * st for s, st in zip(size, ref.stride))
        if last >= available:
            raise ModelFormatError(
                f"cannot read '{source}': tensor '{_plain(name)}' (offset {ref.offset}, size {size}, "
                f"stride {ref.stride}) reaches element {last} of {ref.storage!r}, which holds only {available} "
                f"{dtype.name} elements"
            )
        if numel > max(available, MAX_BROADCAST_ELEMENTS):
            raise ModelFormatError(
                f"cannot read '{source}': tensor '{_plain(name)}' has {numel} elements but its storage holds "
                f"only {available}; such overlapping views are limited to {MAX_BROADCAST_ELEMENTS} elements"
            )
        base = np.frombuffer(buf, dtype=np_dtype, count=available)
        view = np.lib.stride_tricks.as_strided(
            base[ref.offset :],
            shape=size,
            strides=tuple(st * itemsize for st in ref.stride),
            writeable=False,
        )
        arr = np.array(view, dtype=np_dtype.newbyteorder("="), order="C", copy=True)
    if dtype.name == "bfloat16":
        return np.ascontiguousarray(_bfloat16_to_float32(arr))
    if dtype.name == "float16":
        return arr.astype(np.float32)
    return arr


# ----------------------------------------------------------------------------
# the two layouts
# ----------------------------------------------------------------------------


def _read_legacy(data: bytes, source: str):
    """Unpickle a legacy stream; return (main object, storage-bytes function)."""
    if len(data) > 262 and data[257:262] == b"ustar":
        raise ModelFormatError(
            f"cannot read '{source}': it is the tar-based format of PyTorch releases before 0.4, which nbrnn "
            "does not read; load it with that PyTorch and save it again"
        )
    try:
        magic, pos = _unpickle(data, 0, source, "the first pickle (legacy magic number)", limit=_SMALL_PICKLE)
    except UnsafeModelError:
        raise
    except ModelFormatError as exc:
        reason = str(exc).replace(f"cannot read '{source}': ", "", 1)
        raise ModelFormatError(
            f"'{source}' is not a PyTorch checkpoint: neither a zip archive (torch.save since PyTorch 1.6) "
            f"nor a legacy pickle stream ({reason})"
        ) from None
    if not (_is_int(magic) and magic == LEGACY_MAGIC):
        raise ModelFormatError(
            f"'{source}' is not a PyTorch checkpoint: neither a zip archive (torch.save since PyTorch 1.6) nor a "
            f"legacy stream (its first pickle is {_show(magic)}, not the magic number {hex(LEGACY_MAGIC)})"
        )
    version, pos = _unpickle(data, pos, source, "the protocol-version pickle", limit=_SMALL_PICKLE)
    if not (_is_int(version) and version == LEGACY_PROTOCOL):
        raise ModelFormatError(
            f"cannot read '{source}': legacy protocol version must be {LEGACY_PROTOCOL}, not {_show(version)}"
        )
    sys_info, pos = _unpickle(data, pos, source, "the sys_info pickle", limit=_SMALL_PICKLE)
    if not isinstance(sys_info, dict):
        raise ModelFormatError(f"cannot read '{source}': sys_info must be a dict, not {_show(sys_info)}")
    table = _StorageTable(legacy=True)
    main, pos = _unpickle(data, pos, source, "the main pickle", table)
    keys, pos = _unpickle(data, pos, source, "the storage-key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelFormatError(f"cannot read '{source}': the storage-key list must be a list of strings")
    spans = {}
    for key in keys:
        storage = table.by_key.get(key)
        if storage is None or storage.base is not None:
            raise ModelFormatError(
                f"cannot read '{source}': the stream stores storage '{_plain(key)}', which no tensor declares"
            )
        if key in spans:
            raise ModelFormatError(f"cannot read '{source}': storage '{_plain(key)}' is stored twice")
        if len(data) - pos < 8:
            raise ModelFormatError(
                f"cannot read '{source}': the file ends at byte {len(data)} inside the header of storage "
                f"'{_plain(key)}' (truncated)"
            )
        count = int.from_bytes(data[pos : pos + 8], "little")
        pos += 8
        if count != storage.numel:
            raise ModelFormatError(
                f"cannot read '{source}': storage '{_plain(key)}' is declared with {storage.numel} elements "
                f"but stored with {count}"
            )
        nbytes = count * storage.dtype.itemsize
        if nbytes > len(data) - pos:
            raise ModelFormatError(
                f"cannot read '{source}': storage '{_plain(key)}' declares {nbytes} bytes at byte {pos}, "
                f"but only {len(data) - pos} remain (truncated)"
            )
        spans[key] = (pos, nbytes)
        pos += nbytes
    view = memoryview(data)

    def storage_bytes(storage: _Storage, name: str):
        root = storage.base if storage.base is not None else storage
        if root.key not in spans:
            raise ModelFormatError(
                f"cannot read '{source}': tensor '{_plain(name)}' uses storage '{_plain(root.key)}', "
                "which the stream does not contain"
            )
        start, nbytes = spans[root.key]
        if storage.base is not None:
            size = storage.dtype.itemsize
            start += storage.base_offset * size
            nbytes = storage.numel * size
        return view[start : start + nbytes], "little"

    return main, storage_bytes


def _zip_record(zf: zipfile.ZipFile, name: str, source: str, expected: int | None, limit: int) -> bytes:
    """Read one stored (uncompressed) record, checking its declared size first."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFormatError(f"cannot read '{source}': the archive has no record '{_plain(name)}'") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFormatError(
            f"cannot read '{source}': record '{_plain(name)}' is compressed (method {info.compress_type}); "
            "torch.save stores records uncompressed"
        )
    if expected is not None and info.file_size != expected:
        raise ModelFormatError(
            f"cannot read '{source}': record '{_plain(name)}' should hold {expected} bytes but holds "
            f"{info.file_size}"
        )
    if info.file_size > limit:
        raise ModelFormatError(
            f"cannot read '{source}': record '{_plain(name)}' declares {info.file_size} bytes; the limit is {limit}"
        )
    with zf.open(info) as fh:
        blob = fh.read(info.file_size + 1)
    if len(blob) != info.file_size:
        raise ModelFormatError(
            f"cannot read '{source}': record '{_plain(name)}' holds {len(blob)} bytes, not the declared "
            f"{info.file_size}"
        )
    return blob


def _read_zip(data: bytes, source: str):
    """Unpickle ``<archive>/data.pkl`` of a zip checkpoint; return (main object, storage-bytes function)."""
    count = zip_entries(data)
    if count is not None and count > MAX_ZIP_RECORDS:  # before zipfile walks a directory of that many
        raise ModelFormatError(f"cannot read '{source}': the zip archive lists {count} records, more than the "
                               f"{MAX_ZIP_RECORDS} a checkpoint is read with")
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = zf.namelist()
    twice = first_repeated(names)  # torch.load reads the first copy of a record, zipfile the last
    if twice is not None:
        raise ModelFormatError(f"cannot read '{source}': the archive holds record '{_plain(twice)}' twice")
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if not pickles:
        if any(n.endswith(".npy") for n in names):
            raise ModelFormatError(f"cannot read '{source}': it is a numpy .npz archive, not a PyTorch checkpoint")
        raise ModelFormatError(
            f"cannot read '{source}': the zip archive has no '<archive>/data.pkl' record, so it is not a "
            "PyTorch checkpoint"
        )
    if len(pickles) > 1:
        raise ModelFormatError(
            f"cannot read '{source}': the zip archive has {len(pickles)} data.pkl records; expected one"
        )
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise ModelFormatError(
            f"cannot read '{source}': it is a TorchScript archive (torch.jit.save); save model.state_dict() "
            "with torch.save instead"
        )
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        raw = _zip_record(zf, f"{prefix}byteorder", source, None, 64).strip()
        if raw not in (b"little", b"big"):
            raise ModelFormatError(
                f"cannot read '{source}': record '{prefix}byteorder' must say 'little' or 'big', not {_show(raw)}"
            )
        byteorder = raw.decode("ascii")
    pkl = _zip_record(zf, pickles[0], source, None, MAX_PICKLE_BYTES)
    table = _StorageTable(legacy=False)
    main, end = _unpickle(pkl, 0, source, f"record '{_plain(pickles[0])}'", table)
    cache: dict = {}
    # Records of a genuine archive do not overlap, so together they never hold more bytes than
    # the file; crafted archives whose entries nest inside each other would otherwise multiply it.
    budget = [len(data)]

    def storage_bytes(storage: _Storage, name: str):
        blob = cache.get(storage.key)
        if blob is None:
            record = f"{prefix}data/{storage.key}"
            if record not in names:
                raise ModelFormatError(
                    f"cannot read '{source}': tensor '{_plain(name)}' uses storage '{_plain(storage.key)}', but the "
                    f"archive has no record '{_plain(record)}'"
                )
            nbytes = storage.numel * storage.dtype.itemsize
            budget[0] -= nbytes
            if budget[0] < 0:
                raise ModelFormatError(
                    f"cannot read '{source}': its storage records declare more bytes than the {len(data)}-byte "
                    f"file holds (stopped at '{_plain(record)}'); the archive's entries overlap"
                )
            blob = cache[storage.key] = _zip_record(zf, record, source, nbytes, MAX_FILE_BYTES)
        return blob, byteorder

    return main, storage_bytes


def read_torch_checkpoint(path, *, data: bytes | None = None) -> dict:
    """Read the tensors of a PyTorch checkpoint without PyTorch and without executing anything.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``torch.save`` (``.pt``, ``.pth``, ``.ckpt``): the zip layout
        or the legacy stream layout, saved from any device (``'cuda:0'`` locations
        are read on the CPU).
    data : bytes, optional
        The file's content if the caller has already read it; ``path`` then only
        names the file in messages.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensor name to a C-contiguous copy of its values, in the file's order.
        float32 and float64 tensors keep their dtype; float16 and bfloat16 tensors
        are widened exactly to float32; integer and bool tensors keep their dtype.

        The pickled object must be a dict.  The tensors returned are those of
        the first dict holding any among: the dict under ``'state_dict'`` (PyTorch
        Lightning checkpoints), under ``'model_state_dict'``, under ``'model'``
        (see :data:`STATE_DICT_KEYS`), and finally the top-level dict itself.
        Nested dicts inside the chosen one are flattened with ``'.'``-joined names;
        values that are not tensors (numbers, strings, ``None``) are skipped.

    Raises
    ------
    UnsafeModelError
        The pickle names a global outside the allow-list (e.g. ``os.system``);
        nothing was imported or executed.
    ModelFormatError
        The file is missing, larger than :data:`MAX_FILE_BYTES`, not a PyTorch
        checkpoint, truncated or otherwise malformed (bad persistent ids, storages
        smaller than declared, tensor views reaching outside their storage, ...).

    Notes
    -----
    Globals admitted (each mapped to a stand-in, never imported):
    ``collections.OrderedDict``; ``torch._utils._rebuild_tensor``,
    ``_rebuild_tensor_v2``, ``_rebuild_tensor_v3``, ``_rebuild_parameter``,
    ``_rebuild_parameter_with_state``; the storage classes ``torch.FloatStorage``,
    ``DoubleStorage``, ``HalfStorage``, ``BFloat16Storage``, ``Char/Byte/Short/Int/
    Long/BoolStorage``, ``ComplexFloat/ComplexDoubleStorage`` and
    ``torch.UntypedStorage``; torch dtypes such as ``torch.float32``;
    ``torch.Size``; ``torch.device``; ``builtins.set`` and ``builtins.frozenset``.
    A checkpoint whose other entries (hyper-parameters, callbacks) hold objects of
    any other class is refused as a whole.
    """
    source = os.fspath(path)
    if data is None:
        data = read_bytes(source)
    if len(data) > MAX_FILE_BYTES:
        raise ModelFormatError(f"model file '{source}' is {len(data)} bytes; the limit is {MAX_FILE_BYTES} bytes")
    try:
        if data[:4] == _ZIP_MAGIC:
            main, storage_bytes = _read_zip(data, source)
        else:
            main, storage_bytes = _read_legacy(data, source)
        candidates = _candidates(main, source)
        for state, where in candidates:
            refs = _collect_tensors(state, source, where)
            if refs:
                break
        else:
            places = ", ".join(where for _, where in candidates)
            raise ModelFormatError(f"cannot read '{source}': the checkpoint holds no tensors (looked in {places})")
        # Shared storages (tied weights, cuDNN flat buffers) may be viewed several times, but
        # the copies may not outgrow the distinct storages by much (no "one storage, 10^5 views").
        roots = {}
        for _, ref in refs:
            root = ref.storage.base if ref.storage.base is not None else ref.storage
            roots[id(root)] = root.numel * root.dtype.itemsize // max(ref.dtype.itemsize, 1)
        budget = 4 * sum(roots.values()) + MAX_BROADCAST_ELEMENTS
        out = {}
        for name, ref in refs:
            numel = math.prod(ref.size)
            budget -= numel
            if budget < 0:
                raise ModelFormatError(
                    f"cannot read '{source}': its tensors hold far more elements than their storages "
                    f"(stopped at '{_plain(name)}'); such overlapping views are not read"
                )
            out[name] = _build_array(name, ref, storage_bytes, source)
        return out
    except NbrnnError:
        raise
    except _Malformed as exc:
        raise ModelFormatError(f"cannot read '{source}': {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, struct.error, MemoryError, ...
        raise ModelFormatError(f"cannot read '{source}': malformed PyTorch checkpoint ({_exc_text(exc)})") from None
