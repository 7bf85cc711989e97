"""Per-sample Numba kernels: the whole network, one sample at a time, any delay-line plan.

All kernels live in this one module (kernels that call each other must, for the
on-disk cache to work) and take every piece of state as an argument: nothing is
read from module globals, nothing is allocated per sample.  The caller
(:mod:`nbrnn.engine`) packs a :class:`~nbrnn.network.Network` into

``table`` (int64, one row per layer)::

    0 kind (0 dense, 1 lstm, 2 gru, 3 rnn-tanh, 4 rnn-relu)
    1 inputs   2 outputs (H for a recurrent layer)
    3 offset of W_ih^T (inputs x G*H) or of the dense W^T (inputs x outputs)
    4 offset of W_hh^T (H x G*H), recurrent only
    5 offset of the bias (dense: b; LSTM/RNN: b_ih + b_hh; GRU: b_ih)
    6 offset of the GRU's b_hh (-1 otherwise)
    7 dense activation code
    8 offset of the layer's state block in ``ring`` (depth x S) and ``feedback`` (S)
    9 S, the fed-back state size (2H for an LSTM: h then c)

and ``params`` (the weights, all in one float array of the run's dtype).

The delay-line plan (see :mod:`nbrnn.adapt`) is ``kind`` (0 FIR taps, 1 allpass,
2 state-trajectory rescale), ``tap_delay`` / ``tap_weight`` and the ring depth.
For every recurrent layer ``feedback`` holds the state the *next* sample feeds
back (ŝ_{n+1}); it is computed right after s_n is written into the ring, which
lets one code path serve both output conventions: the fresh state s_n or the
delayed one ŝ_{n+1} goes to the next layer.

``consts`` holds the literals in the run's dtype ([0, 1, 0.5, selu alpha,
selu scale, sqrt(1/2)]) so float32 arithmetic never meets a float64 literal.
"""

import math
import os

import numba
import numpy as np
from numba import prange

_CACHE = os.environ.get("NBRNN_NUMBA_CACHE", "1") not in ("0", "false", "no", "off")
_JIT = dict(cache=_CACHE, fastmath=True, error_model="numpy", nogil=True)

DENSE, LSTM, GRU, RNN_TANH, RNN_RELU = 0, 1, 2, 3, 4
PLAN_FIR, PLAN_ALLPASS, PLAN_STN = 0, 1, 2
ACT_CODES = {"linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "elu": 4, "softmax": 5, "selu": 6,
             "softplus": 7, "gelu": 8}


@numba.njit(**_JIT)
def _sigmoid(v, one):
    return one / (one + math.exp(-v))


@numba.njit(**_JIT)
def _dense(table, l, params, x, y, consts):
    n_in = table[l, 1]
    n_out = table[l, 2]
    w0 = table[l, 3]
    b0 = table[l, 5]
    act = table[l, 7]
    for k in range(n_out):
        y[k] = params[b0 + k]
    for j in range(n_in):
        xj = x[j]
        base = w0 + j * n_out
        for k in range(n_out):
            y[k] += params[base + k] * xj
    zero = consts[0]
    one = consts[1]
    if act == 1:
        for k in range(n_out):
            y[k] = math.tanh(y[k])
    elif act == 2:
        for k in range(n_out):
            y[k] = _sigmoid(y[k], one)
    elif act == 3:
        for k in range(n_out):
            if y[k] < zero:
                y[k] = zero
    elif act == 4:
        for k in range(n_out):
            if y[k] < zero:
                y[k] = math.exp(y[k]) - one
    elif act == 5:
        top = y[0]
        for k in range(1, n_out):
            if y[k] > top:
                top = y[k]
        total = zero
        for k in range(n_out):
            y[k] = math.exp(y[k] - top)
            total += y[k]
        for k in range(n_out):
            y[k] = y[k] / total
    elif act == 6:
        for k in range(n_out):
            if y[k] < zero:
                y[k] = consts[4] * consts[3] * (math.exp(y[k]) - one)
            else:
                y[k] = consts[4] * y[k]
    elif act == 7:
        for k in range(n_out):
            v = y[k]
            if v > zero:
                y[k] = v + math.log1p(math.exp(-v))
            else:
                y[k] = math.log1p(math.exp(v))
    elif act == 8:
        for k in range(n_out):
            y[k] = consts[2] * y[k] * (one + math.erf(y[k] * consts[5]))


