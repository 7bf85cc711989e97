"""A raw PyTorch ``state_dict`` as JSON (as RTNeural's torch tests write it), or as arrays from a checkpoint.

Tensor names only: ``<module>.weight_ih_l{k}`` ... for every ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN`` module and ``<module>.weight`` / ``.bias`` for every
``nn.Linear``, applied in the order the names first appear (the order
``state_dict()`` writes them) unless another order alone makes an audio model
(:func:`network_from_tensors`).  The file says nothing about skip connections,
conditioning or the trained rate: the caller supplies those.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import ModelFormatError
from ..network import MAX_LAYERS, Dense, Network
from ._common import expect_shape, plain, shown, tensor, torch_rnn_layers

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
    order in which every module's input size matches the previous one's output
    and one or two outputs come out.  That one order also replaces a file's order
    that gives no such model (``state_dict()`` follows the order in which a module
    registered its parts, which need not be the order they run in).
    """
    modules: dict = {}  # prefix -> kind, in the order the names first appear
    rnn_tensors: dict = {}  # prefix -> that RNN module's tensors (one pass over the names, however many modules)
    for key in tensors:
        if not isinstance(key, str):
            raise ModelFormatError(f"{source}: tensor names must be strings, not {shown(key)}")
        m = _RNN.match(key)
        if m:
            if m.group(4):
                raise ModelFormatError(f"{source}: '{plain(key)}' belongs to a bidirectional RNN, which cannot run "
                                       f"causally")
            prefix, kind = m.group(1), "rnn"
            rnn_tensors.setdefault(prefix, {})[key] = tensors[key]
        elif key.endswith(".weight") or key.endswith(".bias") or key in ("weight", "bias"):
            prefix, kind = key[: -len(key.rsplit(".", 1)[-1])] if "." in key else "", "linear"
        else:
            raise ModelFormatError(f"{source}: tensor '{plain(key)}' is neither an RNN weight (weight_ih_l0 ...) nor "
                                   f"a Linear weight/bias")
        if modules.setdefault(prefix, kind) != kind:  # 'rec.weight' beside 'rec.weight_ih_l0'
            raise ModelFormatError(f"{source}: tensor '{plain(key)}' names a Linear layer, but '{plain(prefix)}' is "
                                   f"an RNN module")
    if not modules:
        raise ModelFormatError(f"{source}: no tensors found")
    if len(modules) > MAX_LAYERS:  # each module gives a layer at least: refused before any is built
        raise ModelFormatError(f"{source}: the tensors name {len(modules)} modules; a network has at most "
                               f"{MAX_LAYERS} layers")
    built = {}
    for prefix, kind in modules.items():
        if kind == "rnn":
            built[prefix] = torch_rnn_layers(rnn_tensors[prefix], prefix, source, rnn_nonlinearity=rnn_nonlinearity)
            continue
        if prefix + "weight" not in tensors:
            raise ModelFormatError(f"{source}: '{plain(prefix)}bias' has no matching '{plain(prefix)}weight'")
        w = tensor(tensors[prefix + "weight"], prefix + "weight", 2, source)
        if prefix + "bias" in tensors:
            b = tensor(tensors[prefix + "bias"], prefix + "bias", 1, source)
            expect_shape(b, (w.shape[0],), prefix + "bias", source, f"the rows of '{plain(prefix)}weight'")
        else:
            b = np.zeros(w.shape[0])
        built[prefix] = [Dense(w, b)]
    prefixes = list(modules)
    if module_order is not None:
        if sorted(module_order) != sorted(prefixes):
            raise ModelFormatError(f"{source}: module order {shown(module_order, 120)} does not name the modules "
                                   f"{shown(prefixes, 120)}")
        prefixes = list(module_order)
    elif not ordered:
        prefixes = _chain(built, prefixes, source)
    elif not _plausible(_layers(built, prefixes)):
        # a module may register its Linear before its RNN (state_dict() follows registration, not forward()):
        # the one order that makes an audio model, else the file's if its sizes chain (a model of 3+ outputs)
        try:
            prefixes = _chain(built, prefixes, source)
        except ModelFormatError:
            if not _plausible(_layers(built, prefixes), outputs=None):
                raise
    layers = _layers(built, prefixes)
    rate, rate_source = (DEFAULT_RATE, "format default") if trained_rate is None else (trained_rate, "caller")
    return Network(tuple(layers), skip=skip, trained_rate=rate, rate_source=rate_source, format=fmt,
                   source=source, metadata=metadata or {})


def from_json(obj: dict, source: str) -> Network:
    return network_from_tensors(obj, source, NAME)


def _layers(built: dict, prefixes: list) -> list:
    return [layer for prefix in prefixes for layer in built[prefix]]


def _plausible(layers: list, outputs: int | None = 2) -> bool:
    """Whether layers in this order make an audio effect: sizes chain, and at most ``outputs`` outputs."""
    return all(layers[i].input_size == layers[i - 1].output_size for i in range(1, len(layers))) and (
        outputs is None or layers[-1].output_size <= outputs)


def _chain(built: dict, prefixes: list, source: str) -> list:
    """The unique order of modules in which sizes chain (for containers that sort tensor names)."""
    import itertools

    if len(prefixes) > 7:
        raise ModelFormatError(f"{source}: {len(prefixes)} modules whose order is not recorded or gives no audio "
                               f"model; add metadata 'module_order' (a JSON list of module name prefixes)")
    fits = [list(perm) for perm in itertools.permutations(prefixes) if _plausible(_layers(built, perm))]
    if len(fits) != 1:
        found = "no order" if not fits else f"{len(fits)} orders"
        raise ModelFormatError(f"{source}: the order of the modules {shown(prefixes, 120)} is not recorded or "
                               f"gives no audio model (sizes that chain, one or two outputs), and {found} of them "
                               f"does; save them in the order they run, or add metadata 'module_order' (a JSON "
                               f"list of prefixes)")
    return fits[0]
