"""NeuralAmpModeler ``.nam`` files with ``"architecture": "LSTM"``.

One flat weight list: for each layer ``[W (4H x (I+H)) row-major = [W_ih | W_hh],
summed bias (4H), h0 (H), c0 (H)]``, then the head ``W (1 x H)`` and ``b (1)``.
The stored initial state is the model's steady state on silence and is kept;
the NAM runtime also runs half a second of silence after every reset, which
:func:`nbrnn.load` reproduces with ``prewarm=True``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, ModelShapeError
from ..network import Dense, Network, Recurrent
from ._common import mapping, positive_int, rate_value, shown, tensor

NAME = "nam"
DEFAULT_RATE = 48000.0
#: Seconds of silence the NAM runtime processes after a reset.
PREWARM_SECONDS = 0.5
OTHER_ARCHITECTURES = ("WaveNet", "ConvNet", "Linear", "CatLSTM", "CatWaveNet", "SlimmableWaveNet")


def detect(obj) -> bool:
    return isinstance(obj, dict) and "architecture" in obj and "weights" in obj and "config" in obj


def from_json(obj: dict, source: str) -> Network:
    arch = obj.get("architecture")
    if arch != "LSTM":
        known = f" (a {arch} model)" if arch in OTHER_ARCHITECTURES else ""
        raise ModelFormatError(
            f"{source}: NAM architecture {shown(arch)}{known} is not recurrent; nbrnn runs NAM files with "
            f"architecture 'LSTM' only (not {', '.join(OTHER_ARCHITECTURES)})")
    config = mapping(obj.get("config"), "config", source)
    n_in = positive_int(config.get("input_size", 1), "config.input_size", source)
    hidden = positive_int(config.get("hidden_size"), "config.hidden_size", source, 4096)
    count = positive_int(config.get("num_layers", 1), "config.num_layers", source, 64)
    flat = tensor(obj["weights"], "weights", 1, source)
    expected = 0
    for k in range(count):
        width = n_in if k == 0 else hidden
        expected += 4 * hidden * (width + hidden) + 4 * hidden + 2 * hidden
    expected += hidden + 1
    if flat.size != expected:
        raise ModelShapeError(
            f"{source}: 'weights' holds {flat.size} values but config (input_size {n_in}, hidden_size {hidden}, "
            f"num_layers {count}) needs {expected}")
    pos = 0

    def take(n):
        nonlocal pos
        out = flat[pos:pos + n]
        pos += n
        return out

    layers = []
    for k in range(count):
        width = n_in if k == 0 else hidden
        w = take(4 * hidden * (width + hidden)).reshape(4 * hidden, width + hidden)
        bias = take(4 * hidden)
        h0, c0 = take(hidden), take(hidden)
        layers.append(Recurrent("lstm", w[:, :width], w[:, width:], bias, np.zeros(4 * hidden), h0=h0, c0=c0))
    head_w = take(hidden).reshape(1, hidden)
    head_b = take(1)
    rate, rate_source = DEFAULT_RATE, "format default"
    if obj.get("sample_rate") is not None:
        rate, rate_source = rate_value(obj["sample_rate"], "sample_rate", source), "file"
    meta = {"nam_version": obj.get("version"), "prewarm_seconds": PREWARM_SECONDS}
    if isinstance(obj.get("metadata"), dict):
        meta["nam_metadata"] = obj["metadata"]
    return Network(tuple(layers) + (Dense(head_w, head_b),), trained_rate=rate, rate_source=rate_source,
                   format=NAME, source=source, metadata=meta)
