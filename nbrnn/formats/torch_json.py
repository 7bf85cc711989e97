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
                         rnn_nonlinearity: str = "tanh", metadata=None, module_order=None,
                         ordered: bool = True) -> Network:
    """Build a network from PyTorch tensor names.

    Modules run in the order their names first appear (``ordered=True``, the order
    ``state_dict()`` writes), in ``module_order`` (a list of name prefixes) when
    given, or, for containers that sort names (``ordered=False``), in the one
    order in which every module's input size matches the previous one's output.
    """
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
    built = {}
    for kind, prefix in modules:
        if kind == "rnn":
            built[prefix] = torch_rnn_layers(tensors, prefix, source, rnn_nonlinearity=rnn_nonlinearity)
            continue
        if prefix + "weight" not in tensors:
            raise ModelFormatError(f"{source}: '{prefix}bias' has no matching '{prefix}weight'")
        w = tensor(tensors[prefix + "weight"], prefix + "weight", 2, source)
        b = tensor(tensors[prefix + "bias"], prefix + "bias", 1, source) if prefix + "bias" in tensors else None
        if b is None:
            import numpy as np

            b = np.zeros(w.shape[0])
        built[prefix] = [Dense(w, b)]
    prefixes = [prefix for _, prefix in modules]
    if module_order is not None:
        if sorted(module_order) != sorted(prefixes):
            raise ModelFormatError(f"{source}: module order {module_order} does not name the modules {prefixes}")
        prefixes = list(module_order)
    elif not ordered:
        prefixes = _chain(built, prefixes, source)
    layers = [layer for prefix in prefixes for layer in built[prefix]]
    rate, rate_source = (DEFAULT_RATE, "format default") if trained_rate is None else (trained_rate, "caller")
    return Network(tuple(layers), skip=skip, trained_rate=rate, rate_source=rate_source, format=fmt,
                   source=source, metadata=metadata or {})


def from_json(obj: dict, source: str) -> Network:
    return network_from_tensors(obj, source, NAME)


def _chain(built: dict, prefixes: list, source: str) -> list:
    """The unique order of modules in which sizes chain (for containers that sort tensor names)."""
    import itertools

    if len(prefixes) > 7:
        raise ModelFormatError(f"{source}: {len(prefixes)} modules and no recorded order; add metadata "
                               f"'module_order' (a JSON list of module name prefixes)")
    fits = []
    for perm in itertools.permutations(prefixes):
        seq = [layer for prefix in perm for layer in built[prefix]]
        if all(seq[i].input_size == seq[i - 1].output_size for i in range(1, len(seq))) and seq[-1].output_size <= 2:
            fits.append(list(perm))
    if len(fits) != 1:
        found = "no order" if not fits else f"{len(fits)} orders"
        raise ModelFormatError(f"{source}: the container does not record the module order and {found} of "
                               f"{prefixes} chain by size; add metadata 'module_order' (a JSON list of prefixes)")
    return fits[0]
