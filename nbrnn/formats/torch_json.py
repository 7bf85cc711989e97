"""A raw PyTorch ``state_dict`` as JSON (as RTNeural's torch tests write it), or as arrays from a checkpoint.

Tensor names only: ``<module>.weight_ih_l{k}`` ... for every ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN`` module and ``<module>.weight`` / ``.bias`` for every
``nn.Linear``, applied in the order the names first appear (the order
``state_dict()`` writes them).  The file says nothing about skip connections,
conditioning or the trained rate: the caller supplies those.
"""

from __future__ import annotations

import re

from ..errors import ModelFormatError
from ..network import Dense, Network
from ._common import tensor, torch_rnn_layers

NAME = "torch-state-dict-json"
DEFAULT_RATE = 44100.0
_RNN = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


def detect(obj) -> bool:
    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and any(_RNN.match(k) or k.endswith(".weight") for k in obj))


def network_from_tensors(tensors: dict, source: str, fmt: str, *, skip: int = 0, trained_rate=None,
                         rnn_nonlinearity: str = "tanh", metadata=None) -> Network:
    """Build a network from PyTorch tensor names, modules in order of first appearance."""
    modules: list = []  # (kind, prefix)
    seen = set()
    for key in tensors:
        if not isinstance(key, str):
            raise ModelFormatError(f"{source}: tensor names must be strings, not {key!r}")
        m = _RNN.match(key)
        if m:
            if m.group(4):
                raise ModelFormatError(f"{source}: '{key}' belongs to a bidirectional RNN, which cannot run causally")
            prefix, kind = m.group(1), "rnn"
        elif key.endswith(".weight") or key.endswith(".bias") or key in ("weight", "bias"):
            prefix, kind = key[: -len(key.rsplit(".", 1)[-1])] if "." in key else "", "linear"
        else:
            raise ModelFormatError(
                f"{source}: tensor '{key}' is neither an RNN weight (weight_ih_l0 ...) nor a Linear weight/bias")
        if prefix not in seen:
            seen.add(prefix)
            modules.append((kind, prefix))
    if not modules:
        raise ModelFormatError(f"{source}: no tensors found")
    layers = []
    for kind, prefix in modules:
        if kind == "rnn":
            layers.extend(torch_rnn_layers(tensors, prefix, source, rnn_nonlinearity=rnn_nonlinearity))
            continue
        if prefix + "weight" not in tensors:
            raise ModelFormatError(f"{source}: '{prefix}bias' has no matching '{prefix}weight'")
        w = tensor(tensors[prefix + "weight"], prefix + "weight", 2, source)
        b = tensor(tensors[prefix + "bias"], prefix + "bias", 1, source) if prefix + "bias" in tensors else None
        if b is None:
            import numpy as np

            b = np.zeros(w.shape[0])
        layers.append(Dense(w, b))
    rate, rate_source = (DEFAULT_RATE, "format default") if trained_rate is None else (trained_rate, "caller")
    return Network(tuple(layers), skip=skip, trained_rate=rate, rate_source=rate_source, format=fmt,
                   source=source, metadata=metadata or {})


def from_json(obj: dict, source: str) -> Network:
    return network_from_tensors(obj, source, NAME)
