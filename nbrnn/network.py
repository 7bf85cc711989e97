"""The canonical, validated description of a model that every loader produces.

One gate convention for everything (PyTorch's): LSTM rows ``i, f, g, o``, GRU rows
``r, z, n`` with the ``n``-block recurrent bias kept apart (it sits inside the reset
product), Elman ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.  Weights are float64
arrays; kernels cast them once per dtype.  Everything format-specific (gate
reordering, transposes, bias folding, stored initial states) ends at the loader.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .adapt import check_rate, is_choice, is_integer, is_real, real_float  # is_real: also imported from here
from .errors import ArgumentError, ModelShapeError, plain, shown

#: Recurrent cell kinds and the number of gate blocks each stacks in its weights.
CELL_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

#: Element-wise (or vector, for softmax) activations a dense layer may apply.
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "elu", "softmax", "selu", "softplus", "gelu")

#: Where the trained sample rate came from.
RATE_SOURCES = ("file", "format default", "caller")
#: The trained rate of a network that does not say (most training code works at 44.1 kHz).
DEFAULT_TRAINED_RATE = 44100.0

#: Most layers, and most weights and biases in all, a network may have.  Generous (recurrent audio-effect models
#: hold at most a few hundred thousand parameters in a handful of layers), they keep a small file from making a
#: loader build gigabytes of layers it synthesises (an activation layer of its own is carried by an identity
#: dense layer of its width).
MAX_LAYERS = 256
MAX_PARAMETERS = 1 << 24


#: The range of :attr:`Network.input_gain` and :attr:`Network.output_gain` (±120 dB).
MIN_GAIN, MAX_GAIN = 1e-6, 1e6


def check_gain(value: Any, name: str) -> float:
    """A linear gain from :data:`MIN_GAIN` to :data:`MAX_GAIN`, as a float."""
    if not is_real(value):
        raise ArgumentError(f"Argument '{name}' must be a number (a linear gain), not {type(value).__name__}")
    gain = real_float(value)
    if not MIN_GAIN <= gain <= MAX_GAIN:  # NaN too
        raise ArgumentError(f"Argument '{name}' must be a linear gain from {MIN_GAIN:g} to {MAX_GAIN:g} "
                            f"(±120 dB), not {shown(gain)}")
    return gain


def gain_text(gain: float) -> str:
    """``+12 dB (×3.98)`` for messages and summaries."""
    return f"{20 * np.log10(gain):+.3g} dB (×{gain:.4g})"


def check_size(layers: int, parameters: int, context: str) -> None:
    """Refuse a network of more than :data:`MAX_LAYERS` layers or :data:`MAX_PARAMETERS` weights and biases."""
    if layers > MAX_LAYERS:
        raise ModelShapeError(f"{context}: {layers} layers; a network may have at most {MAX_LAYERS}")
    if parameters > MAX_PARAMETERS:
        raise ModelShapeError(f"{context}: {parameters} weights and biases; a network may hold at most "
                              f"{MAX_PARAMETERS}")


def real_array(value: Any) -> tuple:
    """(``value`` as a float64 array, "") if it holds real numbers, else (None, what it holds instead).

    A lone Python integer is taken as the float it rounds to (±Inf beyond float64's range): NumPy would hold one
    beyond 64 bits as an object."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = real_float(value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        return None, f"a {type(value).__name__} that is no rectangular array"
    if arr.dtype.kind not in "fiu":  # bool, complex, text, objects (integers beyond 64 bits ...)
        return None, f"a {type(value).__name__} of {arr.dtype}"
    return arr.astype(np.float64), ""


def beyond_range(values: np.ndarray, dtype: np.dtype):
    """The index of the first of the finite ``values`` that ``dtype`` cannot hold (it would become Inf), or None."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= dtype.itemsize or not values.size:
        return None
    big = np.abs(values) > np.finfo(dtype).max
    return tuple(int(i) for i in np.argwhere(big)[0]) if big.any() else None


def range_text(dtype: np.dtype) -> str:
    """What :func:`beyond_range` checks against, for messages: "float32's range (±3.4e+38)"."""
    return f"{dtype.name}'s range (±{float(np.finfo(dtype).max):.3g})"


def check_state(state: Any, size: int, channels: int, dtype) -> np.ndarray | None:
    """A recurrent state for :meth:`nbrnn.engine.Stream.reset`, checked and cast to ``dtype`` (None stays None).

    ``state`` is one state vector of ``size`` values (every channel starts from it) or one per
    channel, shape (channels, size), in the layout of ``Stream.state``: real, finite numbers that
    ``dtype`` can hold.
    """
    if state is None:  # the model's initial state
        return None
    arr, what = real_array(state)
    if arr is None:
        raise ArgumentError(f"Argument 'state' must be an array of real numbers, not {what}")
    if arr.shape not in ((size,), (channels, size)):
        raise ArgumentError(f"Argument 'state' must have shape ({size},) (one state for every channel) or "
                            f"({channels}, {size}) (one per channel), not {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        raise ArgumentError(f"Argument 'state' holds {arr.size - int(finite.sum())} NaN/Inf value(s); a state must "
                            f"be finite")
    dt = np.dtype(dtype)
    if beyond_range(arr, dt) is not None:
        raise ArgumentError(f"Argument 'state' holds values beyond {range_text(dt)}, up to "
                            f"{float(np.abs(arr).max()):.3g}")
    return arr.astype(dt)


def _array(value: Any, name: str, ndim: int, context: str) -> np.ndarray:
    arr, what = real_array(value)
    if arr is None:
        raise ModelShapeError(f"{context}: '{name}' must hold real numbers, not {what}")
    if arr.ndim != ndim:
        raise ModelShapeError(f"{context}: '{name}' must have {ndim} dimension(s), not shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ModelShapeError(f"{context}: '{name}' holds {bad} NaN/Inf value(s); weights must be finite")
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Dense:
    """A fully connected layer ``y = act(W x + b)`` applied at every sample.

    Parameters
    ----------
    weight : ndarray, shape (out, in)
    bias : ndarray, shape (out,)
    activation : str
        One of :data:`ACTIVATIONS`.
    """

    weight: np.ndarray
    bias: np.ndarray
    activation: str = "linear"

    def __post_init__(self):
        ctx = "dense layer"
        w = _array(self.weight, "weight", 2, ctx)
        b = _array(self.bias, "bias", 1, ctx)
        if b.shape[0] != w.shape[0]:
            raise ModelShapeError(f"{ctx}: bias has {b.shape[0]} values but weight has {w.shape[0]} output rows")
        if w.shape[0] == 0 or w.shape[1] == 0:
            raise ModelShapeError(f"{ctx}: weight shape {w.shape} is empty")
        if not is_choice(self.activation, ACTIVATIONS):
            raise ModelShapeError(f"{ctx}: activation must be one of {', '.join(ACTIVATIONS)}, not "
                                  f"{shown(self.activation)}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def input_size(self) -> int:
        return self.weight.shape[1]

    @property
    def output_size(self) -> int:
        return self.weight.shape[0]

    @property
    def parameter_count(self) -> int:
        return int(self.weight.size + self.bias.size)

    def describe(self) -> str:
        act = "" if self.activation == "linear" else f", {self.activation}"
        return f"Dense {self.input_size}->{self.output_size}{act}"


@dataclasses.dataclass(frozen=True, eq=False)
class Recurrent:
    """One recurrent layer in PyTorch's gate convention.

    Parameters
    ----------
    cell : {'lstm', 'gru', 'rnn_tanh', 'rnn_relu'}
    weight_ih : ndarray, shape (G*H, I)
    weight_hh : ndarray, shape (G*H, H)
    bias_ih, bias_hh : ndarray, shape (G*H,)
    h0 : ndarray, shape (H,), optional
        Stored initial hidden state (zeros when absent).
    c0 : ndarray, shape (H,), optional
        Stored initial cell state of an LSTM (zeros when absent).
    """

    cell: str
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    h0: np.ndarray | None = None
    c0: np.ndarray | None = None

    def __post_init__(self):
        if not is_choice(self.cell, CELL_GATES):
            raise ModelShapeError(f"recurrent layer: cell must be one of {', '.join(CELL_GATES)}, not "
                                  f"{shown(self.cell)}")
        ctx = f"{self.cell} layer"
        g = CELL_GATES[self.cell]
        wih = _array(self.weight_ih, "weight_ih", 2, ctx)
        whh = _array(self.weight_hh, "weight_hh", 2, ctx)
        h = whh.shape[1]
        if h == 0 or wih.shape[1] == 0:
            raise ModelShapeError(f"{ctx}: empty weights (weight_ih {wih.shape}, weight_hh {whh.shape})")
        if whh.shape[0] != g * h:
            raise ModelShapeError(
                f"{ctx}: weight_hh must have shape ({g}*H, H) = ({g * h}, {h}) for hidden size {h}, not {whh.shape}")
        if wih.shape[0] != g * h:
            raise ModelShapeError(f"{ctx}: weight_ih has {wih.shape[0]} rows but hidden size {h} needs {g}*{h} = {g * h}")
        fields = {"weight_ih": wih, "weight_hh": whh}
        for name in ("bias_ih", "bias_hh"):
            b = _array(getattr(self, name), name, 1, ctx)
            if b.shape[0] != g * h:
                raise ModelShapeError(f"{ctx}: {name} must have {g}*H = {g * h} values, not {b.shape[0]}")
            fields[name] = b
        for name in ("h0", "c0"):
            v = getattr(self, name)
            if name == "c0" and self.cell != "lstm":
                if v is not None and np.size(v):
                    raise ModelShapeError(f"{ctx}: only an LSTM has a cell state, but c0 was given")
                fields[name] = np.zeros(0)
                continue
            v = np.zeros(h) if v is None else _array(v, name, 1, ctx)
            if v.shape[0] != h:
                raise ModelShapeError(f"{ctx}: initial state {name} must have H = {h} values, not {v.shape[0]}")
            fields[name] = v
        for name, v in fields.items():
            if v.flags.writeable:
                v = v.copy()
                v.setflags(write=False)
            object.__setattr__(self, name, v)

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def state_size(self) -> int:
        """Values fed back each sample: h and c for an LSTM, h otherwise."""
        return 2 * self.hidden_size if self.cell == "lstm" else self.hidden_size

    @property
    def initial_state(self) -> np.ndarray:
        return np.concatenate([self.h0, self.c0]) if self.cell == "lstm" else self.h0.copy()

    @property
    def parameter_count(self) -> int:
        return int(self.weight_ih.size + self.weight_hh.size + self.bias_ih.size + self.bias_hh.size)

    def describe(self) -> str:
        name = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN(tanh)", "rnn_relu": "RNN(relu)"}[self.cell]
        init = ", stored initial state" if (np.any(self.h0) or np.any(self.c0)) else ""
        return f"{name} {self.input_size}->{self.hidden_size}{init}"


Layer = Dense | Recurrent


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """A complete model: layers, inputs, skip connection, trained rate and provenance.

    Parameters
    ----------
    layers : tuple of Dense / Recurrent
        Applied in order to the input vector at each sample; at most :data:`MAX_LAYERS`
        layers of at most :data:`MAX_PARAMETERS` weights and biases in all.
    skip : int
        The first ``skip`` input channels are added to the first ``skip`` outputs
        (a residual connection; 0 = none).
    trained_rate : float, optional
        The sample rate the model was trained at, in Hz (default 44100).
    rate_source : {'file', 'format default', 'caller'}, optional
        Where ``trained_rate`` came from; by default 'caller' when ``trained_rate`` is given, else
        'format default'.
    input_names : tuple of str
        Names of the input channels; channel 0 is the audio, the rest conditioning.
    format : str
        Name of the file format the model came from.
    source : str
        Path (or description) of where it was loaded from.
    metadata : dict
        Anything else worth keeping (e.g. file-embedded golden I/O, provenance).
    input_gain, output_gain : float
        Linear gains the model file asks the runtime to apply (AIDA-X's ``in_gain`` / ``out_gain``, in dB
        there): input channel 0 (the audio) is multiplied by ``input_gain`` before the network, the skip
        connection included, and the output by ``output_gain``.  From :data:`MIN_GAIN` to :data:`MAX_GAIN`;
        1 = none.
    """

    layers: tuple
    skip: int = 0
    trained_rate: float | None = None
    rate_source: str | None = None
    input_names: tuple = ()
    format: str = "unknown"
    source: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    input_gain: float = 1.0
    output_gain: float = 1.0

    def __post_init__(self):
        if isinstance(self.layers, (str, bytes)) or not hasattr(self.layers, "__iter__"):
            raise ModelShapeError(f"layers must be a sequence of Dense and Recurrent layers, not {shown(self.layers)}")
        layers = tuple(self.layers)
        if not layers:
            raise ModelShapeError("network has no layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Dense, Recurrent)):
                raise ModelShapeError(f"layer {i} is a {type(layer).__name__}, not a Dense or Recurrent layer")
            if i and layer.input_size != layers[i - 1].output_size:
                raise ModelShapeError(
                    f"layer {i} ({layer.describe()}) expects {layer.input_size} inputs, "
                    f"but layer {i - 1} ({layers[i - 1].describe()}) gives {layers[i - 1].output_size}")
        object.__setattr__(self, "layers", layers)
        check_size(len(layers), self.parameter_count, "network")
        n_in = layers[0].input_size
        if not is_integer(self.skip) or self.skip < 0:
            raise ModelShapeError(f"skip must be a non-negative integer, not {shown(self.skip)}")
        if self.skip > min(n_in, layers[-1].output_size):
            raise ModelShapeError(
                f"skip = {self.skip} adds {self.skip} input channel(s) to the output, but the model has "
                f"{n_in} input(s) and {layers[-1].output_size} output(s)")
        object.__setattr__(self, "skip", int(self.skip))
        if self.rate_source is None:
            object.__setattr__(self, "rate_source", "format default" if self.trained_rate is None else "caller")
        rate = DEFAULT_TRAINED_RATE if self.trained_rate is None else self.trained_rate
        object.__setattr__(self, "trained_rate", check_rate(rate, "trained_rate"))
        if not is_choice(self.rate_source, RATE_SOURCES):
            raise ArgumentError(f"Argument 'rate_source' must be one of {RATE_SOURCES}, not {shown(self.rate_source)}")
        if isinstance(self.input_names, str) or not hasattr(self.input_names, "__iter__"):
            raise ModelShapeError(f"input_names must be a sequence of names, not {shown(self.input_names)}")
        names = tuple(self.input_names) or default_input_names(n_in)
        if not all(isinstance(name, str) and name for name in names):
            raise ModelShapeError(f"input_names must be non-empty strings, not {shown(names)}")
        if len(names) != n_in:
            raise ModelShapeError(f"input_names has {len(names)} names for {n_in} inputs")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ModelShapeError(f"input_names must differ from each other (conditioning is given by name), "
                                  f"but {', '.join(map(repr, twice))} appears more than once in {names!r}")
        object.__setattr__(self, "input_names", names)
        for field in ("format", "source"):
            if not isinstance(getattr(self, field), str):
                raise ArgumentError(f"Argument '{field}' must be a string, not {getattr(self, field)!r}")
        if not isinstance(self.metadata, dict):
            raise ArgumentError(f"Argument 'metadata' must be a dict, not {type(self.metadata).__name__}")
        for field in ("input_gain", "output_gain"):
            object.__setattr__(self, field, check_gain(getattr(self, field), field))

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    @property
    def recurrent_layers(self) -> tuple:
        return tuple(layer for layer in self.layers if isinstance(layer, Recurrent))

    @property
    def parameter_count(self) -> int:
        return sum(layer.parameter_count for layer in self.layers)

    def with_trained_rate(self, rate: float, source: str = "caller") -> "Network":
        """Return a copy that declares another trained sample rate."""
        return dataclasses.replace(self, trained_rate=rate, rate_source=source)

    def describe(self) -> str:
        """A multi-line human-readable summary (what ``nbrnn info`` prints)."""
        lines = [
            f"format:       {plain(self.format)}",
            f"source:       {plain(self.source, 400)}",
            f"inputs:       {self.input_size} ({', '.join(plain(name, 60) for name in self.input_names)})",
            f"outputs:      {self.output_size}",
            f"skip:         {self.skip}" + (" (input channel 0 added to the output)" if self.skip == 1 else ""),
            f"trained rate: {self.trained_rate:g} Hz ({self.rate_source})",
            f"parameters:   {self.parameter_count}",
        ]
        if self.input_gain != 1.0:
            lines.append(f"input gain:   {gain_text(self.input_gain)} on the audio input, before the network "
                         f"and its skip")
        if self.output_gain != 1.0:
            lines.append(f"output gain:  {gain_text(self.output_gain)} on the output")
        lines.append("layers:")
        lines += [f"  {i}: {layer.describe()}" for i, layer in enumerate(self.layers)]
        return "\n".join(lines)


def default_input_names(n_inputs: int) -> tuple:
    """``('audio', 'cond1', 'cond2', ...)``."""
    return ("audio",) + tuple(f"cond{i}" for i in range(1, n_inputs))