@numba.njit(**_JIT)
def _cell(table, l, params, x, h_prev, c_prev, new, gates, gates2, consts):
    """One step of a recurrent cell from the fed-back state; writes the fresh state into ``new``."""
    kind = table[l, 0]
    n_in = table[l, 1]
    hid = table[l, 2]
    wih = table[l, 3]
    whh = table[l, 4]
    bias = table[l, 5]
    one = consts[1]
    if kind == LSTM:
        g = 4 * hid
    elif kind == GRU:
        g = 3 * hid
    else:
        g = hid
    for k in range(g):
        gates[k] = params[bias + k]
    for j in range(n_in):
        xj = x[j]
        base = wih + j * g
        for k in range(g):
            gates[k] += params[base + k] * xj
    if kind == GRU:
        # The recurrent product stays apart: its n-block is scaled by the reset gate.
        bhh = table[l, 6]
        for k in range(g):
            gates2[k] = params[bhh + k]
        for j in range(hid):
            hj = h_prev[j]
            base = whh + j * g
            for k in range(g):
                gates2[k] += params[base + k] * hj
        for k in range(hid):
            r = _sigmoid(gates[k] + gates2[k], one)
            z = _sigmoid(gates[hid + k] + gates2[hid + k], one)
            n = math.tanh(gates[2 * hid + k] + r * gates2[2 * hid + k])
            new[k] = (one - z) * n + z * h_prev[k]
        return
    for j in range(hid):
        hj = h_prev[j]
        base = whh + j * g
        for k in range(g):
            gates[k] += params[base + k] * hj
    if kind == LSTM:
        for k in range(hid):
            i = _sigmoid(gates[k], one)
            f = _sigmoid(gates[hid + k], one)
            c = f * c_prev[k] + i * math.tanh(gates[2 * hid + k])
            o = _sigmoid(gates[3 * hid + k], one)
            new[hid + k] = c
            new[k] = o * math.tanh(c)
    elif kind == RNN_TANH:
        for k in range(hid):
            new[k] = math.tanh(gates[k])
    else:
        zero = consts[0]
        for k in range(hid):
            new[k] = gates[k] if gates[k] > zero else zero


@numba.njit(**_JIT)
def run_network(inp, out, table, params, ring, feedback, position, depth, plan_kind, tap_delay, tap_weight,
                delayed_output, skip, consts, buf_a, buf_b, gates, gates2):
    """Process ``inp`` (N, inputs) into ``out`` (N, outputs) for one channel, updating the state in place.

    ``ring`` (sum of depth*S over recurrent layers), ``feedback`` (sum of S) and
    ``position`` (one int64, the ring slot the next sample writes) carry the whole
    state from one call to the next, so any split into blocks gives the same result.
    """
    n_samples = inp.shape[0]
    n_layers = table.shape[0]
    n_out = out.shape[1]
    n_taps = tap_delay.shape[0]
    pos = position[0]
    zero = consts[0]
    for n in range(n_samples):
        width = inp.shape[1]
        for j in range(width):
            buf_a[j] = inp[n, j]
        x = buf_a
        y = buf_b
        for l in range(n_layers):
            kind = table[l, 0]
            if kind == DENSE:
                _dense(table, l, params, x, y, consts)
            else:
                hid = table[l, 2]
                s = table[l, 9]
                off = table[l, 8]
                fb = feedback[off:off + s]
                block = ring[off * depth:(off + s) * depth]
                slot = block[pos * s:(pos + 1) * s]
                _cell(table, l, params, x, fb[:hid], fb[hid:], slot, gates, gates2, consts)
                if plan_kind == PLAN_STN:
                    g = tap_weight[0]
                    for k in range(s):
                        slot[k] = fb[k] + g * (slot[k] - fb[k])
                        fb[k] = slot[k]
                elif plan_kind == PLAN_ALLPASS:
                    a = tap_weight[0]
                    near = pos - tap_delay[0] + 1
                    if near < 0:
                        near += depth
                    far = near - 1
                    if far < 0:
                        far += depth
                    for k in range(s):
                        fb[k] = a * (block[near * s + k] - fb[k]) + block[far * s + k]
                else:
                    for k in range(s):
                        fb[k] = zero
                    for t in range(n_taps):
                        src = pos - tap_delay[t] + 1
                        if src < 0:
                            src += depth
                        w = tap_weight[t]
                        base = src * s
                        for k in range(s):
                            fb[k] += w * block[base + k]
                if delayed_output:
                    for k in range(hid):
                        y[k] = fb[k]
                else:
                    for k in range(hid):
                        y[k] = slot[k]
            x, y = y, x
        for k in range(n_out):
            out[n, k] = x[k]
        for k in range(skip):
            out[n, k] += inp[n, k]
        pos += 1
        if pos == depth:
            pos = 0
    position[0] = pos


@numba.njit(parallel=True, **_JIT)
def run_channels(inp, out, table, params, ring, feedback, position, depth, plan_kind, tap_delay, tap_weight,
                 delayed_output, skip, consts, buf_a, buf_b, gates, gates2):
    """:func:`run_network` over independent channels (first axis of every state array) on all cores."""
    for c in prange(inp.shape[0]):
        run_network(inp[c], out[c], table, params, ring[c], feedback[c], position[c], depth, plan_kind,
                    tap_delay, tap_weight, delayed_output, skip, consts, buf_a[c], buf_b[c], gates[c], gates2[c])


@numba.njit(**_JIT)
def polyphase(h, up, down, history, first_input, m_first, out):
    """Rows ``m_first ..`` of the full (untrimmed) output of upsample-by-``up``, filter ``h``, keep every ``down``-th.

    ``history`` (n, channels) holds input samples ``first_input .. first_input+n-1``;
    earlier and later samples count as zero.  Output row m is
    y[m] = Σ_k h[k] · x[(m·down − k)/up] over the k that make the index an integer.
    """
    n_hist = history.shape[0]
    n_ch = history.shape[1]
    taps = h.shape[0]
    zero = h[0] * 0
    for r in range(out.shape[0]):
        j = (m_first + r) * down
        i = j // up
        k = j - i * up
        for c in range(n_ch):
            out[r, c] = zero
        while k < taps:
            local = i - first_input
            if local < 0:
                break
            if local < n_hist:
                hk = h[k]
                for c in range(n_ch):
                    out[r, c] += hk * history[local, c]
            k += up
            i -= 1
