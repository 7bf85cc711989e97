"""Loaders: every supported file format → one :class:`~nbrnn.network.Network`.

The format is recognised from the content (JSON keys, magic bytes), not from the
file name; when nothing fits, the error says what each candidate rejected.
"""

from __future__ import annotations

import dataclasses
import os

from ..adapt import is_choice
from ..errors import ArgumentError, ModelFormatError, ModelShapeError, plain, shown
from ..network import Network
from . import agm, keras, nam, torch_json
from ._common import MAX_ZIP_RECORDS, parse_json, rate_value, read_bytes, zip_entries

JSON_FORMATS = (agm, keras, nam, torch_json)
FORMAT_NAMES = tuple(m.NAME for m in JSON_FORMATS) + ("torch-checkpoint", "npz", "safetensors")

_ZIP_MAGIC = b"PK\x03\x04"


def _describe_json(obj) -> str:
    if isinstance(obj, dict):
        keys = ", ".join(shown(k, 40) for k in list(obj)[:6])
        return f"a JSON object with keys {keys}{' ...' if len(obj) > 6 else ''}"
    return f"JSON of type {type(obj).__name__}"


def read_network(path, *, format: str | None = None, skip: int | None = None,
                 rnn_nonlinearity: str | None = None) -> Network:
    """Read a model file into a :class:`Network` (the trained rate as the file or format says).

    ``rnn_nonlinearity`` ('tanh' or 'relu'; None: the file's, else tanh) is that of plain ``nn.RNN`` layers
    in files that do not record it (PyTorch names); for a file that records another, it is an error.
    """
    source = os.fsdecode(os.fspath(path))
    try:
        network = _read(source, format, rnn_nonlinearity)
    except ModelShapeError as exc:  # a check of the network as a whole: say which file it is about
        if source in str(exc):
            raise
        raise ModelShapeError(f"'{source}': {exc}") from None
    if rnn_nonlinearity is not None:
        recorded = {layer.cell[len("rnn_"):] for layer in network.recurrent_layers if layer.cell.startswith("rnn_")}
        if recorded - {rnn_nonlinearity}:
            raise ArgumentError(f"Argument 'rnn_nonlinearity' is {rnn_nonlinearity!r}, but '{source}' records its "
                                f"RNN layers as {', '.join(sorted(recorded))} ({network.format}); the argument is "
                                f"for files that do not record it")
    # the file's path from the root (what Model.save, export and render refuse to overwrite, whatever the current
    # folder is then), not normalised: 'link/..' is the link target's parent, as the system reads it
    whole = source if os.path.isabs(source) else os.path.join(os.getcwd(), source)
    return dataclasses.replace(_with_skip(network, skip), source=whole)


def _read(source: str, format: str | None, rnn_nonlinearity: str | None) -> Network:
    if format is not None and not is_choice(format, FORMAT_NAMES):
        raise ArgumentError(f"Argument 'format' must be one of {', '.join(FORMAT_NAMES)}, not {shown(format)}")
    data = read_bytes(source)
    stripped = data.lstrip()
    if stripped.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (parse_json takes it)
        stripped = stripped[3:].lstrip()
    if format in ("npz", "safetensors") or (format is None and data[:4] == _ZIP_MAGIC and _is_npz(data)) or (
            format is None and _looks_like_safetensors(data)):
        from . import containers

        return containers.read(source, data, format, rnn_nonlinearity)
    if format == "torch-checkpoint" or (format is None and not stripped.startswith((b"{", b"["))):
        if format is None and not (data[:4] == _ZIP_MAGIC or data[:1] == b"\x80"):
            raise ModelFormatError(
                f"'{source}' is not a model file nbrnn knows: not JSON (AGM, RTNeural/AIDA-X Keras, NAM, "
                f"PyTorch state_dict), not a PyTorch checkpoint (zip or pickle), not npz, not safetensors")
        from .torch_pickle import read_torch_checkpoint

        tensors = read_torch_checkpoint(source)
        return torch_json.network_from_tensors(tensors, source, "torch-checkpoint",
                                               rnn_nonlinearity=rnn_nonlinearity or "tanh")
    obj = parse_json(data, source)
    candidates = [m for m in JSON_FORMATS if format in (None, m.NAME)]
    rejected = []
    for module in candidates:
        if not module.detect(obj):
            rejected.append(f"{module.NAME}: {_detect_reason(module)}")
            continue
        if module is torch_json:
            return torch_json.network_from_tensors(obj, source, torch_json.NAME,
                                                   rnn_nonlinearity=rnn_nonlinearity or "tanh")
        return module.from_json(obj, source)
    raise ModelFormatError(f"'{source}' is {_describe_json(obj)}, which no loader accepts: " + "; ".join(rejected))


def _with_skip(net: Network, skip: int | None) -> Network:
    """``net`` with the caller's ``skip`` in place of the file's (None: the file's)."""
    if skip is None:
        return net
    most = min(net.input_size, net.output_size)
    if skip > most:
        raise ArgumentError(f"Argument 'skip' must be from 0 to {most} for '{plain(net.source)}' ({net.input_size} "
                            f"input(s), {net.output_size} output(s)), not {skip}")
    return dataclasses.replace(net, skip=skip)


def _detect_reason(module) -> str:
    return {
        agm.NAME: "needs 'model_data' and 'state_dict'",
        keras.NAME: "needs 'in_shape' and 'layers'",
        nam.NAME: "needs 'architecture', 'config' and 'weights'",
        torch_json.NAME: "needs tensor names such as 'rnn.weight_ih_l0' or 'fc.weight'",
    }[module.NAME]


def _is_npz(data: bytes) -> bool:
    import io
    import zipfile

    if (zip_entries(data) or 0) > MAX_ZIP_RECORDS:  # before zipfile walks them; the torch reader refuses it
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except Exception:  # not a readable zip: let the other candidates (and their messages) decide
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


__all__ = ["read_network", "rate_value", "FORMAT_NAMES"]
