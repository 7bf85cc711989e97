"""A slow, plain NumPy implementation of the whole engine, for checking the kernels and for analysis.

It follows ``docs/methods.md`` literally (one sample at a time, the history of
states kept as a list, float64), shares no code with :mod:`nbrnn._kernels`, and
so is an independent witness for the fast paths.  :func:`step` is also the map
whose Jacobian :mod:`nbrnn.stability` linearises.
"""

from __future__ import annotations

import math

import numpy as np

from .adapt import KIND_ALLPASS, KIND_STN, Plan
from .errors import ArgumentError, UnstableError
from .network import Dense, Network, Recurrent


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def activation(name: str, v: np.ndarray) -> np.ndarray:
    """The dense layers' activations, written from their textbook definitions."""
    if name == "linear":
        return v
    if name == "tanh":
        return np.tanh(v)
    if name == "sigmoid":
        return _sigmoid(v)
    if name == "relu":
        return np.maximum(v, 0.0)
    if name == "elu":
        return np.where(v < 0, np.expm1(np.minimum(v, 0.0)), v)
    if name == "softmax":
        e = np.exp(v - v.max())
        return e / e.sum()
    if name == "selu":
        alpha, scale = 1.6732632423543772, 1.0507009873554805
        return scale * np.where(v < 0, alpha * np.expm1(np.minimum(v, 0.0)), v)
    if name == "softplus":
        return np.logaddexp(0.0, v)
    if name == "gelu":
        return 0.5 * v * (1.0 + np.vectorize(math.erf)(v / math.sqrt(2.0)))
    raise ValueError(name)


