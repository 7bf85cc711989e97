"""RTNeural's Keras JSON (AIDA-X ``.json`` / ``.aidax``, BYOD, KlonCentaur).

``{"in_shape": [..., I], "layers": [{"type", "activation", "shape", "weights"}, ...]}``
where ``weights`` is what Keras' ``get_weights()`` returns.  Keras stores
kernels as (inputs, units·gates); LSTM columns i, f, c, o (PyTorch's order),
GRU columns z, r, h, which are swapped here to PyTorch's r, z, n.  Only GRUs
with ``reset_after=True`` (bias of shape (2, 3H)) compute PyTorch's function;
``reset_after=False`` is refused rather than mis-run.  AIDA-X's ``in_skip``, ``in_gain`` and
``out_gain`` (dB) are kept as the AIDA-X runtime applies them: y = out_gain·(net(g·x) + skip·g·x),
g = in_gain, on the audio input.
"""

from __future__ import annotations

import math

import numpy as np

from ..adapt import is_choice
from ..errors import ModelFormatError, ModelShapeError
from ..network import ACTIVATIONS, MAX_GAIN, Dense, Network, Recurrent, check_size
from ._common import expect_shape, mapping, rate_value, shown, tensor

NAME = "rtneural-keras-json"
DEFAULT_RATE = 48000.0
SUPPORTED = ("dense", "time-distributed-dense", "lstm", "gru", "activation")
#: Inputs (audio and knobs) beyond which 'in_shape' is taken as malformed: an activation layer of its own is
#: carried by an identity Dense of that width, allocated before any weight of the file is read (and counted
#: against the network's bounds, :data:`nbrnn.network.MAX_LAYERS` and :data:`~nbrnn.network.MAX_PARAMETERS`).
MAX_INPUTS = 1024
#: Largest ``in_gain`` / ``out_gain`` in dB (either sign): the range of :data:`nbrnn.network.MIN_GAIN` ..
#: :data:`~nbrnn.network.MAX_GAIN` (120 dB).
MAX_GAIN_DB = 20.0 * math.log10(MAX_GAIN)


def detect(obj) -> bool:
    return isinstance(obj, dict) and "layers" in obj and "in_shape" in obj


def _activation(value, where: str, source: str) -> str:
    name = "linear" if value in (None, "") else value
    if not is_choice(name, ACTIVATIONS):
        raise ModelFormatError(f"{source}: {where} activation must be one of {', '.join(ACTIVATIONS)}, not "
                               f"{shown(value)}")
    return name


def _units(layer: dict, where: str, source: str):
    shape = layer.get("shape")
    if not isinstance(shape, list) or not shape or not isinstance(shape[-1], int) or isinstance(shape[-1], bool):
        raise ModelFormatError(f"{source}: {where} needs 'shape' ending in the number of units, not {shown(shape)}")
    return shape[-1]


