"""Validation shared by the loaders: bounded JSON parsing, tensors, rates."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np

from ..adapt import MAX_RATE, MIN_RATE, is_integer, real_float
from ..errors import ArgumentError, ModelFormatError, ModelShapeError, plain, shown

#: Largest model file any loader reads (a guard against unbounded memory on hostile input).
MAX_FILE_BYTES = 2 << 30
#: Largest number of values a single weight tensor may declare.
MAX_TENSOR_VALUES = 1 << 28
#: Largest JSON model file: a network's most weights (:data:`nbrnn.network.MAX_PARAMETERS`, 2**24) written at
#: about 25 characters each.  Parsing takes about 13 bytes of memory per byte of JSON.
MAX_JSON_BYTES = 512 << 20
#: Most arrays a container (.npz members, .safetensors tensors) may hold: eight per layer of the largest network
#: (:data:`nbrnn.network.MAX_LAYERS`); a model needs at most six (weights, biases, initial states).
MAX_ENTRIES = 8 * 256
#: Most records a zip archive may list before it is parsed (a PyTorch checkpoint holds one per storage: a
#: training checkpoint with its optimizer's state a few per weight tensor).
MAX_ZIP_RECORDS = 1 << 16


def read_bytes(path, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole file, refusing directories, missing files and files over ``limit`` bytes."""
    p = os.fspath(path)
    if ("\0" if isinstance(p, str) else b"\0") in p:  # os and open would raise a bare ValueError
        raise ArgumentError(f"Argument 'path' holds a NUL character: {p!r}")
    try:
        st = os.stat(p)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise ModelFormatError(f"model file '{p}' is a device, not a file")
        if st.st_size > limit:
            raise ModelFormatError(f"model file '{p}' is {st.st_size} bytes; the limit is {limit} bytes")
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:  # a pipe
            raise ModelFormatError(f"model file '{p}' holds more than {limit} bytes, the limit")
        return data
    except IsADirectoryError:
        raise ModelFormatError(f"model path '{p}' is a directory, not a file") from None
    except FileNotFoundError:
        raise ModelFormatError(f"model file '{p}' does not exist") from None
    except OSError as exc:
        raise ModelFormatError(f"model file '{p}' cannot be read: {exc.strerror or exc}") from None


