"""Between the canonical model and the kernels: packing, state, streaming and resampling stages.

:func:`pack` turns a :class:`~nbrnn.network.Network` into the kernel's flat arrays
for one float type (weights cast once here, never in the kernel).  A
:class:`Stream` owns the state of one run (plan, channels, dtype) and processes
audio block by block; splitting a signal into blocks of any size gives exactly
the one-shot result.  Resampling plans (``resample`` and ``oversample``) add
polyphase stages whose latency is trimmed, so ``feed`` + ``finish`` return the
same samples as one whole-signal call.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np

from . import _kernels
from .adapt import Plan
from .errors import ArgumentError, UnstableError
from .network import CELL_GATES, Dense, Network

_KIND = {"lstm": _kernels.LSTM, "gru": _kernels.GRU, "rnn_tanh": _kernels.RNN_TANH, "rnn_relu": _kernels.RNN_RELU}
DTYPES = {"float32": np.float32, "float64": np.float64}
ACTIVATION_PATHS = ("accurate", "fast")

#: Largest numerator/denominator of a rate ratio the polyphase resampler accepts.
MAX_POLYPHASE_FACTOR = 4096


def check_dtype(dtype) -> np.dtype:
    """Validate a dtype argument ('float32' / 'float64' or the numpy types)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ArgumentError(f"Argument 'dtype' must be 'float32' or 'float64', not {dtype!r}")
    return dt


@dataclasses.dataclass(frozen=True, eq=False)
class Packed:
    """A network laid out for the kernels in one float type."""

    table: np.ndarray
    params: np.ndarray
    initial_state: np.ndarray  # concatenated s0 of every recurrent layer
    width: int  # largest vector between layers
    gate_width: int  # largest G*H
    consts: np.ndarray
    n_inputs: int
    n_outputs: int
    skip: int


