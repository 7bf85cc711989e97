"""Read and write the safetensors format (implemented here; no third-party library).

Layout of a file::

    8 bytes   N, unsigned little-endian: length of the JSON header
    N bytes   UTF-8 JSON object, padded with spaces:
              {"__metadata__": {str: str},                      (optional)
               "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
    rest      the byte buffer; each tensor's little-endian, C-ordered values sit at
              buffer[begin:end]

The reader checks everything before touching the buffer: header length against
the file size, JSON validity and nesting, dtype names, that shape times item size
equals the span of ``data_offsets``, and that the spans tile the buffer exactly
(in order, without gaps or overlaps), as the reference implementation requires.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .._atomic import atomic_output
from ..errors import ArgumentError, ModelFormatError, shown
from ._common import MAX_ENTRIES, MAX_FILE_BYTES, MAX_TENSOR_VALUES, plain, read_bytes

__all__ = ["read_safetensors", "write_safetensors", "MAX_HEADER_BYTES"]

#: Largest JSON header accepted: the reference implementation allows 100 MB, but a model's header (at most
#: :data:`~nbrnn.formats._common.MAX_ENTRIES` tensors and a little metadata) takes well under 1 MB.
MAX_HEADER_BYTES = 16 << 20
#: Most dimensions a tensor may have.
MAX_NDIM = 32

# safetensors dtype name -> numpy dtype of the stored little-endian values.
_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # bit patterns; widened exactly to float32 when read
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
# Names the format defines but nbrnn does not read.
_UNSUPPORTED = ("F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4")

_WRITE_DTYPES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items() if k != "BF16"}


def _short(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _pairs_no_duplicates(source: str):
    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise ModelFormatError(f"'{source}': the safetensors header names '{plain(key, 80)}' twice")
            out[key] = value
        return out

    return hook


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _depth_ok(obj, limit: int) -> bool:
    """True if ``obj`` nests no deeper than ``limit`` containers (checked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _parse_header(data: bytes, source: str):
    """Validate the length prefix and JSON header; return (header dict, buffer start)."""
    if len(data) < 8:
        raise ModelFormatError(f"'{source}' is {len(data)} bytes long; a safetensors file starts with an 8-byte "
                               "header length")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise ModelFormatError(
            f"'{source}': the safetensors header length is {n} bytes, more than the limit {MAX_HEADER_BYTES}"
        )
    if n > len(data) - 8:
        raise ModelFormatError(
            f"'{source}': the safetensors header length is {n} bytes but the file has only {len(data) - 8} "
            "bytes after the length field (truncated or not safetensors)"
        )
    raw = data[8 : 8 + n]
    if not raw.startswith(b"{"):
        raise ModelFormatError(f"'{source}': the safetensors header must be a JSON object starting with '{{'")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(
            f"'{source}': the safetensors header is not UTF-8 ({exc.reason} at header byte {exc.start})"
        ) from None
    try:
        header = json.loads(text, object_pairs_hook=_pairs_no_duplicates(source), parse_constant=_reject_constant)
    except ModelFormatError:
        raise
    except RecursionError:
        raise ModelFormatError(f"'{source}': the safetensors header nests JSON too deeply") from None
    except ValueError as exc:  # JSONDecodeError, integers with too many digits, NaN literals
        raise ModelFormatError(f"'{source}': the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"'{source}': the safetensors header must be a JSON object")
    if not _depth_ok(header, 3):
        raise ModelFormatError(
            f"'{source}': the safetensors header nests deeper than name -> entry -> list; it is malformed"
        )
    return header, 8 + n


def _read_metadata(header: dict, source: str) -> dict:
    meta = header.pop("__metadata__", None)
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ModelFormatError(f"'{source}': '__metadata__' must be a JSON object of strings, not {_short(meta)}")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise ModelFormatError(
                f"'{source}': '__metadata__' value for '{plain(key, 80)}' must be a string, not {_short(value)}"
            )
    return dict(meta)


def _entry(name: str, info, buffer_len: int, source: str):
    """Validate one tensor entry; return (numpy dtype, dtype name, shape, begin, end)."""
    where = f"'{source}': tensor '{plain(name, 80)}'"
    if not isinstance(info, dict):
        raise ModelFormatError(f"{where} must be described by a JSON object, not {_short(info)}")
    unknown = set(info) - {"dtype", "shape", "data_offsets"}
    missing = {"dtype", "shape", "data_offsets"} - set(info)
    if missing or unknown:
        raise ModelFormatError(
            f"{where} must have exactly the fields dtype, shape, data_offsets "
            f"(missing: {sorted(missing) or 'none'}; unknown: {sorted(unknown) or 'none'})"
        )
    dtype_name = info["dtype"]
    if dtype_name in _UNSUPPORTED:
        raise ModelFormatError(f"{where} has dtype {dtype_name}, which nbrnn does not read")
    if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
        raise ModelFormatError(
            f"{where} has dtype {_short(dtype_name)}; expected one of {', '.join(_DTYPES)}"
        )
    shape = info["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ModelFormatError(
            f"{where} has shape {_short(shape)}; expected a list of at most {MAX_NDIM} integers >= 0"
        )
    # a tensor with a zero dimension holds no bytes whatever the others say, but numpy refuses shapes whose
    # dimensions multiply beyond its index range: the non-zero dimensions are bounded as a whole
    if math.prod(d for d in shape if d) > MAX_TENSOR_VALUES:
        raise ModelFormatError(
            f"{where} has shape {_short(shape)}; its non-zero dimensions may multiply to at most "
            f"{MAX_TENSOR_VALUES} values"
        )
    offsets = info["data_offsets"]
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise ModelFormatError(f"{where} has data_offsets {_short(offsets)}; expected [begin, end] integers")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer_len:
        raise ModelFormatError(
            f"{where} has data_offsets [{begin}, {end}], outside the {buffer_len}-byte data buffer"
        )
    dtype = _DTYPES[dtype_name]
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != end - begin:
        raise ModelFormatError(
            f"{where} has shape {shape} of {dtype_name} ({nbytes} bytes) but data_offsets [{begin}, {end}] "
            f"span {end - begin} bytes"
        )
    return dtype, dtype_name, tuple(shape), begin, end


def read_safetensors(path, *, data: bytes | None = None) -> tuple:
    """Read a safetensors file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    data : bytes, optional
        The file's content if the caller has already read it; ``path`` then only
        names the file in messages.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        Tensor name to a C-contiguous, native-byte-order copy of its values, in the
        order of the data buffer.  BF16 tensors are widened exactly to float32;
        every other dtype keeps its numpy equivalent.
    metadata : dict of str to str
        The ``__metadata__`` map (empty when the file has none).

    Raises
    ------
    ModelFormatError
        The file is missing, larger than 2 GiB, or malformed: header length beyond the
        file, invalid or too deeply nested JSON, unknown dtypes, shapes that do not
        match their byte spans or whose non-zero dimensions multiply beyond 2**28,
        spans outside the buffer, overlapping or leaving gaps, non-string metadata.
    """
    source = os.fspath(path)
    if data is None:
        data = read_bytes(source)
    if len(data) > MAX_FILE_BYTES:
        raise ModelFormatError(f"model file '{source}' is {len(data)} bytes; the limit is {MAX_FILE_BYTES} bytes")
    header, start = _parse_header(data, source)
    metadata = _read_metadata(header, source)
    if len(header) > MAX_ENTRIES:
        raise ModelFormatError(f"'{source}': the safetensors header lists {len(header)} tensors; a model has at "
                               f"most {MAX_ENTRIES}")
    buffer_len = len(data) - start
    entries = []
    for name, info in header.items():
        entries.append((name,) + _entry(name, info, buffer_len, source))
    entries.sort(key=lambda e: (e[4], e[5]))
    position = 0
    for name, _dtype, _dname, _shape, begin, end in entries:
        if begin != position:
            what = "overlaps the previous tensor" if begin < position else "leaves a gap after the previous tensor"
            raise ModelFormatError(
                f"'{source}': tensor '{plain(name, 80)}' starts at buffer byte {begin}, which {what} "
                f"(expected {position}); tensors must tile the data buffer"
            )
        position = end
    if position != buffer_len:
        raise ModelFormatError(
            f"'{source}': the tensors cover {position} bytes of the {buffer_len}-byte data buffer; "
            "the file has trailing bytes or is truncated"
        )
    view = memoryview(data)
    arrays = {}
    for name, dtype, dtype_name, shape, begin, end in entries:
        count = math.prod(shape)
        values = np.frombuffer(view[start + begin : start + end], dtype=dtype, count=count)
        arr = np.array(values.reshape(shape), dtype=dtype.newbyteorder("="), order="C", copy=True)
        if dtype_name == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        arrays[name] = arr
    return arrays, metadata


def _check_arrays(arrays, metadata) -> tuple:
    if not hasattr(arrays, "items"):
        raise ArgumentError(f"Argument 'arrays' must be a mapping of names to arrays, not {type(arrays).__name__}")
    prepared = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"Argument 'arrays' must have non-empty string names, not {shown(name)}")
        if name == "__metadata__":
            raise ArgumentError("Argument 'arrays' may not use the reserved name '__metadata__'")
        try:
            arr = np.asarray(value)
        except Exception as exc:
            raise ArgumentError(f"Argument 'arrays': '{name}' is not an array ({type(exc).__name__})") from None
        native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder not in ("|", "=") else arr.dtype
        if native not in _WRITE_DTYPES:
            raise ArgumentError(
                f"Argument 'arrays': '{name}' has dtype {arr.dtype}, which safetensors cannot store "
                "(use bool, (u)int8..64, float16/32/64 or complex64)"
            )
        if arr.ndim > MAX_NDIM:
            raise ArgumentError(f"Argument 'arrays': '{name}' has {arr.ndim} dimensions; at most {MAX_NDIM}")
        prepared[name] = (arr, _WRITE_DTYPES[native])
    if metadata is None:
        metadata = {}
    if not hasattr(metadata, "items"):
        raise ArgumentError(
            f"Argument 'metadata' must be a mapping of strings to strings, not {type(metadata).__name__}"
        )
    meta = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentError(
                f"Argument 'metadata' must map strings to strings, not {shown(key)}: {type(value).__name__}"
            )
        meta[key] = value
    return prepared, meta


def write_safetensors(path, arrays, metadata=None, *, overwrite: bool = True) -> None:
    """Write arrays and string metadata to a safetensors file, atomically (``overwrite``: as
    :func:`nbrnn._atomic.atomic_output`).

    The file is written to a temporary file in the destination folder, flushed to
    disk and renamed over ``path``, so ``path`` never holds a half-written file.
    Tensor names are sorted; the data buffer is ordered by decreasing item size,
    then name, and the header is padded with spaces to a multiple of 8 bytes, so
    every tensor starts on a multiple of its item size and the same input always
    gives the same bytes.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; an existing file is replaced.
    arrays : mapping of str to array_like
        Tensor name to values (bool, int8..int64, uint8..uint64, float16, float32,
        float64 or complex64), stored little-endian in C order.
    metadata : mapping of str to str, optional
        Stored as ``__metadata__``.

    Raises
    ------
    ArgumentError
        A name is not a non-empty string or is ``'__metadata__'``, an array has an
        unsupported dtype, or metadata is not a str to str mapping.
    OutputError
        The destination folder cannot be written.
    """
    target = os.fspath(path)
    prepared, meta = _check_arrays(arrays, metadata)
    order = sorted(prepared, key=lambda n: (-prepared[n][0].dtype.itemsize, n))
    header = {}
    offset = 0
    for name in order:
        arr, dtype_name = prepared[name]
        nbytes = arr.size * arr.dtype.itemsize
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    document = {}
    if meta:
        document["__metadata__"] = dict(sorted(meta.items()))
    for name in sorted(header):
        document[name] = header[name]
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 form, and JSON readers refuse its escape
        raise ArgumentError(f"a safetensors header is UTF-8 JSON, which cannot hold the lone surrogate "
                            f"{exc.object[exc.start:exc.end]!r} in a name or in the metadata (save as .npz)") from None
    text += b" " * (-len(text) % 8)
    with atomic_output(target, overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(len(text).to_bytes(8, "little"))
        fh.write(text)
        for name in order:
            arr, dtype_name = prepared[name]
            little = np.ascontiguousarray(arr, dtype=_DTYPES[dtype_name])
            fh.write(little.tobytes(order="C"))
        fh.flush()
        os.fsync(fh.fileno())
