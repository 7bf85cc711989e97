"""``.npz`` and ``.safetensors`` containers, with a small metadata convention, and export to them.

Two layouts are read:

* **nbrnn layout** (what :func:`export` writes): arrays ``layers.{i}.{field}``
  (dense: ``weight``, ``bias``; recurrent: ``weight_ih``, ``weight_hh``,
  ``bias_ih``, ``bias_hh``, ``h0``, ``c0``, PyTorch gate order) and string
  metadata ``nbrnn.layers`` (JSON list of ``{"type": "dense"|"lstm"|"gru"|
  "rnn_tanh"|"rnn_relu", "activation": ...}``), ``nbrnn.skip``,
  ``nbrnn.trained_rate``, ``nbrnn.rate_source``, ``nbrnn.input_names`` (JSON list).
* **PyTorch names** (``rec.weight_ih_l0``, ``lin.weight`` ...) with optional
  metadata ``skip``, ``trained_rate`` (or ``sample_rate``), ``input_names``,
  ``rnn_nonlinearity``: modules run in the order their names appear.

In an ``.npz`` the metadata is one 0-d string array ``__metadata__`` holding a JSON
object of strings; arrays are read with ``allow_pickle=False``, so nothing is executed.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile

import numpy as np

from .._atomic import atomic_output, check_destination
from ..errors import ArgumentError, ModelFormatError, ModelShapeError
from ..network import MAX_GAIN, MAX_PARAMETERS, MIN_GAIN, Dense, Network, Recurrent, is_real
from ._common import MAX_ENTRIES, first_repeated, listed_names, plain, shown, tensor, zip_entries

NPZ, SAFETENSORS = "npz", "safetensors"
LAYOUT_VERSION = "1"
#: Most values the arrays of an .npz may hold in all: twice what a network may (its weights and biases,
#: :data:`nbrnn.network.MAX_PARAMETERS`, and its stored initial states), checked in each array's header
#: before anything is unpacked.
MAX_NPZ_VALUES = 2 * MAX_PARAMETERS
#: Largest total uncompressed size an .npz may declare (a guard against decompression bombs): those values
#: in float64, and room for every array's header.
MAX_NPZ_BYTES = 8 * MAX_NPZ_VALUES + 4096 * MAX_ENTRIES


def _read_npz(source: str, data: bytes):
    count = zip_entries(data)
    if count is not None and count > MAX_ENTRIES:
        raise ModelFormatError(f"'{source}': the archive lists {count} arrays; a model has at most {MAX_ENTRIES}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                raise ModelFormatError(f"'{source}': the archive holds {len(infos)} arrays; a model has at most "
                                       f"{MAX_ENTRIES}")
            twice = first_repeated(info.filename for info in infos)
            if twice is not None:
                raise ModelFormatError(f"'{source}': the archive holds '{plain(twice)}' twice")
            total = sum(info.file_size for info in infos)
            if total > MAX_NPZ_BYTES:
                raise ModelFormatError(f"'{source}': the archive unpacks to {total} bytes, over the limit "
                                       f"{MAX_NPZ_BYTES}")
            arrays = {}
            values = 0
            for info in infos:
                name = info.filename
                if not name.endswith(".npy"):
                    raise ModelFormatError(f"'{source}': '{plain(name)}' is not an .npy array; an .npz model holds "
                                           f"arrays only")
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version not in ((1, 0), (2, 0)):
                        raise ModelFormatError(f"'{source}': '{plain(name)}' is an .npy file of version {version}, "
                                               f"which holds no plain array")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape = read_header(fh)[0]
                if any(d < 0 for d in shape):
                    raise ModelFormatError(f"'{source}': '{plain(name)}' declares shape {shown(shape)}")
                values += math.prod(shape)
                if values > MAX_NPZ_VALUES:
                    raise ModelFormatError(f"'{source}': its arrays declare more than {MAX_NPZ_VALUES} values (at "
                                           f"'{plain(name)}', shape {shown(shape)}); a model holds fewer")
                with zf.open(info) as fh:
                    arrays[name[:-len(".npy")]] = np.lib.format.read_array(fh, allow_pickle=False)
    except ModelFormatError:
        raise
    except Exception as exc:  # a hostile archive can make zipfile / numpy raise almost anything
        raise ModelFormatError(f"'{source}' is not a readable .npz archive of plain arrays: "
                               f"{type(exc).__name__}: {plain(str(exc))}") from None
    meta = {}
    if "__metadata__" in arrays:
        raw = arrays.pop("__metadata__")
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise ModelFormatError(f"'{source}': '__metadata__' must be a 0-d string array holding JSON")
        try:
            meta = json.loads(str(raw))
        except (ValueError, RecursionError):
            raise ModelFormatError(f"'{source}': '__metadata__' is not valid JSON") from None
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise ModelFormatError(f"'{source}': '__metadata__' must be a JSON object of strings")
    return arrays, meta


def read(source: str, data: bytes, format: str | None = None, rnn_nonlinearity: str | None = None) -> Network:
    """Read an .npz or .safetensors model (either layout); ``format`` (NPZ or SAFETENSORS) insists on one;
    ``rnn_nonlinearity``: that of plain RNN layers with PyTorch names when the metadata does not say."""
    zipped = data[:4] == b"PK\x03\x04"
    if format is not None and zipped != (format == NPZ):
        found = "an npz (zip) file" if zipped else "not an npz (zip) file"
        raise ModelFormatError(f"'{source}' was given as format {format!r}, but it is {found}")
    if zipped:
        arrays, meta = _read_npz(source, data)
        fmt = NPZ
    else:
        from .safetensors import read_safetensors

        arrays, meta = read_safetensors(source, data=data)
        fmt = SAFETENSORS
    if "nbrnn.layers" in meta:
        return _from_nbrnn_layout(arrays, meta, source, fmt)
    from ._common import rate_value
    from .torch_json import network_from_tensors

    skip = _int_meta(meta, "skip", source, 0)
    rate = None
    for key in ("trained_rate", "sample_rate"):
        if key in meta:
            rate = rate_value(meta[key], key, source)
            break
    nonlin = meta.get("rnn_nonlinearity", rnn_nonlinearity or "tanh")
    if nonlin not in ("tanh", "relu"):
        raise ModelFormatError(f"'{source}': metadata 'rnn_nonlinearity' must be 'tanh' or 'relu', not "
                               f"{shown(nonlin)}")
    order = None
    if "module_order" in meta:
        try:
            order = json.loads(meta["module_order"])
        except (ValueError, RecursionError):
            order = None
        if not isinstance(order, list) or not all(isinstance(p, str) for p in order):
            raise ModelFormatError(f"'{source}': metadata 'module_order' must be a JSON list of name prefixes")
    # safetensors sorts its tensors, so only an .npz keeps the state_dict's order
    net = network_from_tensors(arrays, source, fmt, skip=skip, rnn_nonlinearity=nonlin, module_order=order,
                               ordered=fmt == NPZ)
    names = _names_meta(meta, source)
    import dataclasses

    return dataclasses.replace(net, trained_rate=rate if rate else net.trained_rate,
                               rate_source="file" if rate else net.rate_source, input_names=names or ())


def _int_meta(meta, key, source, default):
    if key not in meta:
        return default
    try:
        value = int(meta[key])
    except ValueError:
        raise ModelFormatError(f"'{source}': metadata '{key}' must be a whole number, not "
                               f"{shown(meta[key])}") from None
    if value < 0:
        raise ModelFormatError(f"'{source}': metadata '{key}' must be >= 0, not {value}")
    return value


def _names_meta(meta, source):
    for key in ("nbrnn.input_names", "input_names"):
        if key in meta:
            try:
                names = json.loads(meta[key])
            except (ValueError, RecursionError):
                raise ModelFormatError(f"'{source}': metadata '{key}' must be a JSON list of names") from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ModelFormatError(f"'{source}': metadata '{key}' must be a JSON list of names")
            return tuple(names)
    return None


def _from_nbrnn_layout(arrays, meta, source, fmt) -> Network:
    from ._common import rate_value

    try:
        specs = json.loads(meta["nbrnn.layers"])
    except (ValueError, RecursionError):
        raise ModelFormatError(f"'{source}': metadata 'nbrnn.layers' is not valid JSON") from None
    if not isinstance(specs, list) or not specs or len(specs) > 1024:
        raise ModelFormatError(f"'{source}': metadata 'nbrnn.layers' must be a non-empty JSON list of layers")
    layers, used = [], set()
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "type" not in spec:
            raise ModelFormatError(f"'{source}': nbrnn.layers[{i}] must be an object with a 'type'")

        def arr(field, ndim, optional=False):
            key = f"layers.{i}.{field}"
            used.add(key)
            if key not in arrays:
                if optional:
                    return None
                raise ModelFormatError(f"'{source}': missing array '{key}' for layer {i} ({plain(spec['type'], 40)})")
            return tensor(np.asarray(arrays[key], dtype=np.float64) if arrays[key].dtype.kind in "fiu"
                          else arrays[key], key, ndim, source)

        try:
            if spec["type"] == "dense":
                layers.append(Dense(arr("weight", 2), arr("bias", 1), spec.get("activation", "linear")))
            else:
                layers.append(Recurrent(spec["type"], arr("weight_ih", 2), arr("weight_hh", 2), arr("bias_ih", 1),
                                        arr("bias_hh", 1), h0=arr("h0", 1, True), c0=arr("c0", 1, True)))
        except ModelShapeError as exc:
            if str(exc).startswith(f"'{source}'"):
                raise
            raise ModelShapeError(f"'{source}': nbrnn.layers[{i}], arrays 'layers.{i}.*': {exc}") from None
    unused = [key for key in arrays if key not in used]
    if unused:  # a network that differs from the file's would run (a cut 'nbrnn.layers', a stray layer)
        raise ModelFormatError(f"'{source}': the file holds {len(unused)} array(s) the {len(specs)} layer(s) of "
                               f"'nbrnn.layers' do not use: {listed_names(unused)}")
    rate_src = meta.get("nbrnn.rate_source", "file")
    if rate_src not in ("file", "format default", "caller"):
        rate_src = "file"
    kwargs = {}
    if "nbrnn.trained_rate" in meta:
        kwargs = dict(trained_rate=rate_value(meta["nbrnn.trained_rate"], "nbrnn.trained_rate", source),
                      rate_source=rate_src)
    extra = {}
    for key in ("prewarm_seconds", "warmup_seconds"):
        if f"nbrnn.{key}" in meta:
            extra[key] = _float_meta(meta, f"nbrnn.{key}", source, 0.0, 60.0, "seconds")
    for field in ("input_gain", "output_gain"):
        if f"nbrnn.{field}" in meta:
            kwargs[field] = _float_meta(meta, f"nbrnn.{field}", source, MIN_GAIN, MAX_GAIN, "(a linear gain)")
    return Network(tuple(layers), skip=_int_meta(meta, "nbrnn.skip", source, 0), input_names=_names_meta(meta, source)
                   or (), format=fmt, source=source, metadata=extra, **kwargs)


def _float_meta(meta, key, source, low, high, unit) -> float:
    """Metadata ``key``: a number from ``low`` to ``high``."""
    try:
        value = float(meta[key])
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN too
        raise ModelFormatError(f"'{source}': metadata '{key}' must be a number from {low:g} to {high:g} {unit}, "
                               f"not {shown(meta[key])}")
    return value


def to_arrays(network: Network, warmup: float = 0.0) -> tuple:
    """The nbrnn layout of ``network`` (and of a model's ``warmup``, seconds): (arrays, metadata)."""
    arrays, specs = {}, []
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Dense):
            specs.append({"type": "dense", "activation": layer.activation})
            fields = {"weight": layer.weight, "bias": layer.bias}
        else:
            specs.append({"type": layer.cell})
            fields = {"weight_ih": layer.weight_ih, "weight_hh": layer.weight_hh, "bias_ih": layer.bias_ih,
                      "bias_hh": layer.bias_hh, "h0": layer.h0}
            if layer.cell == "lstm":
                fields["c0"] = layer.c0
        for field, value in fields.items():
            arrays[f"layers.{i}.{field}"] = np.ascontiguousarray(value, dtype=np.float64)
    meta = {
        "nbrnn.layout": LAYOUT_VERSION,
        "nbrnn.layers": json.dumps(specs),
        "nbrnn.skip": str(network.skip),
        "nbrnn.trained_rate": repr(network.trained_rate),
        "nbrnn.rate_source": network.rate_source,
        "nbrnn.input_names": json.dumps(list(network.input_names)),
        "nbrnn.source_format": network.format,
    }
    seconds = {"prewarm_seconds": network.metadata.get("prewarm_seconds"), "warmup_seconds": warmup or None}
    for key, value in seconds.items():
        if value is None:
            continue
        if not is_real(value) or not 0 <= value <= 60:  # what the reader takes: a file it could not load back
            raise ArgumentError(f"the model's {key} must be a number from 0 to 60 seconds, not {shown(value)}")
        meta[f"nbrnn.{key}"] = repr(float(value))
    for field in ("input_gain", "output_gain"):
        if getattr(network, field) != 1.0:
            meta[f"nbrnn.{field}"] = repr(getattr(network, field))
    return arrays, meta


def export(network: Network, path, *, overwrite: bool = False, warmup: float = 0.0, argument: str = "path") -> None:
    """Save ``network`` (and a model's ``warmup``) as ``.npz`` or ``.safetensors`` (by the suffix), atomically.

    Weights are stored in float64, so a reloaded model computes exactly what the
    original did.  ``argument``: the path's name in messages.
    """
    target = os.fspath(path)
    suffix = os.path.splitext(target)[1].lower()
    if suffix not in (".npz", ".safetensors"):
        raise ArgumentError(f"Argument '{argument}' must end in .npz or .safetensors, not {suffix or 'no suffix'!r}")
    target = check_destination(target, [("model file", network.source)], overwrite)
    arrays, meta = to_arrays(network, warmup)
    if suffix == ".safetensors":
        from .safetensors import write_safetensors

        write_safetensors(target, arrays, meta, overwrite=overwrite)
        return
    with atomic_output(target, overwrite) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, __metadata__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        fh.flush()
        os.fsync(fh.fileno())
