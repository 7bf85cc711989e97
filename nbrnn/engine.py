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

from . import _checks, _kernels
from .adapt import KIND_ALLPASS, KIND_FIR, Plan
from .errors import ArgumentError, AudioError, UnstableError, shown
from .network import CELL_GATES, Dense, Network, beyond_range, check_state

_KIND = {"lstm": _kernels.LSTM, "gru": _kernels.GRU, "rnn_tanh": _kernels.RNN_TANH, "rnn_relu": _kernels.RNN_RELU}
DTYPES = {"float32": np.float32, "float64": np.float64}
ACTIVATION_PATHS = ("accurate", "fast")

#: Largest numerator/denominator of a rate ratio the polyphase resampler accepts.
MAX_POLYPHASE_FACTOR = 4096
#: A recurrent state beyond this (float32's largest value) has diverged, in either dtype: an LSTM's cell state
#: grows by at most 1 per sample in a stable loop.  Checked after every block, as the output's finiteness is.
STATE_LIMIT = float(np.finfo(np.float32).max)


def check_dtype(dtype) -> np.dtype:
    """Validate a dtype argument ('float32' / 'float64' or the numpy types)."""
    try:
        dt = None if dtype is None else np.dtype(dtype)  # np.dtype(None) is float64
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ArgumentError(f"Argument 'dtype' must be 'float32' or 'float64', not {shown(dtype)}")
    return np.dtype(dt.name)  # native byte order ('>f8' is float64 too)


@dataclasses.dataclass(frozen=True, eq=False)
class DenseStage:
    """A dense layer of a :class:`StackLayout` that runs as a pass over a block (:func:`_kernels.dense_rows`)."""

    weight: np.ndarray  # (inputs, outputs): W^T, its rows padded to the width of the vector it reads
    bias: np.ndarray  # (outputs,)
    activation: int  # _kernels.ACT_CODES


@dataclasses.dataclass(frozen=True, eq=False)
class StackLayer:
    """One recurrent layer of a :class:`StackLayout`: views into its params, and its state's place."""

    cell: str
    hidden: int  # H
    padded: int  # Hp, H rounded up to 8
    state: int  # Sp, its part of the padded state row (2 Hp for an LSTM: h then c)
    offset: int  # where that part starts in the padded state row
    w_ih: np.ndarray  # (groups, unroll, Gp): W_ih^T, rows grouped by 8, 2 or 1 (UNROLL)
    w_hh: np.ndarray  # (groups, unroll, Gp): W_hh^T; or (Gp/lanes, Hp, lanes) panels (PANEL)
    bias_a: np.ndarray  # (Gp,) the gates' bias (a GRU's n block: b_in only)
    bias_b: np.ndarray  # (Gp,) a GRU's recurrent bias (b_hn in the n block), zeros otherwise
    inputs: int = 1  # the width of its input rows
    before: tuple = ()  # of DenseStage: dense layers between the previous recurrent layer (or the input) and this one


@dataclasses.dataclass(frozen=True, eq=False)
class StackLayout:
    """A network with recurrent layers, laid out for the stack kernels of :mod:`nbrnn._kernels`.

    Gate blocks are Hp wide and the LSTM's i, f, o (GRU's r, z) rows are halved,
    so that one tanh serves every gate; padding lanes have zero weights and stay
    zero.  Every array is a 64-byte aligned view into ``params``.  After the last
    recurrent layer, one linear dense layer (or none) is the head the kernel
    computes; any other dense layers there are the ``tail``, run as block passes.
    """

    params: np.ndarray
    layers: tuple  # of StackLayer
    head_w: np.ndarray  # (outputs, Hp/8, 8) of the last layer (identity when the network has no dense head)
    head_b: np.ndarray  # (outputs,)
    state_size: int  # the padded state row: sum of Sp
    state_index: np.ndarray  # where each value of the canonical state sits in the padded row
    gate_width: int  # largest Gp
    tail: tuple = ()  # of DenseStage: the dense layers after the last recurrent layer, unless one linear head


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
    stack: StackLayout | None = None  # the fast layout, when the network is a recurrent stack
    input_gain: float = 1.0  # Network.input_gain and output_gain, applied around the kernels
    output_gain: float = 1.0