def from_json(obj: dict, source: str) -> Network:
    in_shape = obj.get("in_shape")
    if (not isinstance(in_shape, list) or not in_shape or isinstance(in_shape[-1], bool)
            or not isinstance(in_shape[-1], int) or not 1 <= in_shape[-1] <= MAX_INPUTS):
        raise ModelFormatError(f"{source}: 'in_shape' must be a list ending in the number of inputs "
                               f"(1 to {MAX_INPUTS}), not {str(in_shape)[:80]}")
    raw_layers = obj["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelFormatError(f"{source}: 'layers' must be a non-empty list")
    width = in_shape[-1]
    layers: list = []
    for i, layer in enumerate(raw_layers):
        layer = mapping(layer, f"layers[{i}]", source)
        kind = layer.get("type")
        where = f"layers[{i}] ({kind})"
        if kind not in SUPPORTED:
            raise ModelFormatError(f"{source}: layers[{i}] has type {shown(kind)}; nbrnn runs "
                                   f"{', '.join(SUPPORTED)}")
        weights = layer.get("weights", [])
        if not isinstance(weights, list):
            raise ModelFormatError(f"{source}: {where} 'weights' must be a list")
        if kind == "activation":
            act = _activation(layer.get("activation"), where, source)
            if act == "linear":  # the identity: nothing to add (and nothing to copy, however many there are)
                continue
            if layers and isinstance(layers[-1], Dense) and layers[-1].activation == "linear":
                layers[-1] = Dense(layers[-1].weight, layers[-1].bias, act)
            else:  # after a recurrent layer (or a non-linear dense): an exact identity dense carries it
                # width x width values the file does not hold: the network's bounds are checked before they exist
                held = sum(layer.parameter_count for layer in layers)
                check_size(len(layers) + 1, held + width * (width + 1),
                           f"{source}: {where} needs a {width}x{width} identity layer, which would give the network")
                layers.append(Dense(np.eye(width), np.zeros(width), act))
            continue
        units = _units(layer, where, source)
        if kind in ("dense", "time-distributed-dense"):
            if len(weights) not in (1, 2):
                raise ModelFormatError(f"{source}: {where} needs weights [kernel, bias] or [kernel], "
                                       f"not {len(weights)} arrays")
            kernel = tensor(weights[0], f"{where} kernel", 2, source)
            expect_shape(kernel, (width, units), f"{where} kernel", source, "inputs x units")
            bias = tensor(weights[1], f"{where} bias", 1, source) if len(weights) == 2 else np.zeros(units)
            expect_shape(bias, (units,), f"{where} bias", source)
            layers.append(Dense(kernel.T, bias, _activation(layer.get("activation"), where, source)))
            width = units
            continue
        act = layer.get("activation", "tanh")
        if act not in ("", "tanh", None):
            raise ModelFormatError(f"{source}: {where} uses activation {shown(act)}; recurrent layers run "
                                   f"tanh")
        gates = 4 if kind == "lstm" else 3
        if len(weights) != 3:
            raise ModelFormatError(f"{source}: {where} needs weights [kernel, recurrent_kernel, bias], "
                                   f"not {len(weights)} arrays")
        kernel = tensor(weights[0], f"{where} kernel", 2, source)
        rec = tensor(weights[1], f"{where} recurrent_kernel", 2, source)
        hidden = rec.shape[0]
        if hidden != units:
            raise ModelShapeError(
                f"{source}: {where} declares {units} units in 'shape' but its recurrent kernel holds "
                f"{hidden} (shape {rec.shape}); the file is inconsistent")
        expect_shape(kernel, (width, gates * hidden), f"{where} kernel", source, f"inputs x {gates}*units")
        expect_shape(rec, (hidden, gates * hidden), f"{where} recurrent_kernel", source, f"units x {gates}*units")
        raw_bias = weights[2]
        bias_ndim = 2 if isinstance(raw_bias, list) and raw_bias and isinstance(raw_bias[0], list) else 1
        bias = tensor(raw_bias, f"{where} bias", bias_ndim, source)
        if kind == "lstm":
            expect_shape(bias, (4 * hidden,), f"{where} bias", source)
            layers.append(Recurrent("lstm", kernel.T, rec.T, bias, np.zeros(4 * hidden)))
        else:
            if bias.shape == (3 * hidden,):
                raise ModelFormatError(
                    f"{source}: {where} is a GRU with reset_after=False (bias shape {bias.shape}), a different "
                    f"function from PyTorch's GRU; re-export it with reset_after=True (the TF2 default)")
            expect_shape(bias, (2, 3 * hidden), f"{where} bias", source, "reset_after=True: input row, recurrent row")
            order = np.r_[hidden:2 * hidden, 0:hidden, 2 * hidden:3 * hidden]  # z, r, h -> r, z, n
            layers.append(Recurrent("gru", kernel.T[order], rec.T[order], bias[0][order], bias[1][order]))
        width = hidden
    skip = obj.get("in_skip", 0)
    if isinstance(skip, bool):
        skip = int(skip)
    most = min(in_shape[-1], width)
    if not isinstance(skip, int) or not 0 <= skip <= most:
        raise ModelFormatError(f"{source}: 'in_skip' must be a whole number from 0 to {most} (the inputs added to "
                               f"as many outputs), not {shown(skip)}")
    gains = {key: _gain(obj, key, source) for key in ("in_gain", "out_gain")}
    rate, rate_source = DEFAULT_RATE, "format default"
    meta = obj.get("metadata")
    for where, holder in (("metadata.samplerate", meta if isinstance(meta, dict) else {}), ("samplerate", obj),
                          ("sample_rate", obj)):
        key = where.split(".")[-1]
        if key in holder:
            rate, rate_source = rate_value(holder[key], where, source), "file"
            break
    extra = {}
    for key in ("input_batch", "output_batch"):
        if key in obj:
            extra[key] = obj[key]
    return Network(tuple(layers), skip=skip, trained_rate=rate, rate_source=rate_source, format=NAME,
                   source=source, metadata=extra, input_gain=gains["in_gain"], output_gain=gains["out_gain"])


def _gain(obj: dict, key: str, source: str) -> float:
    """AIDA-X's ``in_gain`` / ``out_gain``: dB the runtime applies to the audio input (before the network and
    its skip) and to the output; a linear factor here (1 when absent)."""
    if key not in obj:
        return 1.0
    db = obj[key]
    if isinstance(db, bool) or not isinstance(db, (int, float)) or not abs(db) <= MAX_GAIN_DB:
        raise ModelFormatError(f"{source}: '{key}' must be a gain in dB from -{MAX_GAIN_DB:g} to "
                               f"+{MAX_GAIN_DB:g}, not {shown(db)}")
    return 10.0 ** (db / 20.0)