def _vector(value, size: int, name: str) -> np.ndarray:
    """``value`` as a float64 vector of ``size`` real numbers, or an ArgumentError naming ``name``."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists
        array = np.asarray(None)
    if array.dtype.kind not in "fiu" or array.shape != (size,):
        what = f"{array.dtype} array of shape {array.shape}" if array.dtype != object else type(value).__name__
        raise ArgumentError(f"Argument '{name}' must be {size} real number(s), not a {what}")
    return array.astype(np.float64)


def cell(layer: Recurrent, x: np.ndarray, state: np.ndarray) -> np.ndarray:
    """One step of a recurrent cell: fed-back state (h, or h then c) → fresh state."""
    if not isinstance(layer, Recurrent):
        raise ArgumentError(f"Argument 'layer' must be an nbrnn Recurrent layer, not {type(layer).__name__}")
    return _cell(layer, _vector(x, layer.input_size, "x"), _vector(state, layer.state_size, "state"))


def _cell(layer: Recurrent, x: np.ndarray, state: np.ndarray) -> np.ndarray:
    """:func:`cell` on arguments known to fit (the loops here, and :mod:`nbrnn.stability`'s, check them once)."""
    hid = layer.hidden_size
    h = state[:hid]
    if layer.cell == "lstm":
        c = state[hid:]
        z = layer.weight_ih @ x + layer.bias_ih + layer.weight_hh @ h + layer.bias_hh
        i, f, g, o = (z[k * hid:(k + 1) * hid] for k in range(4))
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return np.concatenate([_sigmoid(o) * np.tanh(c_new), c_new])
    if layer.cell == "gru":
        gi = layer.weight_ih @ x + layer.bias_ih
        gh = layer.weight_hh @ h + layer.bias_hh
        r = _sigmoid(gi[:hid] + gh[:hid])
        z = _sigmoid(gi[hid:2 * hid] + gh[hid:2 * hid])
        n = np.tanh(gi[2 * hid:] + r * gh[2 * hid:])
        return (1.0 - z) * n + z * h
    pre = layer.weight_ih @ x + layer.bias_ih + layer.weight_hh @ h + layer.bias_hh
    return np.tanh(pre) if layer.cell == "rnn_tanh" else np.maximum(pre, 0.0)


def step(network: Network, x: np.ndarray, fed_back: list) -> tuple:
    """All layers for one sample from the fed-back states (fresh-state convention).

    Returns the fresh states (one array per recurrent layer) and the network's output.
    """
    if not isinstance(network, Network):
        raise ArgumentError(f"Argument 'network' must be an nbrnn Network (a Model's is model.network), "
                            f"not {type(network).__name__}")
    layers = network.recurrent_layers
    if not isinstance(fed_back, (list, tuple)) or len(fed_back) != len(layers):
        raise ArgumentError(f"Argument 'fed_back' must be a list of {len(layers)} state(s), one per recurrent "
                            f"layer, not {type(fed_back).__name__}"
                            + (f" of {len(fed_back)}" if isinstance(fed_back, (list, tuple)) else ""))
    fed_back = [_vector(s, layer.state_size, f"fed_back[{i}]") for i, (s, layer) in enumerate(zip(fed_back, layers))]
    return _step(network, _vector(x, network.input_size, "x"), fed_back)


def _step(network: Network, x: np.ndarray, fed_back: list) -> tuple:
    """:func:`step` on arguments known to fit."""
    x = _gained(network, x)
    v = x
    fresh = []
    r = 0
    for layer in network.layers:
        if isinstance(layer, Dense):
            v = activation(layer.activation, layer.weight @ v + layer.bias)
        else:
            s = _cell(layer, v, fed_back[r])
            fresh.append(s)
            v = s[:layer.hidden_size]
            r += 1
    out = v.copy()
    out[:network.skip] += x[:network.skip]
    return fresh, out * network.output_gain


def _gained(network: Network, x) -> np.ndarray:
    """``x`` (one sample, or rows of samples) as float64 with its audio input (channel 0) times the input gain."""
    x = np.array(x, dtype=np.float64)
    x[..., 0] *= network.input_gain
    return x


def run(network: Network, x: np.ndarray, plan: Plan) -> np.ndarray:
    """Process ``x`` (n, inputs) with a delay-line ``plan`` (any convention) or ``stn``; returns (n, outputs).

    Resampling plans (``oversample``, ``resample``) are wrappers around the
    delay-line core and are not modelled here: they raise :class:`~nbrnn.errors.ArgumentError`
    (an ``oversample`` plan's core is the plan of its inner method at the oversampled rate).
    """
    if not isinstance(network, Network):
        raise ArgumentError(f"Argument 'network' must be an nbrnn Network (a Model's is model.network), "
                            f"not {type(network).__name__}")
    if not isinstance(plan, Plan):
        raise ArgumentError(f"Argument 'plan' must be an nbrnn Plan (Model.plan, make_plan), not {type(plan).__name__}")
    if plan.oversample != 1 or plan.resample is not None:
        raise ArgumentError(f"Argument 'plan' is method '{plan.method}' ({plan.description}), which resamples the "
                            f"signal around the model; reference.run implements the delay-line methods and 'stn' only")
    try:
        x = np.asarray(x)
    except (TypeError, ValueError):
        x = np.asarray(None)
    if x.dtype.kind not in "fiu":  # complex would lose its imaginary part; bool is no signal
        what = f"{x.dtype} array" if x.dtype != object else "object"
        raise ArgumentError(f"Argument 'x' must be an array of real numbers, not a {what}")
    x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] != network.input_size:
        raise ArgumentError(f"Argument 'x' must have shape (n, inputs = {network.input_size}), not {x.shape}")
    if not np.isfinite(x).all():
        raise ArgumentError("Argument 'x' holds NaN/Inf values")
    x = _gained(network, x)
    layers = network.recurrent_layers
    depth = max(int(plan.depth), 1)
    # history[l][d-1] = state d samples old (as seen when computing the next sample)
    history = [[layer.initial_state.copy() for _ in range(depth + 1)] for layer in layers]
    feedback = [layer.initial_state.copy() for layer in layers]
    out = np.empty((x.shape[0], network.output_size))
    for n in range(x.shape[0]):
        v = x[n]
        r = 0
        for layer in network.layers:
            if isinstance(layer, Dense):
                v = activation(layer.activation, layer.weight @ v + layer.bias)
                continue
            fb = feedback[r]
            s = _cell(layer, v, fb)
            if plan.kind == KIND_STN:
                s = fb + plan.tap_weight[0] * (s - fb)
            history[r].insert(0, s)
            history[r].pop()
            if plan.kind == KIND_STN:
                nxt = s
            elif plan.kind == KIND_ALLPASS:
                k, a = int(plan.tap_delay[0]), plan.tap_weight[0]
                nxt = a * (history[r][k - 1] - fb) + history[r][k]
            else:
                nxt = sum(w * history[r][d - 1] for d, w in zip(plan.tap_delay, plan.tap_weight))
            feedback[r] = nxt
            v = (nxt if plan.delayed_output else s)[:layer.hidden_size]
            r += 1
        out[n] = v
        out[n, :network.skip] += x[n, :network.skip]
    out *= network.output_gain
    if not np.isfinite(out).all():  # as the engine reports it
        raise UnstableError(f"reference.run: the output is not finite from sample "
                            f"{int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])} on")
    return out