def _aligned(n: int, dtype, fill=0.0) -> np.ndarray:
    """A 1-D array whose data starts on a 64-byte boundary (cache-line aligned loads)."""
    dt = np.dtype(dtype)
    raw = np.empty(n * dt.itemsize + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    arr = raw[start:start + n * dt.itemsize].view(dt)
    arr[:] = fill
    return arr


class _Arena:
    """Arrays laid out back to back in one zeroed 64-byte aligned block, each starting on a 64-byte boundary."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.parts = []
        self.size = 0
        self.block = None

    def add(self, shape) -> int:
        n = int(np.prod(shape))
        self.parts.append((self.size, tuple(shape), n))
        self.size += _ceil(max(n, 1), 64 // self.dtype.itemsize)
        return len(self.parts) - 1

    def allocate(self) -> None:
        self.block = _aligned(self.size, self.dtype)

    def get(self, part: int) -> np.ndarray:
        start, shape, n = self.parts[part]
        return self.block[start:start + n].reshape(shape)


def _chunk(default: int | None, per_sample: int, itemsize: int) -> int | None:
    """Samples per chunk: ``default`` (None: no chunks), shortened so that the chunk buffers, ``per_sample``
    values per sample, stay within CHUNK_BYTES."""
    if default is None:
        return None
    return max(MIN_CHUNK, min(default, CHUNK_BYTES // max(1, per_sample * itemsize)))


def pack(network: Network, dtype, specialise: bool = True) -> Packed:
    """Lay ``network`` out as (table, params) for the kernels, cast to ``dtype``.

    Recurrent stacks with a linear head also get the layout of the fast kernels
    (``Packed.stack``) unless ``specialise`` is False.
    """
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
    states = [np.asarray(v, dtype=np.float64) for v in states]
    biggest = max([float(np.abs(a).max(initial=0.0)) for a in [flat, *states]])
    if biggest > float(np.finfo(dt).max):  # the LSTM's summed biases too
        raise ArgumentError(f"Argument 'dtype' {dt.name!r}: the model's weights reach {biggest:.3g}, beyond "
                            f"{dt.name}'s range ({float(np.finfo(dt).max):.3g}); run it in float64")
    params = _aligned(flat.size, dt)
    params[:] = flat
    consts = _kernels.constants(dt)
    init = np.concatenate(states).astype(dt) if states else np.zeros(0, dtype=dt)
    stack = pack_stack(network, dt) if specialise else None
    return Packed(np.array(rows, dtype=np.int64), params, init, width, gate_width, consts,
                  network.input_size, network.output_size, network.skip, stack, network.input_gain,
                  network.output_gain)


#: How many rows of a weight matrix the stack kernels read per pass over the gates, by the matrix's
#: size: (largest size in bytes, rows) in increasing order; one row per pass above the last.  Eight
#: while the weights fit the L1 cache (fewer passes over the partial sums); once they stream from L2,
#: two (up to 192 KiB: 11-20 % faster than one or eight for LSTM H = 64 in float32 and float64, GRU
#: H = 64 float64), then one (float64 H = 128).  Measured in docs/speed.md.  A recurrent matrix beyond
#: PANEL bytes comes as panels instead (faster still); the input-side matrices always use these.
UNROLL = ((48 * 1024, 8), (192 * 1024, 2))
#: Recurrent weight matrices larger than this many bytes are packed as panels for the stack kernels: 128 bytes
#: of gate columns (32 float32 or 16 float64), every row, then the next 128 bytes, so that the kernel sums
#: each panel's gates in registers over all rows, reading the weights as one sequential stream (no partial
#: sums through memory).  Same bits as one row per pass.  Measured in docs/speed.md.
PANEL = 48 * 1024
#: The panels' width in bytes (the kernels' vectors: two 512-bit registers).
PANEL_BYTES = _kernels.PANEL_BYTES
#: Padded hidden sizes (inclusive range) whose layers run on a kernel compiled for that size, by cell
#: and dtype item size: every loop's trip count is then a constant.  Measured (docs/speed.md): 5-27 %
#: faster there (GRU 0-25 %); outside these ranges the size-generic kernel was as fast or faster (a
#: loop of 8 with a constant trip count is not vectorised; above 64 the weights stream from L2 anyway).
#: Same bits as the size-generic kernel: the stack kernels leave no multiply-add to the optimiser's
#: fusion choices (tests/test_fast_paths.py).
TILED = {("lstm", 4): (16, 64), ("lstm", 8): (16, 64), ("gru", 4): (24, 64), ("gru", 8): (24, 64)}
#: Smallest padded hidden size, by cell and item size: a float32 LSTM of H <= 8 runs as H = 16 with
#: zero rows (exact: a padded unit's state stays 0) on the tiled kernel, faster than H = 8 untiled.
#: Not for a network of the register kernel's shape (:func:`small_shape`), which runs H = 8 faster.
MIN_PADDED = {("lstm", 4): 16}
#: Smallest gate width (the padded 3·Hp of a GRU), by cell and item size: a float32 GRU of H <= 16 runs
#: with 64 gate rows (zero rows past 3·Hp), so that its gate loops are long enough for the vectoriser's
#: main loop (16 lanes × 4); 7-17 % faster than 24 or 48 rows (docs/speed.md).
MIN_GATES = {("gru", 4): 64}
#: Padded hidden sizes of a single LSTM or GRU layer (one to eight inputs, :func:`_register_shape`) that runs on
#: the kernel keeping its state in SIMD registers (``_kernels.lstm_small``, ``gru_small``), plain or with a CHAIN
#: plan, by cell and dtype item size; same bits as the generic kernel (docs/speed.md, items 12-13 and 21).  Not
#: the float64 LSTM at 32 (plain 6-8 % slower than the generic kernel: its four gate vectors of 32 float64
#: crowd the registers), nor the float64 GRU at 32 (3-6 % faster than the generic kernel on Zen 5, 12 % slower
#: on Zen 4); not 24 or 40 (LLVM's code for vectors of 24 or 40 lanes ran 2-5 times slower).
SMALL = {("lstm", 4): (8, 16, 32), ("lstm", 8): (8, 16), ("gru", 4): (8, 16, 32), ("gru", 8): (8, 16)}
#: Samples per chunk when a stack has several recurrent layers (the states passed between layers hold one chunk).
STACK_CHUNK = 1024
#: Samples per chunk when one recurrent layer has dense layers in front or behind (their outputs hold one chunk):
#: larger, because each chunk costs a few microseconds of calls (KlonCentaur, GRU 8 behind a dense layer: 10 %
#: faster than with 1024).
PASS_CHUNK = 4096
#: Bytes the chunk buffers of one stream may take, all channels together: wide layers or many channels get
#: chunks shorter than the two above (never shorter than MIN_CHUNK), so that memory does not grow with
#: channels x chunk x width unchecked (a stack of wide dense layers on 8 channels asked for 13 GB).
CHUNK_BYTES = 64 << 20
MIN_CHUNK = 16

# Gate blocks whose rows are pre-scaled by 1/2 (sigmoid gates: sigmoid(x) = tanh(x/2)/2 + 1/2).
_HALVED = {"lstm": (True, True, False, True), "gru": (True, True, False), "rnn_tanh": (False,),
           "rnn_relu": (False,)}


def _split(network: Network) -> tuple:
    """(the dense layers before each recurrent layer, the recurrent layers, the dense layers after the last)."""
    before, recurrent, pending = [], [], []
    for layer in network.layers:
        if isinstance(layer, Dense):
            pending.append(layer)
        else:
            before.append(tuple(pending))
            recurrent.append(layer)
            pending = []
    return before, recurrent, pending


def _fused_head(tail) -> bool:
    """Whether the dense layers after the last recurrent layer are none or one linear layer (the kernels' head)."""
    return not tail or (len(tail) == 1 and tail[0].activation == "linear")


def is_stack(network: Network) -> bool:
    """True for a network with a recurrent layer: it runs on the stack kernels (dense-only ones do not)."""
    return any(not isinstance(layer, Dense) for layer in network.layers)


def _register_shape(layers, inputs: int, outputs: int, skip: int, itemsize: int, tail: bool) -> bool:
    """One recurrent layer, given as (cell, padded size), of a size :data:`SMALL` lists, with one to eight inputs
    (one to seven have their weight rows packed one per pass, eight as a group summed as a tree; the kernel mirrors
    both), and either dense layers behind (``tail``: they take the states) or one output and at most a
    one-channel skip: the shape of the kernel that keeps the state in registers."""
    return (len(layers) == 1 and layers[0][1] in SMALL.get((layers[0][0], itemsize), ()) and 1 <= inputs <= 8
            and (tail or (outputs == 1 and skip <= 1)))


def small_shape(network: Network, dtype: np.dtype) -> bool:
    """Whether ``network`` has the register kernel's shape (:func:`_register_shape`, after any dense layers in front;
    the plan decides the rest)."""
    before, recurrent, tail = _split(network)
    if not recurrent:
        return False
    inputs = before[0][-1].output_size if before[0] else network.input_size
    layers = [(layer.cell, _ceil(layer.hidden_size, 8)) for layer in recurrent]
    return _register_shape(layers, inputs, network.output_size, network.skip, dtype.itemsize, not _fused_head(tail))


def _tiles(layer: StackLayer, dtype: np.dtype) -> tuple:
    """The stack kernels' ``tiles`` argument: one 0 per group of eight hidden units for a layer run on a
    kernel compiled for its size (:data:`TILED`), else ()."""
    low, high = TILED.get((layer.cell, dtype.itemsize), (1, 0))
    return (0,) * (layer.padded // 8) if low <= layer.padded <= high else ()


def _ceil(n: int, m: int) -> int:
    return -(-n // m) * m


def pack_stack(network: Network, dtype) -> StackLayout | None:
    """The :class:`StackLayout` of ``network`` in ``dtype``, or None when it has no recurrent layer."""
    before, recurrent, tail = _split(network)
    if not recurrent:
        return None
    dt = np.dtype(dtype)
    blocks, specs, index = [], [], []
    offset = 0

    def put(arr):
        nonlocal offset
        arr = np.asarray(arr, dtype=np.float64)
        start = offset
        blocks.append((start, arr))
        offset += _ceil(max(arr.size, 1), 64 // dt.itemsize)  # every block starts on a 64-byte boundary
        return start, arr.shape

    def grouped(w):
        rows, gp = w.shape
        size = rows * gp * dt.itemsize
        unroll = next((u for limit, u in UNROLL if size <= limit), 1)
        if rows % unroll:
            unroll = 1
        return w.reshape(rows // unroll, unroll, gp)

    def stages(dense_layers, rows):
        """The dense layers' refs, the first reading vectors of ``rows`` values; and their output width."""
        refs = []
        for dense in dense_layers:
            w = np.zeros((rows, dense.output_size))
            w[:dense.input_size] = dense.weight.T
            refs.append((put(w), put(dense.bias), _kernels.ACT_CODES[dense.activation]))
            rows = dense.output_size
        return refs, rows

    register = small_shape(network, dt)  # the register kernel reads rows, never panels
    min_padded = {} if register else MIN_PADDED
    lanes = PANEL_BYTES // dt.itemsize
    in_rows = network.input_size
    state_offset = 0
    gate_width = 1
    for layer, front in zip(recurrent, before):
        front_refs, in_rows = stages(front, in_rows)
        h = layer.hidden_size
        hp = max(_ceil(h, 8), min_padded.get((layer.cell, dt.itemsize), 8))
        n_blocks = CELL_GATES[layer.cell]
        gp = max(_ceil(n_blocks * hp, 16), MIN_GATES.get((layer.cell, dt.itemsize), 16))
        low, high = TILED.get((layer.cell, dt.itemsize), (1, 0))
        panel = not register and hp * gp * dt.itemsize > PANEL
        if panel and not low <= hp <= high:
            gp = _ceil(gp, lanes)  # whole panels (the size-generic kernel reads Gp from bias_a)
        panel = panel and gp % lanes == 0 and gp > lanes  # the kernels tell panels by a last axis other than Gp
        scale = np.ones(gp)
        column = np.empty(n_blocks * h, dtype=np.int64)  # canonical gate row -> padded gate column
        for b, halved in enumerate(_HALVED[layer.cell]):
            column[b * h:(b + 1) * h] = b * hp + np.arange(h)
            if halved:
                scale[b * hp:(b + 1) * hp] = 0.5
        w_ih = np.zeros((in_rows, gp))
        w_ih[:layer.input_size, column] = layer.weight_ih.T
        w_hh = np.zeros((hp, gp))
        w_hh[:h, column] = layer.weight_hh.T
        bias_a = np.zeros(gp)
        bias_b = np.zeros(gp)
        if layer.cell == "gru":
            bias_a[column] = layer.bias_ih
            bias_a[column[:2 * h]] += layer.bias_hh[:2 * h]
            bias_b[column[2 * h:]] = layer.bias_hh[2 * h:]
        else:
            bias_a[column] = layer.bias_ih + layer.bias_hh
        sp = 2 * hp if layer.cell == "lstm" else hp
        w_hh = w_hh * scale
        w_hh = w_hh.reshape(hp, gp // lanes, lanes).transpose(1, 0, 2) if panel else grouped(w_hh)
        refs = [put(grouped(w_ih * scale)), put(w_hh), put(bias_a * scale), put(bias_b)]
        specs.append((layer.cell, h, hp, sp, state_offset, refs, in_rows, front_refs))
        index.append(state_offset + np.arange(h))
        if layer.cell == "lstm":
            index.append(state_offset + hp + np.arange(h))
        state_offset += sp
        gate_width = max(gate_width, gp)
        in_rows = hp
    last = recurrent[-1].hidden_size
    if tail and _fused_head(tail):
        weight, bias = tail[0].weight, tail[0].bias
        tail = []
    else:  # the state itself, or the tail's input
        weight, bias = np.eye(last), np.zeros(last)
    tail_refs = stages(tail, hp)[0]
    head_w = np.zeros((weight.shape[0], hp))  # Hp of the last layer: the head reads whole groups of 8
    head_w[:, :last] = weight
    head = [put(head_w.reshape(weight.shape[0], hp // 8, 8)), put(bias)]

    params = _aligned(offset, dt)
    for start, arr in blocks:
        params[start:start + arr.size] = arr.ravel()

    def view(ref):
        start, shape = ref
        return params[start:start + int(np.prod(shape))].reshape(shape)

    def dense(refs):
        return tuple(DenseStage(view(w), view(b), act) for w, b, act in refs)

    layers = tuple(StackLayer(cell, h, hp, sp, so, *(view(r) for r in refs), rows, dense(front))
                   for cell, h, hp, sp, so, refs, rows, front in specs)
    return StackLayout(params, layers, view(head[0]), view(head[1]), state_offset,
                       np.concatenate(index).astype(np.int64), gate_width, dense(tail_refs))


_STACK_ENTRIES = {
    (cell, filtered, several): getattr(_kernels, f"{name}_{'filtered' if filtered else 'direct'}"
                                                 f"{'_channels' if several else ''}")
    for cell, name in (("lstm", "lstm"), ("gru", "gru"), ("rnn_tanh", "elman"), ("rnn_relu", "elman"))
    for filtered in (False, True) for several in (False, True)
}

_SMALL_ENTRIES = {(cell, several): getattr(_kernels, f"{cell}_small{'_channels' if several else ''}")
                  for cell in ("lstm", "gru") for several in (False, True)}


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


def unadapted(plan) -> bool:
    """Whether ``plan`` leaves the model's feedback loop as trained (one tap, a delay of one sample)."""
    return plan.kind == KIND_FIR and plan.tap_delay.tolist() == [1] and plan.tap_weight.tolist() == [1.0]


def divergence(plan) -> str:
    """Why a run with ``plan`` diverged and what to try, for the end of an error message."""
    if unadapted(plan):
        return (f"the model diverged with its feedback loop as trained ({plan.description}), as it would at its "
                f"trained rate on this input: no method makes it stable; check the model's weights and the "
                f"input's level")
    return f"the adapted feedback loop diverged with {plan.description}; {divergence_hint(plan)}"


def divergence_hint(plan) -> str:
    """What to try when ``plan`` made a model diverge (the stable choices of README's method table)."""
    if plan.method == "oversample":
        if plan.kind == KIND_ALLPASS:
            return "try method 'resample'"
        return "try inner='allpass' (--inner allpass) or method 'resample'"
    if plan.method in ("lagrange", "minimax", "fir"):
        if plan.ratio >= 1.0:
            return "try method 'allpass' or 'linear' (stable where cubic Lagrange is not), or 'resample'"
        return "try method 'resample', or 'oversample' with inner='allpass'"
    return "try method 'resample'"


class Stream:
    """The state of one run of a packed network with one plan over ``channels`` independent channels.

    Parameters
    ----------
    packed : Packed
    plan : Plan
    channels : int
    sample_rate, trained_rate : float
        Needed by resampling plans.
    warmup : float
        Seconds of silence run through the model after every :meth:`reset` to the initial state, at the
        model's rate, before the first sample (with the knobs at the first fed sample's values; a
        conditioned model given an empty block warms up before the next block's samples).
    """

    def __init__(self, packed: Packed, plan: Plan, channels: int, sample_rate: float, trained_rate: float,
                 context: str = "", activations: str = "accurate", warmup: float = 0.0):
        self.warmup = warmup
        self.packed = packed
        self.plan = plan
        self.channels = channels
        self.sample_rate = sample_rate
        self.trained_rate = trained_rate
        self.context = context
        self.activations = activations
        self.fast = activations == "fast"
        self.dtype = packed.params.dtype
        # the bounds of the per-block checks (_checks.count_beyond), in the dtype of the arrays checked
        self._largest = self.dtype.type(np.finfo(self.dtype).max)
        self._state_limit = self.dtype.type(STATE_LIMIT)
        self.tap_delay = np.ascontiguousarray(plan.tap_delay, dtype=np.int64)
        big = beyond_range(plan.tap_weight, self.dtype)
        if big is not None:
            raise ArgumentError(f"{plan.description}: the tap weight {plan.tap_weight[big]:.6g} is beyond "
                                f"{self.dtype.name}'s range; use dtype='float64'")
        self.tap_weight = np.ascontiguousarray(plan.tap_weight, dtype=self.dtype)
        self.stack = packed.stack
        if self.stack is not None:
            self._init_stack()
        else:
            self._init_generic()
        self.reset()

    def _init_generic(self):
        dt, c, packed, plan = self.dtype, self.channels, self.packed, self.plan
        s = packed.initial_state.size
        self.ring = np.zeros((c, max(1, s * plan.depth)), dtype=dt)
        self.feedback = np.zeros((c, max(1, s)), dtype=dt)
        self.position = np.zeros((c, 1), dtype=np.int64)
        self.buf_a = np.zeros((c, packed.width), dtype=dt)
        self.buf_b = np.zeros((c, packed.width), dtype=dt)
        self.gates = np.zeros((c, packed.gate_width), dtype=dt)
        self.gates2 = np.zeros((c, packed.gate_width), dtype=dt)
        self._states = (self.ring.reshape(-1), self.feedback.reshape(-1))  # views, for _state_diverged

    def _init_stack(self):
        plan, stack, c, dt = self.plan, self.stack, self.channels, self.dtype
        weights = np.asarray(plan.tap_weight, dtype=np.float64)
        if plan.kind == _kernels.PLAN_FIR and np.count_nonzero(weights) == 1 and weights.max() == 1.0:
            # naive, integer delay, and every interpolator at an integer ratio (weights exactly 0 and 1):
            # read the past row directly, which is what the taps would compute, bit for bit
            d = int(self.tap_delay[int(np.argmax(weights))])
            self.mode, self.d1, self.rows = _kernels.MODE_UNIT, d, d + 1
        elif plan.kind == _kernels.PLAN_FIR and self.tap_delay.size <= 4 and np.array_equal(
                self.tap_delay, np.arange(1, self.tap_delay.size + 1)):
            # taps on delays 1, 2, ..: the transposed form (partial sums instead of past rows)
            self.mode, self.d1, self.rows = _kernels.MODE_CHAIN, 0, plan.depth
        elif plan.kind == _kernels.PLAN_FIR:
            self.mode, self.d1, self.rows = _kernels.MODE_FIR, 0, plan.depth
        elif plan.kind == _kernels.PLAN_ALLPASS:
            self.mode, self.d1, self.rows = _kernels.MODE_ALLPASS, int(self.tap_delay[0]), plan.depth
        else:
            self.mode, self.d1, self.rows = _kernels.MODE_STN, 1, 2
        filtered = self.mode != _kernels.MODE_UNIT
        consts = self.packed.consts
        # the constant tuple's length selects the activation path at compile time
        first, size = (_kernels.FAST, _kernels.N_FAST) if self.fast else (_kernels.ACC, _kernels.N_ACC)
        self.k = tuple(consts[first:first + size])
        self.half, self.zero = consts[2], consts[0]
        if self._small():
            self.entries = [_SMALL_ENTRIES[stack.layers[0].cell, c > 1]]
            self.tiles = [(0,) * (stack.layers[0].padded // 8)]  # the vector width
        else:
            self.entries = [_STACK_ENTRIES[layer.cell, filtered, c > 1] for layer in stack.layers]
            self.tiles = [_tiles(layer, dt) for layer in stack.layers]
        self.pos = 0
        passes = [stage for layer in stack.layers for stage in layer.before] + list(stack.tail)
        passed_on = stack.layers if stack.tail else stack.layers[:-1]
        widest = max([max(stage.weight.shape) for stage in passes], default=0)
        self.chunk = _chunk(STACK_CHUNK if len(stack.layers) > 1 else PASS_CHUNK if passes else None,
                            c * (sum(layer.padded for layer in passed_on) + sum(stage.bias.size for stage in passes))
                            + 2 * widest, dt.itemsize)

        # Weights, scratch and state of the stream in one block, in a fixed order: where the arrays sit
        # relative to each other decides how often a load is held up behind an unrelated store to an
        # address equal modulo 4 KiB; with separate allocations the speed varied by ±15 % from run to run.
        gw = _ceil(stack.gate_width * dt.itemsize, 64) // dt.itemsize
        arena = _Arena(dt)
        weights = arena.add(stack.params.shape)
        zz = arena.add((c, 2, gw))
        rings = []
        for layer in stack.layers:
            # `rows` past states, two rows for the feedback state, three for the partial sums of CHAIN
            rows = self.rows + 5
            while (rows * layer.state * dt.itemsize) % 64:  # every channel on a 64-byte boundary
                rows += 1
            rings.append(arena.add((c, rows, layer.state)))
        seq = [arena.add((c, self.chunk, layer.padded)) for layer in passed_on]
        dense_out = [arena.add((c, self.chunk, stage.bias.size)) for stage in passes]
        transposed = arena.add((2, widest, self.chunk or 1))  # the dense passes' scratch
        nothing = arena.add((c, 1, 1))  # stands for the output a layer does not write
        arena.allocate()
        params = arena.get(weights)
        params[:] = stack.params

        def local(view):
            start = (view.ctypes.data - stack.params.ctypes.data) // dt.itemsize
            return params[start:start + view.size].reshape(view.shape)

        buffers = iter([arena.get(d) for d in dense_out])

        def dense(stages):  # (stage with its weights in the block, its output buffer) pairs
            return tuple((dataclasses.replace(stage, weight=local(stage.weight), bias=local(stage.bias)), next(buffers))
                         for stage in stages)

        self.layers = [dataclasses.replace(layer, w_ih=local(layer.w_ih), w_hh=local(layer.w_hh),
                                           bias_a=local(layer.bias_a), bias_b=local(layer.bias_b))
                       for layer in stack.layers]
        self.before = [dense(layer.before) for layer in stack.layers]
        self.tail = dense(stack.tail)
        self.transposed = arena.get(transposed)
        self.head_w, self.head_b = local(stack.head_w), local(stack.head_b)
        self.zz = arena.get(zz)
        self.rings = [arena.get(r) for r in rings]
        self.seq = [arena.get(q) for q in seq]
        self.nothing = arena.get(nothing)
        self._states = tuple(ring.reshape(-1) for ring in self.rings)  # views, for _state_diverged
        # per layer, the kernel, whether it writes the output (the last layer, with no dense layers behind), and
        # its arguments that stay the same from block to block: the feedback rows, those after them (mode ..
        # head_b) and those after the input (skip .. tiles); one channel's views for one
        one = c == 1
        last_layer = len(stack.layers) - 1 if not self.tail else -1
        self._nothing = self.nothing[0] if one else self.nothing
        self._calls = [(entry, ring[0] if one else ring, l == last_layer,
                        (self.mode, self.d1, self.tap_delay, self.tap_weight, plan.delayed_output, l == last_layer,
                         layer.cell == "rnn_relu", layer.w_ih, layer.w_hh, layer.bias_a, layer.bias_b, self.head_w,
                         self.head_b),
                        (self.packed.skip, self.zz[0] if one else self.zz, self.k, self.half, self.zero, tiles))
                       for l, (layer, entry, ring, tiles) in enumerate(zip(self.layers, self.entries, self.rings,
                                                                           self.tiles))]

    def _small(self) -> bool:
        """Whether the stack runs on the kernel with its state in registers (:data:`SMALL`)."""
        packed, stack = self.packed, self.stack
        layers = [(layer.cell, layer.padded) for layer in stack.layers]
        return (_register_shape(layers, stack.layers[0].inputs, packed.n_outputs, packed.skip, self.dtype.itemsize,
                                bool(stack.tail))
                and (self.mode == _kernels.MODE_CHAIN or (self.mode == _kernels.MODE_UNIT and self.d1 == 1)))

    def reset(self, state: np.ndarray | None = None) -> None:
        """Return to the model's initial state, then the stream's warm-up before the next samples (or to
        ``state``: one recurrent state vector, or one per channel, without warm-up)."""
        state = check_state(state, self.packed.initial_state.size, self.channels, self.dtype)
        self._warmup_due = self.warmup if state is None else 0.0
        s0 = self.packed.initial_state if state is None else state
        s = self.packed.initial_state.size
        depth = self.plan.depth
        stack = self.stack
        for c in range(self.channels):
            row = s0 if np.ndim(s0) == 1 else s0[c]
            if stack is not None:
                padded = np.zeros(stack.state_size, dtype=self.dtype)
                padded[stack.state_index] = row
                # the history before the first sample, and the first feedback state, are the initial state
                for layer, ring in zip(stack.layers, self.rings):
                    ring[c] = padded[layer.offset:layer.offset + layer.state]
                    if self.mode == _kernels.MODE_CHAIN:
                        self._chain_start(ring[c])
            elif s:
                # ring layout: per layer, depth rows of S values
                for l in range(self.packed.table.shape[0]):
                    if self.packed.table[l, 0] == _kernels.DENSE:
                        continue
                    off, size = self.packed.table[l, 8], self.packed.table[l, 9]
                    block = self.ring[c, off * depth:(off + size) * depth].reshape(depth, size)
                    block[:] = row[off:off + size]
                self.feedback[c, :s] = row
        if stack is None:
            self.position[:] = 0
        else:
            self.pos = 0
            self.frow = self.rows
        self._pre = self._post = None
        self._fft_pending = []
        self._cond = np.zeros((self.channels, 0, max(0, self.packed.n_inputs - 1)), dtype=self.dtype)
        self._cond_first = 0
        self._model_rows = 0
        self._fed = self._emitted = 0
        self._finished = False
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

    def _chain_start(self, ring) -> None:
        """The CHAIN mode's partial sums A, B, C (rows rows+2 ..) for a history of the initial state (row 0)."""
        w = np.zeros(4, dtype=self.dtype)
        w[:self.tap_weight.size] = self.tap_weight
        s_0 = ring[0]
        ring[self.rows + 4] = w[3] * s_0
        ring[self.rows + 3] = w[2] * s_0 + ring[self.rows + 4]
        ring[self.rows + 2] = w[1] * s_0 + ring[self.rows + 3]

    @property
    def state(self) -> np.ndarray:
        """The fed-back state each channel would use next (channels × total state size), a copy."""
        stack = self.stack
        if stack is None:
            return self.feedback[:, :self.packed.initial_state.size].copy()
        if self.mode in (_kernels.MODE_FIR, _kernels.MODE_ALLPASS, _kernels.MODE_CHAIN):
            row = self.frow
        else:
            row = (self.pos - self.d1) % self.rows
        padded = np.concatenate([ring[:, row] for ring in self.rings], axis=1)
        return padded[:, stack.state_index]

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
        inp = np.ascontiguousarray(inp, dtype=self.dtype)
        if p.input_gain != 1.0:  # on a copy: the block may be the caller's
            inp = inp.copy()
            inp[:, :, 0] *= self.dtype.type(p.input_gain)
        if self.stack is not None:
            self._run_stack(inp, out)
        elif self.channels == 1:
            _kernels.run_network(inp[0], out[0], p.table, p.params, self.ring[0], self.feedback[0], self.position[0],
                                 plan.depth, plan.kind, self.tap_delay, self.tap_weight, plan.delayed_output, p.skip,
                                 p.consts, self.buf_a[0], self.buf_b[0], self.gates[0], self.gates2[0], self.fast)
        else:
            _kernels.run_channels(inp, out, p.table, p.params, self.ring, self.feedback, self.position, plan.depth,
                                  plan.kind, self.tap_delay, self.tap_weight, plan.delayed_output, p.skip, p.consts,
                                  self.buf_a, self.buf_b, self.gates, self.gates2, self.fast)
        if p.output_gain != 1.0:
            out *= self.dtype.type(p.output_gain)
        if _checks.count_beyond(out.reshape(-1), self._largest):
            raise UnstableError(f"{self.context}: the output became non-finite (NaN/Inf): {divergence(plan)}")
        if self._state_diverged():
            raise UnstableError(f"{self.context}: the recurrent state grew beyond {STATE_LIMIT:.3g} (float32's "
                                f"range), although the output stayed finite: {divergence(plan)}")
        return out

    def _state_diverged(self) -> bool:
        """Whether a state (or a CHAIN partial sum) is NaN or beyond :data:`STATE_LIMIT` in any channel."""
        for flat in self._states:
            if _checks.count_beyond(flat, self._state_limit):
                return True
        return False

    def _run_stack(self, inp: np.ndarray, out: np.ndarray) -> None:
        """The stack kernels, layer after layer (chunk after chunk when there are several layers or dense passes)."""
        one = self.channels == 1
        n = inp.shape[1]
        step = self.chunk or n
        nothing = self._nothing
        for c0 in range(0, n, step):
            m = min(step, n - c0)
            if step == n:
                x, o = (inp[0], out[0]) if one else (inp, out)
            elif one:
                x, o = inp[0, c0:c0 + m], out[0, c0:c0 + m]
            else:
                x, o = np.ascontiguousarray(inp[:, c0:c0 + m]), np.empty((self.channels, m, out.shape[2]), self.dtype)
            xin = x
            for l, (entry, ring, writes_out, fixed, shared) in enumerate(self._calls):
                if self.before[l]:
                    xin = self._dense(self.before[l], xin, m)
                if writes_out:
                    entry(xin, o, nothing, ring, self.rows, self.pos, self.frow, *fixed, x, *shared)
                    continue
                if one:
                    yseq = self.seq[l][0, :m]
                elif m == step:
                    yseq = self.seq[l][:, :m]
                else:
                    yseq = np.empty((self.channels, m, self.layers[l].padded), self.dtype)
                entry(xin, nothing, yseq, ring, self.rows, self.pos, self.frow, *fixed, x, *shared)
                xin = yseq
            if self.tail:
                self._dense(self.tail, xin, m, o)
                skip = self.packed.skip
                o[..., :skip] += x[..., :skip]
            if not one and step != n:
                out[:, c0:c0 + m] = o
            self.pos = (self.pos + m) % self.rows
            self.frow = self.rows + (self.frow - self.rows + m) % 2

    def _dense(self, stages, x: np.ndarray, m: int, out: np.ndarray | None = None) -> np.ndarray:
        """Dense ``stages`` ((stage, buffer) pairs) over the ``m`` rows of ``x``, (m, width) for one channel or
        (channels, m, width); the last writes into ``out`` when given.  Returns the last output, shaped as ``x``."""
        one = x.ndim == 2
        if one:
            x, out = x[None], None if out is None else out[None]
        for i, (stage, buffer) in enumerate(stages):
            y = out if out is not None and i == len(stages) - 1 else buffer[:, :m]
            for c in range(self.channels):
                _kernels.dense_rows(x[c], y[c], stage.weight, stage.bias, stage.activation, self.packed.consts,
                                    self.k, self.transposed)
            x = y
        return x[0] if one else x

    def feed(self, inp: np.ndarray) -> np.ndarray:
        """Process (channels, n, inputs); returns (channels, m, outputs), m = n for delay-line plans."""
        self._check_open("feed")
        given, inp = inp, self._check_block(inp)
        if self._warmup_due and (inp.shape[1] or self.packed.n_inputs == 1):
            self._warm(inp)
        if self.plan.resample == "fft":  # held until finish: a copy, since the caller may refill its buffer
            self._fft_pending.append(inp.copy() if np.may_share_memory(inp, given) else inp)
            return np.empty((self.channels, 0, self.packed.n_outputs), dtype=self.dtype)
        if self._pre is None:
            return self._run(inp)
        self._hold_append(inp)
        self._fed += inp.shape[1]
        return self._trim(self._through_stages(self._pre.feed(np.ascontiguousarray(inp[:, :, 0].T))))

    def _warm(self, inp: np.ndarray) -> None:
        """The warm-up: silence at the model's rate, the knobs held at ``inp``'s first sample."""
        seconds, self._warmup_due = self._warmup_due, 0.0
        plan = self.plan
        model_rate = self.trained_rate if plan.resample else self.sample_rate * plan.oversample
        n = int(round(seconds * model_rate))
        if n == 0:  # shorter than half a sample at the model's rate: nothing to run
            return
        block = min(n, 1 << 16)  # memory stays bounded whatever the rate
        silence = np.zeros((self.channels, block, self.packed.n_inputs), dtype=self.dtype)
        if self.packed.n_inputs > 1:
            silence[:, :, 1:] = inp[:, :1, 1:]
        for start in range(0, n, block):
            rows = min(block, n - start)
            self._run(silence if rows == block else np.ascontiguousarray(silence[:, :rows]))

    def _check_block(self, inp) -> np.ndarray:
        if not isinstance(inp, np.ndarray) or inp.dtype != self.dtype:
            what = f"{inp.dtype} array" if isinstance(inp, np.ndarray) else type(inp).__name__
            raise ArgumentError(f"Stream.feed takes a {self.dtype.name} array of shape {self._want}, not a {what} "
                                f"(Model.inputs(x, cond, dtype) builds one)")
        if inp.ndim != 3 or inp.shape[0] != self.channels or inp.shape[2] != self.packed.n_inputs:
            raise ArgumentError(f"Stream.feed takes an array of shape {self._want}, not {inp.shape} "
                                f"(Model.inputs(x, cond, dtype) builds one)")
        if isinstance(inp, np.ma.MaskedArray):
            raise ArgumentError("Stream.feed takes a plain array, not a masked one: every sample is processed, "
                                "masked or not (pass block.filled(0.0), or another fill value)")
        # read-only arrays are another type to Numba: a copy, not a second compilation of every kernel
        inp = np.ascontiguousarray(inp) if inp.flags.writeable else np.array(inp, order="C")
        # value by value in a compiled loop (a sum would overflow for values near the float's limit)
        if _checks.count_beyond(inp.reshape(-1), self._largest):
            bad = np.argwhere(~(np.abs(inp) <= self._largest))
            raise AudioError(f"Stream.feed: the block holds {len(bad)} NaN/Inf value(s), the first at index "
                             f"{tuple(int(i) for i in bad[0])} (channel, sample, input)")
        return inp

    @property
    def _want(self) -> str:
        return f"(channels = {self.channels}, n, inputs = {self.packed.n_inputs})"

    def _check_open(self, call: str) -> None:
        if self._finished:
            raise ArgumentError(f"Stream.{call}: the stream was finished (Stream.finish() ends it); call "
                                f"stream.reset() to start again from the initial state, or make a new stream")

    def finish(self) -> np.ndarray:
        """Flush resampling stages (whole-signal plans; nothing for delay-line plans) and end the stream: a later
        ``feed`` or ``finish`` is an error until :meth:`reset`."""
        self._check_open("finish")
        self._finished = True
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
        width = self.channels * self.packed.n_outputs  # explicit: a block may hold no rows
        out = self._post.feed(np.ascontiguousarray(y.transpose(1, 0, 2).reshape(y.shape[1], width)))
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