def parse_json(data: bytes, source: str):
    """Parse JSON bytes; any failure (syntax, encoding, nesting depth, over :data:`MAX_JSON_BYTES`) is a
    ModelFormatError."""
    if len(data) > MAX_JSON_BYTES:
        raise ModelFormatError(f"'{source}' is {len(data)} bytes of JSON; the limit for a JSON model is "
                               f"{MAX_JSON_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"'{source}' is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFormatError(f"'{source}': JSON nested too deeply") from None
    except ValueError as exc:
        raise ModelFormatError(f"'{source}' is not valid JSON: {exc}") from None


def zip_entries(data: bytes) -> int | None:
    """The number of entries a zip archive's end record declares (None when it has none), read before any
    parser walks a directory that may list millions of them."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if end < 0 or end + 22 > len(data):
        return None
    count = int.from_bytes(data[end + 10:end + 12], "little")
    if count == 0xFFFF:  # Zip64: the count is in the Zip64 end record, which its locator (just before) points to
        loc = end - 20
        if loc < 0 or data[loc:loc + 4] != b"PK\x06\x07":
            return None
        rec = int.from_bytes(data[loc + 8:loc + 16], "little")
        if rec + 40 > len(data) or data[rec:rec + 4] != b"PK\x06\x06":
            return None
        count = int.from_bytes(data[rec + 32:rec + 40], "little")
    return count


def first_repeated(names):
    """The first name that occurs a second time in ``names`` (an archive's records), or None: zip tools disagree
    on which copy of a record counts."""
    seen = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _reject_constant(name):
    # NaN / Infinity literals are not JSON; weights must be finite anyway.
    raise ValueError(f"non-finite literal {name} is not allowed in model weights")


def tensor(value, name: str, ndim: int, source: str) -> np.ndarray:
    """A finite float64 array of exactly ``ndim`` dimensions from nested lists."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if not isinstance(value, (list, tuple, int, float)) or isinstance(value, bool):
            raise ModelShapeError(f"{source}: '{plain(name)}' must be a (nested) list of numbers, not "
                                  f"{type(value).__name__}")
        leaf = _foreign_leaf(value)
        if leaf is not None:  # numpy would read true as 1.0 and "0.5" as 0.5
            raise ModelShapeError(f"{source}: '{plain(name)}' must hold numbers only, not {plain(leaf, 40)} "
                                  f"({type(leaf).__name__})")
        try:
            arr = np.array(value, dtype=np.float64)
        except RecursionError:
            raise ModelShapeError(f"{source}: '{plain(name)}' is nested too deeply") from None
        except (TypeError, ValueError, OverflowError):
            raise ModelShapeError(f"{source}: '{plain(name)}' must be a rectangular (nested) list of numbers") from None
    if arr.dtype.kind not in "fiu":
        raise ModelShapeError(f"{source}: '{plain(name)}' must hold numbers, not {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != ndim:
        raise ModelShapeError(f"{source}: '{plain(name)}' must have {ndim} dimension(s), not shape {arr.shape}")
    if arr.size > MAX_TENSOR_VALUES:
        raise ModelShapeError(f"{source}: '{plain(name)}' holds {arr.size} values, more than the limit "
                              f"{MAX_TENSOR_VALUES}")
    if not np.all(np.isfinite(arr)):
        raise ModelShapeError(f"{source}: '{plain(name)}' holds NaN, Inf or null values; weights must be finite "
                              f"numbers")
    return arr


def _foreign_leaf(value):
    """The first leaf of nested lists that is neither an int nor a float (bool and str included), or None."""
    todo = [value]
    while todo:
        item = todo.pop()
        if not isinstance(item, (list, tuple)):
            item = (item,)
        kinds = set(map(type, item))
        if kinds <= {float, int}:
            continue
        for leaf in item:
            if isinstance(leaf, (list, tuple)):
                todo.append(leaf)
            elif type(leaf) not in (float, int):
                return leaf
    return None


def expect_shape(arr: np.ndarray, shape: tuple, name: str, source: str, why: str = "") -> None:
    if arr.shape != tuple(shape):
        extra = f" ({why})" if why else ""
        raise ModelShapeError(f"{source}: '{plain(name)}' must have shape {tuple(shape)}{extra}, not {arr.shape}")


def positive_int(value, name: str, source: str, limit: int = 1 << 16) -> int:
    if not is_integer(value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ModelFormatError(f"{source}: '{name}' must be a whole number, not {shown(value)}")
    if not 1 <= value <= limit:
        raise ModelFormatError(f"{source}: '{name}' must be between 1 and {limit}, not {shown(value)}")
    return int(value)


def rate_value(value, name: str, source: str) -> float:
    """A sample rate from a file: a number or a numeric string ("48000"), finite and > 0."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ModelFormatError(
                f"{source}: '{name}' must be a sample rate in Hz, not {shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFormatError(f"{source}: '{name}' must be a sample rate in Hz, not {shown(value)}")
    value = real_float(value)
    if not math.isfinite(value) or value <= 0:
        raise ModelFormatError(f"{source}: '{name}' must be a sample rate > 0 Hz, not {shown(value)}")
    if not MIN_RATE <= value <= MAX_RATE:  # the rates every entry point accepts (adapt.check_rate)
        raise ModelFormatError(f"{source}: '{name}' = {shown(value)} Hz is not a plausible sample rate "
                               f"({MIN_RATE:g} Hz .. {MAX_RATE / 1e6:g} MHz)")
    return float(value)


def mapping(value, name: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise ModelFormatError(f"{source}: '{name}' must be a JSON object, not {type(value).__name__}")
    return value


def listed_names(keys: list) -> str:
    """The first four of ``keys``, quoted and cut, for a message about names a file should not hold."""
    return ", ".join(f"'{plain(key, 60)}'" for key in keys[:4]) + (" ..." if len(keys) > 4 else "")


_CELL_BY_GATES = {4: "lstm", 3: "gru", 1: "rnn_tanh"}
#: The tensors of one layer of a PyTorch RNN module, ``<prefix><field>_l<k>``.
RNN_FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def torch_rnn_layers(tensors: dict, prefix: str, source: str, *, cell: str | None = None,
                     num_layers: int | None = None, rnn_nonlinearity: str = "tanh") -> list:
    """The layers of one PyTorch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` module from its state_dict tensors.

    ``tensors`` maps full names (``prefix + 'weight_ih_l0'`` …) to arrays or nested lists.
    The cell type is inferred from the gate count (rows of ``weight_hh`` / hidden size)
    unless given; ``num_layers`` defaults to every ``_l{k}`` present and, when given,
    must match exactly (a loader that silently runs layer 0 only gives a wrong answer).
    """
    from ..network import CELL_GATES, Recurrent

    present = set()
    for key in tensors:
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        field, _, index = key[len(prefix):].rpartition("_l")
        if field not in RNN_FIELDS or not (index.isascii() and index.isdigit()):
            continue
        if index != str(int(index[:18])):  # 'l00', 'l01': not a name PyTorch writes (no 4300-digit int())
            raise ModelFormatError(f"{source}: tensor '{plain(key)}' is not a PyTorch layer name (layer numbers "
                                   f"have no leading zeros)")
        present.add(int(index))
    if not present:
        raise ModelFormatError(f"{source}: no '{plain(prefix)}weight_ih_l0' tensor found")
    count = max(present) + 1
    if len(present) != count:  # the indices are distinct: all of 0..count-1 iff there are count of them
        numbers = sorted(present)
        listed = ", ".join(map(str, numbers[:8])) + (f", ... ({len(numbers)} in all)" if len(numbers) > 8 else "")
        raise ModelFormatError(f"{source}: recurrent layers of '{plain(prefix)}' are not numbered 0..{count - 1}: "
                               f"{listed}")
    if num_layers is not None and num_layers != count:
        raise ModelShapeError(f"{source}: declares num_layers = {num_layers} but the state_dict holds {count} "
                              f"layer(s) for '{plain(prefix)}'")
    layers = []
    for k in range(count):
        names = {f: f"{prefix}{f}_l{k}" for f in RNN_FIELDS}
        for f in ("weight_ih", "weight_hh"):
            if names[f] not in tensors:
                raise ModelFormatError(f"{source}: missing tensor '{plain(names[f])}'")
        wih = tensor(tensors[names["weight_ih"]], names["weight_ih"], 2, source)
        whh = tensor(tensors[names["weight_hh"]], names["weight_hh"], 2, source)
        hid = whh.shape[1]
        if hid == 0 or whh.shape[0] % hid:
            raise ModelShapeError(f"{source}: '{plain(names['weight_hh'])}' has shape {whh.shape}; it must be "
                                  f"(G*H, H)")
        gates = whh.shape[0] // hid
        kind = cell or _CELL_BY_GATES.get(gates)
        if kind is None or CELL_GATES[kind] != gates:
            fits = "no LSTM (4), GRU (3) or RNN (1)" if kind is None else f"no {kind.upper()} ({CELL_GATES[kind]})"
            raise ModelShapeError(f"{source}: '{plain(names['weight_hh'])}' has shape {whh.shape}: {gates} gate "
                                  f"block(s) of {hid} fit {fits}")
        if kind == "rnn_tanh" and rnn_nonlinearity == "relu":
            kind = "rnn_relu"
        expect_shape(wih, (whh.shape[0], wih.shape[1]), names["weight_ih"], source,
                     f"{gates}*H rows like '{plain(names['weight_hh'])}'")
        given = [f for f in ("bias_ih", "bias_hh") if names[f] in tensors]
        if len(given) == 1:  # bias=False drops both; a GRU's b_hn sits inside the reset product
            missing = names["bias_hh" if given[0] == "bias_ih" else "bias_ih"]
            raise ModelFormatError(f"{source}: '{plain(names[given[0]])}' has no partner '{plain(missing)}' "
                                   f"(PyTorch writes both biases or neither)")
        biases = {}
        for f in ("bias_ih", "bias_hh"):
            if names[f] in tensors:
                biases[f] = tensor(tensors[names[f]], names[f], 1, source)
                expect_shape(biases[f], (whh.shape[0],), names[f], source, f"{gates}*H")
            else:
                biases[f] = np.zeros(whh.shape[0])
        if layers and wih.shape[1] != layers[-1].hidden_size:
            raise ModelShapeError(
                f"{source}: '{plain(names['weight_ih'])}' takes {wih.shape[1]} inputs but layer {k - 1} has hidden "
                f"size {layers[-1].hidden_size}")
        layers.append(Recurrent(kind, wih, whh, biases["bias_ih"], biases["bias_hh"]))
    return layers
