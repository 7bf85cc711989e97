"""Automated-GuitarAmpModelling / CoreAudioML JSON (GuitarML Proteus, NeuralPi, BYOD, ...).

``{"model_data": {unit_type, num_layers, hidden_size, input_size, skip, ...},
"state_dict": {"rec.weight_ih_l0": ..., "lin.weight": ..., "lin.bias": ...}}``
with PyTorch tensor names and gate orders.  The trained rate is
``model_data.sample_rate`` when present, else the format's convention, 44.1 kHz.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, ModelShapeError
from ..network import Dense, Network
from ._common import (RNN_FIELDS, expect_shape, listed_names, mapping, positive_int, rate_value, shown, tensor,
                      torch_rnn_layers)

NAME = "agm-json"
DEFAULT_RATE = 44100.0
UNIT_TYPES = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn_tanh"}


def detect(obj) -> bool:
    return isinstance(obj, dict) and "model_data" in obj


def from_json(obj: dict, source: str) -> Network:
    meta = mapping(obj.get("model_data"), "model_data", source)
    if "state_dict" not in obj:
        raise ModelFormatError(
            f"{source}: has 'model_data' but no 'state_dict': the file describes a model without its weights")
    sd = mapping(obj["state_dict"], "state_dict", source)
    unit = meta.get("unit_type", "LSTM")
    if not isinstance(unit, str) or unit.upper() not in UNIT_TYPES:
        raise ModelFormatError(f"{source}: model_data.unit_type must be one of {', '.join(UNIT_TYPES)}, not "
                               f"{shown(unit)}")
    cell = UNIT_TYPES[unit.upper()]
    num_layers = positive_int(meta.get("num_layers", 1), "model_data.num_layers", source, 64)
    layers = torch_rnn_layers(sd, "rec.", source, cell=cell, num_layers=num_layers)
    hidden = layers[-1].hidden_size
    if "hidden_size" in meta:
        declared = positive_int(meta["hidden_size"], "model_data.hidden_size", source)
        for i, layer in enumerate(layers):
            if layer.hidden_size != declared:
                raise ModelShapeError(f"{source}: model_data.hidden_size = {declared} but layer {i} holds "
                                      f"hidden size {layer.hidden_size}")
    if "input_size" in meta:
        n_in = positive_int(meta["input_size"], "model_data.input_size", source)
        if layers[0].input_size != n_in:
            raise ModelShapeError(f"{source}: model_data.input_size = {n_in} but 'rec.weight_ih_l0' takes "
                                  f"{layers[0].input_size} input(s)")
    bias_fl = meta.get("bias_fl", True)  # CoreAudioML's nn.Linear(bias=bias_fl)
    if type(bias_fl) is int and bias_fl in (0, 1):
        bias_fl = bool(bias_fl)
    if not isinstance(bias_fl, bool):
        raise ModelFormatError(f"{source}: model_data.bias_fl must be true or false, not {shown(bias_fl)}")
    if "lin.weight" not in sd:
        raise ModelFormatError(f"{source}: missing tensor 'lin.weight' (the output layer)")
    if bias_fl != ("lin.bias" in sd):
        raise ModelFormatError(f"{source}: model_data.bias_fl is {str(bias_fl).lower()} but the state_dict "
                               f"{'lacks' if bias_fl else 'holds'} tensor 'lin.bias' (the output layer's bias)")
    w = tensor(sd["lin.weight"], "lin.weight", 2, source)
    n_out = positive_int(meta.get("output_size", w.shape[0]), "model_data.output_size", source)
    expect_shape(w, (n_out, hidden), "lin.weight", source, "output_size x hidden_size")
    if bias_fl:
        b = tensor(sd["lin.bias"], "lin.bias", 1, source)
        expect_shape(b, (n_out,), "lin.bias", source)
    else:
        b = np.zeros(n_out)
    used = {f"rec.{f}_l{k}" for f in RNN_FIELDS for k in range(num_layers)}
    unused = [key for key in sd if key not in used and key not in ("lin.weight", "lin.bias")]
    if unused:  # a network that differs from the file's would run
        raise ModelFormatError(f"{source}: the state_dict holds {len(unused)} tensor(s) an AGM model (rec, lin) "
                               f"does not use: {listed_names(unused)}")
    skip = meta.get("skip", 1)  # CoreAudioML's SimpleRNN(skip=1), which load_model fills from model_data
    if isinstance(skip, bool):
        skip = int(skip)
    if not isinstance(skip, int) or not 0 <= skip <= min(layers[0].input_size, n_out):
        raise ModelFormatError(f"{source}: model_data.skip must be a whole number from 0 to "
                               f"{min(layers[0].input_size, n_out)} (the inputs added to as many outputs), not "
                               f"{shown(skip)}")
    if skip not in (0, n_out):
        # CoreAudioML returns lin(x) + x[..., :skip]: broadcast, so skip 1 adds input 0 to every output, and
        # any other skip short of output_size fails there.
        raise ModelFormatError(f"{source}: model_data.skip = {skip} with output_size = {n_out}: CoreAudioML adds "
                               f"the first skip inputs to the outputs by broadcasting, which needs skip = 0 or "
                               f"output_size (skip 1 would add input 0 to every output, which nbrnn does not "
                               f"represent)")
    rate, rate_source = DEFAULT_RATE, "format default"
    for where, holder in (("model_data.sample_rate", meta), ("sample_rate", obj)):
        key = where.split(".")[-1]
        if key in holder:
            rate, rate_source = rate_value(holder[key], where, source), "file"
            break
    extra = {k: obj[k] for k in ("provenance",) if k in obj}
    return Network(tuple(layers) + (Dense(w, b),), skip=skip, trained_rate=rate, rate_source=rate_source,
                   format=NAME, source=source, metadata=extra)