def _aligned(n: int, dtype, fill=0.0) -> np.ndarray:
    """A 1-D array whose data starts on a 64-byte boundary (cache-line aligned loads)."""
    dt = np.dtype(dtype)
    raw = np.empty(n * dt.itemsize + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    arr = raw[start:start + n * dt.itemsize].view(dt)
    arr[:] = fill
    return arr


def pack(network: Network, dtype) -> Packed:
    """Lay ``network`` out as (table, params) for the kernels, cast to ``dtype``."""
    dt = check_dtype(dtype)
    rows, chunks, states = [], [], []
    offset = 0
    state_offset = 0

    def put(arr):
        nonlocal offset
        start = offset
        chunks.append(np.ascontiguousarray(arr, dtype=np.float64).ravel())
        offset += chunks[-1].size
        return start

    width = network.input_size
    gate_width = 1
    for layer in network.layers:
        width = max(width, layer.output_size)
        if isinstance(layer, Dense):
            w = put(layer.weight.T)
            b = put(layer.bias)
            rows.append([_kernels.DENSE, layer.input_size, layer.output_size, w, -1, b, -1,
                         _kernels.ACT_CODES[layer.activation], -1, 0])
            continue
        g = CELL_GATES[layer.cell] * layer.hidden_size
        gate_width = max(gate_width, g)
        wih = put(layer.weight_ih.T)
        whh = put(layer.weight_hh.T)
        if layer.cell == "gru":
            b = put(layer.bias_ih)
            bhh = put(layer.bias_hh)
        else:
            b = put(layer.bias_ih + layer.bias_hh)
            bhh = -1
        s = layer.state_size
        rows.append([_KIND[layer.cell], layer.input_size, layer.hidden_size, wih, whh, b, bhh, 0, state_offset, s])
        states.append(layer.initial_state)
        state_offset += s
    flat = np.concatenate(chunks) if chunks else np.zeros(0)
    params = _aligned(flat.size, dt)
    params[:] = flat
    consts = np.array([0.0, 1.0, 0.5, 1.6732632423543772, 1.0507009873554805, math.sqrt(0.5)], dtype=dt)
    init = np.concatenate(states).astype(dt) if states else np.zeros(0, dtype=dt)
    return Packed(np.array(rows, dtype=np.int64), params, init, width, gate_width, consts,
                  network.input_size, network.output_size, network.skip)


def rate_fraction(ratio: float, name: str) -> Fraction:
    """``ratio`` as a small fraction up/down for the polyphase resampler."""
    frac = Fraction(ratio).limit_denominator(MAX_POLYPHASE_FACTOR)
    if frac.numerator == 0 or frac.numerator > MAX_POLYPHASE_FACTOR or abs(float(frac) - ratio) > 1e-12 * ratio:
        raise ArgumentError(
            f"{name}: the rate ratio {ratio!r} is not a fraction with terms <= {MAX_POLYPHASE_FACTOR}; "
            f"use resampler='fft' or rates with a simpler ratio")
    return frac


class PolyphaseStage:
    """Streaming rational resampler (Kaiser-windowed sinc, like ``scipy.signal.resample_poly``) with trimmed latency.

    ``feed`` returns every output sample whose inputs are all known; ``finish``
    returns the rest so that the total is ``ceil(n_in · up / down)`` samples,
    aligned exactly as a zero-latency resampler would place them.
    """

    def __init__(self, up: int, down: int, channels: int, dtype):
        from scipy.signal import firwin

        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        top = max(self.up, self.down)
        half = 10 * top
        h = firwin(2 * half + 1, 1.0 / top, window=("kaiser", 5.0)) * self.up
        pre = (-half) % self.down  # leading zeros make the delay a whole number of output samples
        self.h = np.concatenate([np.zeros(pre), h]).astype(dtype)
        self.latency = (half + pre) // self.down
        self.keep = -(-self.h.size // self.up) + 1  # input samples one output can reach back
        self.history = np.zeros((0, channels), dtype=dtype)
        self.first = 0  # global index of history[0]
        self.n_in = 0
        self.next_m = 0  # next full-output row to compute
        self.channels = channels
        self.dtype = dtype

    def _rows(self, last_row: int) -> np.ndarray:
        count = max(0, last_row - self.next_m + 1)
        out = np.empty((count, self.channels), dtype=self.dtype)
        if count:
            _kernels.polyphase(self.h, self.up, self.down, self.history, self.first, self.next_m, out)
        start = self.next_m
        self.next_m += count
        skip = max(0, self.latency - start)
        return out[skip:]

    def feed(self, x: np.ndarray) -> np.ndarray:
        self.history = np.concatenate([self.history, x])
        self.n_in += x.shape[0]
        # rows whose whole support is known: m·down <= (n_in − 1)·up ... plus the taps' reach into the past
        last = ((self.n_in - 1) * self.up) // self.down if self.n_in else -1
        out = self._rows(last)
        drop = max(0, self.history.shape[0] - self.keep)
        self.history = self.history[drop:]
        self.first += drop
        return out

    def finish(self) -> np.ndarray:
        total = -(-self.n_in * self.up // self.down)
        last = self.latency + total - 1
        return self._rows(last)


class Stream:
    """The state of one run of a packed network with one plan over ``channels`` independent channels.

    Parameters
    ----------
    packed : Packed
    plan : Plan
    channels : int
    sample_rate, trained_rate : float
        Needed by resampling plans.
    """

    def __init__(self, packed: Packed, plan: Plan, channels: int, sample_rate: float, trained_rate: float,
                 context: str = "", activations: str = "accurate"):
        self.packed = packed
        self.plan = plan
        self.channels = channels
        self.sample_rate = sample_rate
        self.trained_rate = trained_rate
        self.context = context
        self.activations = activations
        self.dtype = packed.params.dtype
        dt = self.dtype
        c = channels
        s = packed.initial_state.size
        self.ring = np.empty((c, max(1, s * plan.depth)), dtype=dt)
        self.feedback = np.empty((c, max(1, s)), dtype=dt)
        self.position = np.zeros((c, 1), dtype=np.int64)
        self.buf_a = np.zeros((c, packed.width), dtype=dt)
        self.buf_b = np.zeros((c, packed.width), dtype=dt)
        self.gates = np.zeros((c, packed.gate_width), dtype=dt)
        self.gates2 = np.zeros((c, packed.gate_width), dtype=dt)
        self.tap_delay = np.ascontiguousarray(plan.tap_delay, dtype=np.int64)
        self.tap_weight = np.ascontiguousarray(plan.tap_weight, dtype=dt)
        self.reset()

    def reset(self, state: np.ndarray | None = None) -> None:
        """Return to the model's initial state (or to ``state``: one recurrent state vector per channel)."""
        s0 = self.packed.initial_state if state is None else state
        s = self.packed.initial_state.size
        depth = self.plan.depth
        for c in range(self.channels):
            row = s0 if np.ndim(s0) == 1 else s0[c]
            if s:
                # ring layout: per layer, depth rows of S values
                for l in range(self.packed.table.shape[0]):
                    if self.packed.table[l, 0] == _kernels.DENSE:
                        continue
                    off, size = self.packed.table[l, 8], self.packed.table[l, 9]
                    block = self.ring[c, off * depth:(off + size) * depth].reshape(depth, size)
                    block[:] = row[off:off + size]
                self.feedback[c, :s] = row
        self.position[:] = 0
        self._pre = self._post = None
        self._fft_pending = []
        self._cond = np.zeros((self.channels, 0, max(0, self.packed.n_inputs - 1)), dtype=self.dtype)
        self._cond_first = 0
        self._model_rows = 0
        self._fed = self._emitted = 0
        plan = self.plan
        if plan.resample == "polyphase" or plan.oversample > 1:
            if plan.oversample > 1:
                frac = Fraction(plan.oversample)
            else:
                frac = rate_fraction(self.trained_rate / self.sample_rate, self.context or "method 'resample'")
            if frac != 1:
                self._pre = PolyphaseStage(frac.numerator, frac.denominator, self.channels, self.dtype)
                self._post = PolyphaseStage(frac.denominator, frac.numerator,
                                            self.channels * self.packed.n_outputs, self.dtype)

    @property
    def state(self) -> np.ndarray:
        """The fed-back state each channel would use next (channels × total state size), a copy."""
        return self.feedback[:, :self.packed.initial_state.size].copy()

    @property
    def streams_exactly(self) -> bool:
        """True when every block's output has exactly the block's length (no resampling stage)."""
        return self._pre is None and self.plan.resample != "fft"

    def _run(self, inp: np.ndarray) -> np.ndarray:
        """Run the kernel on (channels, n, inputs) at the model's rate."""
        n = inp.shape[1]
        out = np.empty((self.channels, n, self.packed.n_outputs), dtype=self.dtype)
        if n == 0:
            return out
        p, plan = self.packed, self.plan
        if self.channels == 1:
            _kernels.run_network(inp[0], out[0], p.table, p.params, self.ring[0], self.feedback[0], self.position[0],
                                 plan.depth, plan.kind, self.tap_delay, self.tap_weight, plan.delayed_output, p.skip,
                                 p.consts, self.buf_a[0], self.buf_b[0], self.gates[0], self.gates2[0])
        else:
            _kernels.run_channels(inp, out, p.table, p.params, self.ring, self.feedback, self.position, plan.depth,
                                  plan.kind, self.tap_delay, self.tap_weight, plan.delayed_output, p.skip, p.consts,
                                  self.buf_a, self.buf_b, self.gates, self.gates2)
        if not np.all(np.isfinite(out)):
            raise UnstableError(
                f"{self.context}: the output became non-finite (NaN/Inf): the adapted feedback loop diverged "
                f"with {plan.description}; try another method (e.g. 'resample' or a lower order)")
        return out

    def feed(self, inp: np.ndarray) -> np.ndarray:
        """Process (channels, n, inputs); returns (channels, m, outputs), m = n for delay-line plans."""
        if self.plan.resample == "fft":
            self._fft_pending.append(inp)
            return np.empty((self.channels, 0, self.packed.n_outputs), dtype=self.dtype)
        if self._pre is None:
            return self._run(inp)
        self._hold_append(inp)
        self._fed += inp.shape[1]
        return self._trim(self._through_stages(self._pre.feed(np.ascontiguousarray(inp[:, :, 0].T))))

    def finish(self) -> np.ndarray:
        """Flush resampling stages (whole-signal plans); nothing for delay-line plans."""
        if self.plan.resample == "fft":
            return self._fft_whole()
        if self._pre is None:
            return np.empty((self.channels, 0, self.packed.n_outputs), dtype=self.dtype)
        return self._trim(self._through_stages(self._pre.finish(), final=True))

    def _trim(self, out):
        # the two rational stages round lengths up; the output keeps exactly the input's length
        keep = max(0, min(out.shape[1], self._fed - self._emitted))
        self._emitted += keep
        return out[:, :keep]

    # Conditioning inputs are control values, not audio: they are held (sample-and-hold at
    # the model's rate) rather than resampled, so a constant knob stays constant at the edges.
    def _hold_append(self, inp):
        if self.packed.n_inputs > 1:
            self._cond = np.concatenate([self._cond, inp[:, :, 1:]], axis=1)

    def _with_conditioning(self, audio_rows: np.ndarray, first_row: int, up: int, down: int) -> np.ndarray:
        n = audio_rows.shape[0]
        inp = np.empty((self.channels, n, self.packed.n_inputs), dtype=self.dtype)
        inp[:, :, 0] = audio_rows.T
        if self.packed.n_inputs > 1 and n:
            src = (np.arange(first_row, first_row + n) * down) // up - self._cond_first
            src = np.clip(src, 0, self._cond.shape[1] - 1)
            inp[:, :, 1:] = self._cond[:, src, :]
            drop = max(0, int(src[-1]) - 1)
            self._cond = self._cond[:, drop:]
            self._cond_first += drop
        return inp

    def _through_stages(self, rows, final=False):
        pre = self._pre
        first = self._model_rows
        self._model_rows += rows.shape[0]
        y = self._run(self._with_conditioning(rows, first, pre.up, pre.down))
        out = self._post.feed(np.ascontiguousarray(y.transpose(1, 0, 2).reshape(y.shape[1], -1)))
        if final:
            out = np.concatenate([out, self._post.finish()])
        n = out.shape[0]
        return np.ascontiguousarray(out.reshape(n, self.channels, self.packed.n_outputs).transpose(1, 0, 2))

    def _fft_whole(self):
        from scipy.signal import resample

        inp = np.concatenate(self._fft_pending, axis=1) if self._fft_pending else np.zeros(
            (self.channels, 0, self.packed.n_inputs), self.dtype)
        self._fft_pending = []
        n = inp.shape[1]
        if n == 0:
            return np.empty((self.channels, 0, self.packed.n_outputs), dtype=self.dtype)
        m = max(1, int(round(n * self.trained_rate / self.sample_rate)))
        low = np.empty((self.channels, m, self.packed.n_inputs), dtype=self.dtype)
        low[:, :, 0] = resample(inp[:, :, 0].astype(np.float64), m, axis=1)
        if self.packed.n_inputs > 1:
            src = np.minimum((np.arange(m) * n) // m, n - 1)
            low[:, :, 1:] = inp[:, src, 1:]
        y = self._run(low)
        return np.ascontiguousarray(resample(y.astype(np.float64), n, axis=1).astype(self.dtype))
