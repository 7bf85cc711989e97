"""Per-sample Numba kernels: the whole network, one sample at a time, any delay-line plan.

All kernels live in this one module (kernels that call each other must, for the
on-disk cache to work) and take every piece of state as an argument: nothing is
read from module globals but integer codes, nothing is allocated.  Two families:

**Recurrent stacks** run every network with a recurrent layer: recurrent layers
(LSTM, GRU, Elman) one after the other and one linear dense head (an identity head
when the network has none), plus the skip connection.  Dense layers elsewhere
(in front, between, a head with an activation, several) run as block passes
(:func:`dense_rows`) between the recurrent layers' runs.  :func:`nbrnn.engine.pack_stack`
lays such a network out (:class:`nbrnn.engine.StackLayout`): transposed weights
grouped eight, two or one rows at a time (by size), gate blocks padded to whole
vectors, the LSTM's i, f, o rows and the GRU's r, z rows pre-scaled by 1/2
(exact) so that one tanh serves every gate (sigmoid(x) = tanh(x/2)/2 + 1/2).  The engine calls one entry
per layer and block (``lstm_direct``, ``gru_filtered_channels``, ...; see the
comment above them for the arguments).

**A small LSTM or GRU in registers** (``lstm_small``, ``gru_small``): one layer
of padded size 8, 16 or 32 with one to seven inputs and one output, plain or with a CHAIN plan, computed on
SIMD vector values (``VecType``) that stay in registers from sample to sample;
the same arithmetic as the generic stack kernel, so the same bits.

**Any network** (:func:`run_network`, :func:`run_channels`) is the table-driven
fallback: it runs networks of dense layers alone, and serves the tests as a
second, independent implementation of every network; see its docstring for its
``table``.

Delay-line plans (see :mod:`nbrnn.adapt`).  A ring keeps the past states of each
recurrent layer, one row per sample; for every sample the cell reads ŝ_n and
writes s_n into row ``pos``.  The stack kernels know five modes:

- ``UNIT``: one tap of weight 1 and delay d (naive, integer delay, and every
  interpolator at an integer ratio): the cell reads row pos − d directly, the ring
  has d + 1 rows, nothing is copied or combined.
- ``CHAIN``: up to four taps on delays 1, 2, ... (every interpolator below twice
  the trained rate): ŝ_{n+1} in transposed form from s_n and three partial sums.
- ``FIR``: any other taps, ŝ_{n+1} = Σ w_t·s_{n+1−d_t} from the ring's rows.
- ``ALLPASS``: ŝ_{n+1} = a·(s_{n+1−K} − ŝ_n) + s_{n−K}.
- ``STN``: the state-trajectory rescale s_n = s_{n−1} + g·(F(x_n, s_{n−1}) − s_{n−1}).

``delayed`` passes ŝ_{n+1} instead of the fresh s_n to the next layer and the
head (the article's / RTNeural's convention).

``consts`` holds every literal in the run's dtype (float32 arithmetic must never
meet a float64 literal): [0, 1, 0.5, selu alpha, selu scale, sqrt(1/2)], then
the accurate tanh's constants (``ACC``, ``N_ACC`` = 18 values), the fast
tanh's (``FAST``, ``N_FAST`` = 10 values) and exp's argument limit of the
table-driven kernel (``EXP_LIMIT``); :func:`constants` builds it.

Activations.  The accurate tanh is tanh(x) = e/(e + 2) with e = expm1(2|x|),
expm1 by range reduction (2|x| = k·ln2 + r, |r| ≤ ln2/2, one multiply-add with
ln2 rounded to the dtype: its rounding error moves r by k·|ln2 − fl(ln2)|, which
matters only where k is small) and a Taylor polynomial of degree 13 (float64) or
7 (float32) summed as r + r²·(…), the sum in brackets rounded away from the last
multiply-add: within 2.5 ulp (float32, every input) and 2.7 ulp (float64,
sampled) of the true value (``tools/tanh_ulp.py``), and branch-free, so loops
over it vectorise where libm's tanh is a scalar call (≈ 9 ns each).  The fast
tanh is a rational x·P(x²)/Q(x²) of degree 4/4 after clamping |x| ≤ 9, relative
error 2.2e-8 in exact arithmetic (fitted for this project by iteratively
reweighted least squares on [0, 9]); evaluated in float32 it stays within 3.3e-7
of tanh (every input).  Both evaluate their polynomials in
pairs of terms (Estrin's scheme): at small sizes a sample's time is the chain
of dependent operations through two tanh, and this keeps each tanh short.  The
stack kernels take the constants as a tuple whose length (``N_ACC`` or
``N_FAST``) selects the path at compile time.
"""

import math
import os

import numba
import numpy as np
from llvmlite import ir
from numba import literally, prange
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

_CACHE = os.environ.get("NBRNN_NUMBA_CACHE", "1") not in ("0", "false", "no", "off")
_JIT = dict(cache=_CACHE, fastmath=True, error_model="numpy", nogil=True)
# The stack kernels forbid reassociation and leave no fusion to the optimiser: every sum is
# evaluated in the order written and every fused multiply-add is written out (`fma`), so the
# arithmetic is identical whatever the plan, block split, vectorisation or specialisation
# (bit-exact block invariance, integer-ratio identities, cached against fresh compiles).
# Nothing there needs reassociation: the inner loops are element-wise, and no reduction is
# left to the vectoriser.
_FLAGS = {"nsz"}
_JIT_STACK = dict(cache=_CACHE, fastmath=_FLAGS, error_model="numpy", nogil=True)
_JIT_ACT = dict(fastmath=_FLAGS, error_model="numpy")

DENSE, LSTM, GRU, RNN_TANH, RNN_RELU = 0, 1, 2, 3, 4
PLAN_FIR, PLAN_ALLPASS, PLAN_STN = 0, 1, 2
MODE_UNIT, MODE_FIR, MODE_ALLPASS, MODE_STN, MODE_CHAIN = 0, 1, 2, 3, 4
ACT_CODES = {"linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3, "elu": 4, "softmax": 5, "selu": 6,
             "softplus": 7, "gelu": 8}

#: Positions in ``consts`` of the two tanh constant sets, and their sizes (the length of the tuple a kernel
#: takes selects the path).
ACC = 6
N_ACC = 18
FAST = ACC + N_ACC
N_FAST = 10
#: Position in ``consts`` of the largest argument the table-driven kernel passes to exp() (80: exp(80) is finite
#: in float32, and that kernel's fastmath assumes no infinities).
EXP_LIMIT = FAST + N_FAST
N_CONSTS = EXP_LIMIT + 1

# Rational tanh: x·(1 + p1 u + .. + p4 u^4)/(1 + q1 u + .. + q4 u^4), u = x², on |x| <= 9.
_FAST_P = (0.1338397434855045, 0.003498988986743446, 2.06611441960989e-05, 1.3419656184905446e-08)
_FAST_Q = (0.46717295830909905, 0.025890179544005666, 0.0003291026695396523, 7.804661825432891e-07)
FAST_CLAMP = 9.0


def constants(dtype) -> np.ndarray:
    """The ``consts`` array of every kernel, in ``dtype``."""
    dt = np.dtype(dtype)
    head = [0.0, 1.0, 0.5, 1.6732632423543772, 1.0507009873554805, math.sqrt(0.5)]
    if dt == np.float64:
        clamp, degree = 20.0, 13  # tanh(20) rounds to 1
    else:
        clamp, degree = 9.1, 7  # tanh(9.1) rounds to 1 in float32
    taylor = [1.0 / math.factorial(n) if n <= degree else 0.0 for n in range(2, 14)]
    acc = [clamp, 2.0 / math.log(2.0), math.log(2.0)] + taylor + [0.5, 1.0, 2.0]
    fast = [FAST_CLAMP, 1.0, *_FAST_P, *_FAST_Q]
    values = np.array(head + acc + fast + [80.0], dtype=dt)
    assert values.size == N_CONSTS
    return values


# ---------------------------------------------------------------------------------------------------------------
# Activations


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c rounded once (``llvm.fma``): the stack kernels' multiply-adds, written out so that the
    rounding never depends on where the optimiser would have fused (kernels only; one float type)."""
    if not (isinstance(a, types.Float) and a == b and b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


def tanh_accurate(x, k):
    """tanh to within 2.7 ulp, branch-free; ``k`` = the ``N_ACC`` constants as a tuple (kernels only)."""
    raise NotImplementedError("call from a jitted function")


@overload(tanh_accurate, jit_options=_JIT_ACT)
def _tanh_accurate_impl(x, k):
    # No reassociation and no approximate division (_FLAGS): the two-part ln2 and the
    # final quotient must be evaluated exactly as written.
    if x == numba.types.float64:
        def impl(x, k):
            a = abs(x)
            if a > k[0]:
                a = k[0]
            t = a + a
            # k = round(2|x|/ln2) from |x| (k[1] = 2/ln2: the same product as t·(1/ln2), one add sooner)
            kf = np.floor(fma(a, k[1], k[15]))
            r = fma(-kf, k[2], t)
            r2 = r * r
            r4 = r2 * r2
            # expm1(r) = r + r²·(c2 + c3 r + ... + c13 r^11) with one rounding of significance (the last
            # multiply-add); the sum in brackets by Estrin's scheme for a short dependency chain
            q0 = fma(r2, fma(r, k[6], k[5]), fma(r, k[4], k[3]))
            q1 = fma(r2, fma(r, k[10], k[9]), fma(r, k[8], k[7]))
            q2 = fma(r2, fma(r, k[14], k[13]), fma(r, k[12], k[11]))
            p = fma(r2, fma(r4, fma(r4, q2, q1), q0), r)
            scale = np.int64((np.int64(kf) + 1023) << 52).view(np.float64)  # 2^k
            e = fma(scale, p, scale - k[16])  # expm1(t) = 2^k·expm1(r) + 2^k − 1
            return math.copysign(e / (e + k[17]), x)
        return impl
    if x == numba.types.float32:
        def impl(x, k):
            a = abs(x)
            if a > k[0]:
                a = k[0]
            t = a + a
            kf = np.floor(fma(a, k[1], k[15]))
            r = fma(-kf, k[2], t)
            r2 = r * r
            p = fma(r2, fma(r2 * r2, fma(r, k[8], k[7]), fma(r2, fma(r, k[6], k[5]), fma(r, k[4], k[3]))), r)
            scale = np.int32((np.int32(kf) + 127) << 23).view(np.float32)
            e = fma(scale, p, scale - k[16])
            return math.copysign(e / (e + k[17]), x)
        return impl
    return None


@numba.njit(**_JIT_ACT)
def tanh_fast(x, k):
    """Rational tanh after clamping (``k`` = the 10 ``FAST`` constants as a tuple); NaN stays NaN."""
    a = x
    if a > k[0]:
        a = k[0]
    if a < -k[0]:
        a = -k[0]
    u = a * a
    u2 = u * u
    num = fma(a * u, fma(u2, fma(u, k[5], k[4]), fma(u, k[3], k[2])), a)
    den = fma(u2, fma(u2, k[9], fma(u, k[8], k[7])), fma(u, k[6], k[1]))
    return num / den


def act_tanh(x, k):
    """tanh on the path that ``k`` selects: the ``N_ACC`` constants (accurate) or the ``N_FAST`` ones."""
    raise NotImplementedError("call from a jitted function")


@overload(act_tanh, jit_options=_JIT_ACT)
def _act_tanh_impl(x, k):
    if isinstance(k, numba.types.UniTuple) and k.count == N_ACC:
        return lambda x, k: tanh_accurate(x, k)
    if isinstance(k, numba.types.UniTuple) and k.count == N_FAST:
        return lambda x, k: tanh_fast(x, k)
    return None


@numba.njit(**_JIT_STACK)
def _acc_consts(consts):
    k = consts[ACC:ACC + 18]
    return (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14], k[15],
            k[16], k[17])


@numba.njit(**_JIT_STACK)
def _fast_consts(consts):
    k = consts[FAST:FAST + 10]
    return (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9])


@numba.njit(**_JIT_STACK)
def tanh_many(x, out, consts, fast):
    """``out[:] = tanh(x)`` on the chosen activation path (for tests and benchmarks)."""
    ka = _acc_consts(consts)
    kf = _fast_consts(consts)
    if fast:
        for i in range(x.shape[0]):
            out[i] = tanh_fast(x[i], kf)
    else:
        for i in range(x.shape[0]):
            out[i] = tanh_accurate(x[i], ka)


# ---------------------------------------------------------------------------------------------------------------
# Dense layers


@numba.njit(**_JIT_STACK)
def dense_rows(x, y, w, b, act, consts, k, scratch):
    """``y[n] = act(b + x[n] · w)`` for every row n: one dense layer over a block of samples.

    ``x`` (m, inputs), ``y`` (m, outputs), both C-contiguous; ``w`` (inputs, outputs) = W^T, ``b``
    (outputs,), ``act`` an ``ACT_CODES`` value; tanh and sigmoid on the activation path ``k`` selects
    (sigmoid(v) = tanh(v/2)/2 + 1/2, as in the cells); ``scratch`` (2, >= inputs and outputs, >= m).
    Each output is a chain of fused multiply-adds from the bias, input by input, computed for all rows at
    once on the block transposed into ``scratch`` (the loops over rows vectorise; layers are a few units
    wide, too narrow for vectors across them: 2-3 times faster than row by row at 8 -> 8); the same bits
    whatever the split into blocks.  The element-wise activations run over the block as one loop.
    """
    m = x.shape[0]
    n_in = w.shape[0]
    n_out = w.shape[1]
    zero = consts[0]
    one = consts[1]
    half = consts[2]
    xt = scratch[0]
    yt = scratch[1]
    for n in range(m):
        for i in range(n_in):
            xt[i, n] = x[n, i]
    for o in range(n_out):
        bo = b[o]
        for n in range(m):
            yt[o, n] = bo
        for i in range(n_in):
            wio = w[i, o]
            for n in range(m):
                yt[o, n] = fma(wio, xt[i, n], yt[o, n])
    for n in range(m):
        for o in range(n_out):
            y[n, o] = yt[o, n]
    flat = y.reshape(m * n_out)
    if act == 1:
        for j in range(flat.size):
            flat[j] = act_tanh(flat[j], k)
    elif act == 2:
        for j in range(flat.size):
            flat[j] = fma(half, act_tanh(half * flat[j], k), half)
    elif act == 3:
        for j in range(flat.size):
            flat[j] = max(flat[j], zero)
    elif act == 4 or act == 6:
        alpha = consts[3] if act == 6 else one
        scale = consts[4] if act == 6 else one
        for j in range(flat.size):
            v = flat[j]
            flat[j] = scale * (alpha * math.expm1(v) if v < zero else v)
    elif act == 5:
        for n in range(m):
            top = y[n, 0]
            for o in range(1, n_out):
                top = max(top, y[n, o])
            total = zero
            for o in range(n_out):
                y[n, o] = math.exp(y[n, o] - top)
                total += y[n, o]
            for o in range(n_out):
                y[n, o] = y[n, o] / total
    elif act == 7:
        for j in range(flat.size):
            v = flat[j]
            flat[j] = max(v, zero) + math.log1p(math.exp(-abs(v)))
    elif act == 8:
        for j in range(flat.size):
            v = flat[j]
            flat[j] = half * v * (one + math.erf(v * consts[5]))


# ---------------------------------------------------------------------------------------------------------------
# Recurrent stacks
#
# The per-sample code is written out in one function on purpose: Numba's own inlining of a helper that
# takes arrays costs a reference-count increment and decrement per array per call (atomic operations,
# here per sample), and a helper left to LLVM is a call with dozens of arguments per sample.  Helpers
# of scalars only are free.


@numba.njit(inline="always", **_JIT_STACK)
def _wrap(i, n):
    if i < 0:
        return i + n
    if i >= n:
        return i - n
    return i


@numba.njit(**_JIT_STACK)
def _layer(kind, filtered, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
           w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    """One recurrent layer over the rows of ``xin``; ``kind`` and ``filtered`` are compile-time constants.

    The last layer writes the head's output (and the skip) to ``out``; the
    others write the state they pass on to ``yseq``.  ``filtered`` selects the
    plan code: False for ``UNIT`` (the direct delay), True for the others.  The gates
    accumulate in ``zz[0]``; a GRU's recurrent product goes to ``zz[1]`` (its n block
    is scaled by the reset gate).  Matrix rows are read several at a time, grouped in
    3-D arrays so that every inner-loop index is a loop counter or a literal (no
    negative-index fix-up, which would turn the loads into gathers): eight rows per
    pass keep the partial sums out of memory for seven of every eight multiply-adds
    while the weights fit the L1 cache; beyond it two rows per pass, then one, stream
    them from L2 faster (``engine.UNROLL``).  A recurrent matrix beyond the L1 cache
    comes as panels instead (``engine.PANEL``): 128 bytes of gate columns for every row,
    summed in registers row by row, the weights read as one sequential stream.
    """
    literally(kind)
    literally(filtered)
    m = xin.shape[0]
    if len(tiles) > 0:
        # the sizes as compile-time constants: every loop's trip count is known (gates padded to a
        # multiple of 16 as engine.pack_stack pads them; where it pads further, engine.MIN_GATES, the
        # extra rows are zero and never read; the bit-exact tests hold the two together)
        hp = 8 * len(tiles)
        sp = 2 * hp if kind == LSTM else hp
        gp = ((4 if kind == LSTM else 3 if kind == GRU else 1) * hp + 15) // 16 * 16
        groups = hp // 8
    else:
        hp = ring.shape[1] // 2 if kind == LSTM else ring.shape[1]
        sp = ring.shape[1]
        gp = bias_a.shape[0]
        groups = w_hh.shape[0]
    ring3 = ring.reshape((ring.shape[0], sp // 8, 8))
    zr = 1 if kind == GRU else 0
    x_one = w_ih.shape[0] == 1 and w_ih.shape[1] == 1
    n_taps = taps_d.shape[0]
    w0 = taps_w[0]
    w1 = taps_w[1] if n_taps > 1 else zero
    w2 = taps_w[2] if n_taps > 2 else zero
    w3 = taps_w[3] if n_taps > 3 else zero
    # CHAIN: up to four taps on delays 1, 2, .. (every interpolator below R = 2, and Lagrange below 3) in
    # transposed form, ŝ_{n+1} = w0·s_n + A, A' = w1·s_n + B, B' = w2·s_n + C, C' = w3·s_n: no older row is
    # read back (reading them cost 20 % at H = 16..40).  A, B, C live in rows rows+2 .. rows+4.
    fused = filtered and mode == MODE_CHAIN
    ra = rows + 2
    rb = rows + 3
    rc = rows + 4
    # panels (engine.PANEL): w_hh is (Gp/lanes, Hp, lanes), 128 bytes of gate columns per panel
    panel = w_hh.shape[2] != gp
    wpf = w_hh.reshape(w_hh.size)
    pv = vpanel(zero)
    pl = 32 if is_float32(zero) else 16
    pos = p0
    # The feedback state alternates between rows `rows` and `rows + 1`: read one, write the other, so that
    # no loop reads and writes the same row (which would keep the vectoriser out).
    fcur = f0
    for n in range(m):
        fnew = 2 * rows + 1 - fcur
        # ŝ_n, the state fed back at this sample
        if filtered and mode != MODE_STN:
            sr = fcur
        else:
            sr = _wrap(pos - d1, rows)

        # input side of the gates
        if x_one:
            xv = xin[n, 0]
            for q in range(gp):
                zz[0, q] = fma(w_ih[0, 0, q], xv, bias_a[q])
        else:
            for q in range(gp):
                zz[0, q] = bias_a[q]
            if w_ih.shape[1] == 8:
                for j in range(w_ih.shape[0]):
                    b = 8 * j
                    v0, v1, v2, v3 = xin[n, b], xin[n, b + 1], xin[n, b + 2], xin[n, b + 3]
                    v4, v5, v6, v7 = xin[n, b + 4], xin[n, b + 5], xin[n, b + 6], xin[n, b + 7]
                    for q in range(gp):
                        zz[0, q] += ((fma(w_ih[j, 0, q], v0, w_ih[j, 1, q] * v1)
                                      + fma(w_ih[j, 2, q], v2, w_ih[j, 3, q] * v3))
                                     + (fma(w_ih[j, 4, q], v4, w_ih[j, 5, q] * v5)
                                        + fma(w_ih[j, 6, q], v6, w_ih[j, 7, q] * v7)))
            elif w_ih.shape[1] == 2:
                for j in range(w_ih.shape[0]):
                    b = 2 * j
                    v0, v1 = xin[n, b], xin[n, b + 1]
                    for q in range(gp):
                        zz[0, q] += fma(w_ih[j, 0, q], v0, w_ih[j, 1, q] * v1)
            else:
                for j in range(w_ih.shape[0]):
                    vj = xin[n, j]
                    for q in range(gp):
                        zz[0, q] = fma(w_ih[j, 0, q], vj, zz[0, q])

        # recurrent side
        if zr == 1:
            for q in range(gp):
                zz[1, q] = bias_b[q]
        if panel:
            # each panel's gates summed in registers over every row, in row order: the one-row-per-pass
            # order, so the same bits, without a store and a load of the partial sums per row
            zf = zz[zr]
            for b in range(w_hh.shape[0]):
                acc = vload_as(zf, b * pl, pv)
                o = b * w_hh.shape[1] * pl
                for j in range(w_hh.shape[1]):
                    acc = vfma(vload_as(wpf, o + j * pl, pv), splat_as(ring[sr, j], pv), acc)
                vstore(zf, b * pl, acc)
        elif w_hh.shape[1] == 8:
            for j in range(groups):
                b = 8 * j
                v0, v1, v2, v3 = ring[sr, b], ring[sr, b + 1], ring[sr, b + 2], ring[sr, b + 3]
                v4, v5, v6, v7 = ring[sr, b + 4], ring[sr, b + 5], ring[sr, b + 6], ring[sr, b + 7]
                for q in range(gp):
                    zz[zr, q] += ((fma(w_hh[j, 0, q], v0, w_hh[j, 1, q] * v1)
                                   + fma(w_hh[j, 2, q], v2, w_hh[j, 3, q] * v3))
                                  + (fma(w_hh[j, 4, q], v4, w_hh[j, 5, q] * v5)
                                     + fma(w_hh[j, 6, q], v6, w_hh[j, 7, q] * v7)))
        elif w_hh.shape[1] == 2:
            for j in range(w_hh.shape[0]):
                b = 2 * j
                v0, v1 = ring[sr, b], ring[sr, b + 1]
                for q in range(gp):
                    zz[zr, q] += fma(w_hh[j, 0, q], v0, w_hh[j, 1, q] * v1)
        else:
            for j in range(w_hh.shape[0]):
                vj = ring[sr, j]
                for q in range(gp):
                    zz[zr, q] = fma(w_hh[j, 0, q], vj, zz[zr, q])

        # the cell writes s_n into row pos
        if kind == LSTM:
            for q in range(4 * hp):
                zz[0, q] = act_tanh(zz[0, q], k)
            # c = i·g + f·c_prev, h = o·tanh(c) (the product with c_prev beside the chain from the gates' tanh)
            for j in range(hp):
                c = fma(fma(half, zz[0, j], half), zz[0, 2 * hp + j],
                        fma(half, zz[0, hp + j], half) * ring[sr, hp + j])
                ring[pos, hp + j] = c
                ring[pos, j] = fma(half, zz[0, 3 * hp + j], half) * act_tanh(c, k)
        elif kind == GRU:
            # n = tanh(r·y/2 + (y/2 + x_n)) with y = W_hn·h + b_hn, and h = (1 − z)·n + z·h_prev: one
            # operation after each tanh
            for q in range(2 * hp):
                zz[1, q] = act_tanh(zz[0, q] + zz[1, q], k)
            for j in range(hp):
                hy = half * zz[1, 2 * hp + j]
                a = act_tanh(fma(zz[1, j], hy, hy + zz[0, 2 * hp + j]), k)
                ring[pos, j] = fma(fma(-half, zz[1, hp + j], half), a, fma(half, zz[1, hp + j], half) * ring[sr, j])
        else:
            if relu:
                for j in range(hp):
                    v = zz[0, j]
                    ring[pos, j] = zero if v < zero else v  # NaN stays NaN
            else:
                for j in range(hp):
                    ring[pos, j] = act_tanh(zz[0, j], k)
        if fused:
            # a pass of its own over the whole state (an LSTM's h and c together): a loop that also
            # computed the state, or read and wrote a row at both j and Hp + j, would keep the
            # vectoriser out
            for j in range(sp):
                v = ring[pos, j]
                ring[fnew, j] = fma(w0, v, ring[ra, j])
                ring[ra, j] = fma(w1, v, ring[rb, j])
                ring[rb, j] = fma(w2, v, ring[rc, j])
                ring[rc, j] = w3 * v

        # the plan: ŝ_{n+1} (FIR, allpass; CHAIN is done) or the rescaled state (STN)
        if not filtered or fused:
            pass
        elif mode == MODE_FIR:
            if n_taps == 4:
                r0 = _wrap(pos - taps_d[0] + 1, rows)
                r1 = _wrap(pos - taps_d[1] + 1, rows)
                r2 = _wrap(pos - taps_d[2] + 1, rows)
                r3 = _wrap(pos - taps_d[3] + 1, rows)
                for j in range(sp):
                    ring[fnew, j] = fma(w3, ring[r3, j], fma(w2, ring[r2, j], fma(w0, ring[r0, j], w1 * ring[r1, j])))
            elif n_taps == 2:
                r0 = _wrap(pos - taps_d[0] + 1, rows)
                r1 = _wrap(pos - taps_d[1] + 1, rows)
                for j in range(sp):
                    ring[fnew, j] = fma(w0, ring[r0, j], w1 * ring[r1, j])
            else:
                r0 = _wrap(pos - taps_d[0] + 1, rows)
                for j in range(sp):
                    ring[fnew, j] = w0 * ring[r0, j]
                for t in range(1, n_taps):
                    rt = _wrap(pos - taps_d[t] + 1, rows)
                    wt = taps_w[t]
                    for j in range(sp):
                        ring[fnew, j] = fma(wt, ring[rt, j], ring[fnew, j])
        elif mode == MODE_ALLPASS:
            near = _wrap(pos - d1 + 1, rows)
            far = _wrap(near - 1, rows)
            for j in range(sp):
                ring[fnew, j] = fma(w0, ring[near, j] - ring[fcur, j], ring[far, j])
        elif mode == MODE_STN:
            for j in range(sp):
                ring[pos, j] = fma(w0, ring[pos, j] - ring[sr, j], ring[sr, j])

        # the state passed on: fresh s_n, or ŝ_{n+1}
        if not delayed:
            orow = pos
        elif filtered and mode != MODE_STN:
            orow = fnew
        else:
            orow = _wrap(pos + 1 - d1, rows)
        if last:
            # eight interleaved partial sums, then a fixed tree: short dependency chains and the
            # same rounding whatever the plan
            for o in range(head_w.shape[0]):
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
                for j in range(hp // 8):
                    a0 = fma(head_w[o, j, 0], ring3[orow, j, 0], a0)
                    a1 = fma(head_w[o, j, 1], ring3[orow, j, 1], a1)
                    a2 = fma(head_w[o, j, 2], ring3[orow, j, 2], a2)
                    a3 = fma(head_w[o, j, 3], ring3[orow, j, 3], a3)
                    a4 = fma(head_w[o, j, 4], ring3[orow, j, 4], a4)
                    a5 = fma(head_w[o, j, 5], ring3[orow, j, 5], a5)
                    a6 = fma(head_w[o, j, 6], ring3[orow, j, 6], a6)
                    a7 = fma(head_w[o, j, 7], ring3[orow, j, 7], a7)
                out[n, o] = (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + head_b[o]
            for j in range(skip):
                out[n, j] += inp[n, j]
        else:
            for j in range(hp):
                yseq[n, j] = ring[orow, j]
        pos += 1
        if pos == rows:
            pos = 0
        fcur = fnew


# One entry per cell kind and plan family, so that a run compiles only the code it uses; each activation
# path is its own specialisation too (the length of the constant tuple ``k`` selects it).  Arguments, all
# of the run's dtype unless said otherwise:
#
#   xin (m, inputs)       the layer's input rows (the signal for the first layer, the previous layer's states)
#   out (m, outputs)      the head's output (last layer only)
#   yseq (m, Hp)          the states passed on (other layers)
#   ring (>= rows + 5, Sp)  rows past states, two rows for the feedback state, three for the CHAIN mode's
#                         partial sums; updated in place
#   rows, p0, f0          int: past states kept, ring row of the first sample, row of its feedback state
#   mode, d1              int: plan mode, delay of the direct plans
#   taps_d, taps_w        int64 delays and weights of the plan
#   delayed, last, relu   bool: pass ŝ_{n+1} on; this layer feeds the head; Elman with relu
#   w_ih, w_hh            (groups, unroll, Gp) weights, unroll = 8, 2 or 1 rows per pass; or w_hh as panels,
#                         (Gp/lanes, Hp, lanes) with lanes = 128 bytes (told apart by its last axis, not Gp);
#                         bias_a, bias_b (Gp)
#   head_w, head_b        (outputs, Hp/8, 8) and (outputs,)
#   inp, skip             the signal and the number of its channels added to the output
#   zz (2, >= Gp)         scratch
#   k, half, zero         the activation's constants (tuple), 1/2 and 0
#   tiles                 () for the size-generic kernel, or a tuple of Hp/8 zeros: compiles a kernel for
#                         that padded size, every trip count a constant (engine.TILED says when)
#
# The ``*_channels`` entries take one more leading axis (channels) on xin, out, yseq, ring, inp and zz
# and run the channels on all cores.


@numba.njit(**_JIT_STACK)
def lstm_direct(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
                bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(LSTM, False, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
           bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def lstm_direct_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
                         bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(LSTM, False, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last,
               relu, w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def lstm_filtered(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
                  bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(LSTM, True, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
           bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def lstm_filtered_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
                           w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(LSTM, True, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last,
               relu, w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def gru_direct(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
               bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(GRU, False, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
           bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def gru_direct_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
                        bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(GRU, False, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last,
               relu, w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def gru_filtered(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
                 bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(GRU, True, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
           bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def gru_filtered_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
                          bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(GRU, True, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu,
               w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def elman_direct(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
                 bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(RNN_TANH, False, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
           w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def elman_direct_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
                          bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(RNN_TANH, False, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last,
               relu, w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def elman_filtered(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh,
                   bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _layer(RNN_TANH, True, xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
           w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def elman_filtered_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
                            w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _layer(RNN_TANH, True, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last,
               relu, w_ih, w_hh, bias_a, bias_b, head_w, head_b, inp[c], skip, zz[c], k, half, zero, tiles)


# ---------------------------------------------------------------------------------------------------------------
# SIMD vector values
#
# Numba has no vector type: an array lives in memory, so a kernel whose state goes from one sample to the
# next through an array pays a store and a load (about 3 ns here) every time, and LLVM cannot keep it in
# registers because it cannot prove that the kernel's arrays do not overlap.  A value of VecType is an
# LLVM ``<n x float>`` (or double): a local variable of that type stays in registers across loop
# iterations.  Only the intrinsics below create and combine them; each is the one LLVM instruction or
# intrinsic its scalar counterpart in this module compiles to, so that a kernel written with them gives
# the scalar code's bits, lane by lane.  Widths come from types, never from run-time values: vload_t takes
# the width from a tuple argument's length and a literal (8·len(tiles)·blocks lanes), the others from a
# vector they are given.  ``is_float32`` makes a dtype test a compile-time constant.
# (They live in this module because Numba's on-disk cache knows only the kernel's own source file.)


class VecType(types.Type):
    """``n`` lanes of ``dtype`` (float32 or float64) held as one LLVM vector."""

    def __init__(self, dtype, n):
        self.dtype, self.n = dtype, n
        super().__init__(name=f"Vec({dtype}, {n})")


@register_model(VecType)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.n))


def _is_vec(*tys):
    return all(isinstance(t, VecType) for t in tys) and all(t == tys[0] for t in tys)


def _splat(builder, ty, value):
    v = builder.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(ty, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), ty.count), [0] * ty.count))


def _pointer(context, builder, arrty, arr, start, vty):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.bitcast(builder.gep(ary.data, [start]), vty.as_pointer())


def _llvm_call(builder, name, vty, args):
    kind = "f32" if vty.element == ir.FloatType() else "f64"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [a.type for a in args]),
                                        f"llvm.{name}.v{vty.count}{kind}")
    return builder.call(fn, args)


@intrinsic
def vload_t(typingctx, arr, start, tiles, blocks):
    """8·len(tiles)·blocks consecutive elements of a contiguous 1-D array from ``start`` (no bounds check;
    ``blocks`` a literal)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(tiles, types.UniTuple)
            and isinstance(blocks, types.IntegerLiteral)):
        return None
    vt = VecType(arr.dtype, 8 * tiles.count * blocks.literal_value)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], vty), align=1)

    return vt(arr, start, tiles, blocks), codegen


@intrinsic
def vpart(typingctx, v, i, like):
    """Lanes [i·n, i·n + n) of ``v`` as a vector like ``like`` (n lanes; ``i`` a literal)."""
    if not (isinstance(v, VecType) and isinstance(like, VecType) and v.dtype == like.dtype
            and isinstance(i, types.IntegerLiteral)):
        return None
    n = like.n
    first = i.literal_value * n

    def codegen(context, builder, sig, args):
        mask = ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(first, first + n)))
        return builder.shuffle_vector(args[0], ir.Constant(args[0].type, ir.Undefined), mask)

    return like(v, i, like), codegen


@intrinsic
def vload_as(typingctx, arr, start, like):
    """As many consecutive elements as ``like`` has lanes, from ``start`` (no bounds check)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(like, VecType)):
        return None

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(like)
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], vty), align=1)

    return like(arr, start, like), codegen


@intrinsic
def is_float32(typingctx, x):
    """Whether ``x`` is a float32, as a constant of the compiled code (dead branches are dropped)."""
    value = x == types.float32

    def codegen(context, builder, sig, args):
        return context.get_constant(types.boolean, value)

    return types.boolean(x), codegen


@intrinsic
def vrows8(typingctx, arr, start, stride, like):
    """Eight vectors like ``like`` from ``start``, ``start + stride``, ... ``start + 7·stride`` (no bounds check)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(like, VecType)
            and isinstance(start, types.Integer) and isinstance(stride, types.Integer)):
        return None
    tup = types.UniTuple(like, 8)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(like)
        start = context.cast(builder, args[1], sig.args[1], types.intp)
        stride = context.cast(builder, args[2], sig.args[2], types.intp)
        rows = [builder.load(_pointer(context, builder, sig.args[0], args[0],
                                      builder.add(start, builder.mul(stride, ir.Constant(start.type, r))), vty),
                             align=1) for r in range(8)]
        return context.make_tuple(builder, tup, rows)

    return tup(arr, start, stride, like), codegen


#: The width of a panel of recurrent weights (``engine.PANEL``) in bytes: the kernels sum a panel's gates in
#: vectors of this size (two 512-bit registers: 32 float32 or 16 float64 lanes).
PANEL_BYTES = 128


@intrinsic
def vpanel(typingctx, zero):
    """A vector of zeros, PANEL_BYTES of ``zero``'s type."""
    if not isinstance(zero, types.Float):
        return None
    vt = VecType(zero, PANEL_BYTES // (zero.bitwidth // 8))

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)

    return vt(zero), codegen


@intrinsic
def vstore(typingctx, arr, start, v):
    """``arr[start:start + lanes] = v`` (no bounds check)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(v, VecType)):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1], args[2].type), align=1)
        return context.get_dummy_value()

    return types.none(arr, start, v), codegen


@intrinsic
def splat_as(typingctx, x, like):
    """``x`` in every lane of a vector like ``like``."""
    if not (isinstance(like, VecType) and x == like.dtype):
        return None

    def codegen(context, builder, sig, args):
        return _splat(builder, context.get_value_type(like), args[0])

    return like(x, like), codegen


@intrinsic
def lane(typingctx, v, k):
    """Lane ``k`` of ``v`` (a constant after unrolling, for a register move)."""
    if not (isinstance(v, VecType) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], args[1])

    return v.dtype(v, k), codegen


def _binary(op):
    def typer(typingctx, a, b):
        if not _is_vec(a, b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(*args)

        return a(a, b), codegen

    return intrinsic(typer)


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")
vdiv = _binary("fdiv")


@intrinsic
def vfma(typingctx, a, b, c):
    """a·b + c rounded once (``llvm.fma``), lane by lane."""
    if not _is_vec(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        return _llvm_call(builder, "fma", args[0].type, list(args))

    return a(a, b, c), codegen


@intrinsic
def vclamp_above(typingctx, a, hi):
    """``hi`` where a > hi, else a (NaN stays NaN): the scalar ``if a > hi: a = hi``."""
    if not _is_vec(a, hi):
        return None

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[1], args[0])

    return a(a, hi), codegen


@intrinsic
def vclamp_below(typingctx, a, lo):
    """``lo`` where a < lo, else a (NaN stays NaN)."""
    if not _is_vec(a, lo):
        return None

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered("<", args[0], args[1]), args[1], args[0])

    return a(a, lo), codegen


@intrinsic
def vabs(typingctx, a):
    if not _is_vec(a):
        return None

    def codegen(context, builder, sig, args):
        return _llvm_call(builder, "fabs", args[0].type, [args[0]])

    return a(a), codegen


@intrinsic
def vfloor(typingctx, a):
    if not _is_vec(a):
        return None

    def codegen(context, builder, sig, args):
        return _llvm_call(builder, "floor", args[0].type, [args[0]])

    return a(a), codegen


@intrinsic
def vcopysign(typingctx, a, b):
    if not _is_vec(a, b):
        return None

    def codegen(context, builder, sig, args):
        return _llvm_call(builder, "copysign", args[0].type, list(args))

    return a(a, b), codegen


@intrinsic
def vexp2i(typingctx, kf):
    """2^k for integral-valued ``kf`` in the normal range, from the exponent bits (as the scalar kernels)."""
    if not _is_vec(kf):
        return None
    wide = kf.dtype == types.float64

    def codegen(context, builder, sig, args):
        vty = args[0].type
        ity = ir.VectorType(ir.IntType(64 if wide else 32), vty.count)
        bias, shift = (1023, 52) if wide else (127, 23)
        k = builder.fptosi(args[0], ity)
        k = builder.shl(builder.add(k, ir.Constant(ity, [bias] * vty.count)), ir.Constant(ity, [shift] * vty.count))
        return builder.bitcast(k, vty)

    return kf(kf), codegen


@intrinsic
def vneg(typingctx, a):
    if not _is_vec(a):
        return None

    def codegen(context, builder, sig, args):
        return builder.fneg(args[0])

    return a(a), codegen


# ---------------------------------------------------------------------------------------------------------------
# A small LSTM or GRU in registers
#
# One LSTM or GRU layer of padded size 8, 16 or 32 with one to eight inputs and a one-output head (or dense layers
# behind, which take its states), plain (UNIT with delay 1) or CHAIN: the state, the gates and the CHAIN mode's
# partial sums are SIMD vectors (VecType, above) that stay in registers from sample to sample, where the generic
# kernel stores and loads them three or four times per sample.  The arithmetic is the generic kernel's, operation
# for operation and in the same order (the eight-row trees, the same tanh), so the two give the same bits
# (tests/test_fast_paths.py).


def vtanh(x, k):
    """tanh of every lane on the path that ``k`` selects (as :func:`act_tanh`, lane by lane)."""
    raise NotImplementedError("call from a jitted function")


@overload(vtanh, jit_options=_JIT_ACT)
def _vtanh_impl(x, k):
    if not (isinstance(x, VecType) and isinstance(k, numba.types.UniTuple)):
        return None
    if k.count == N_FAST:
        def impl(x, k):
            a = vclamp_above(x, splat_as(k[0], x))
            a = vclamp_below(a, splat_as(-k[0], x))
            u = vmul(a, a)
            u2 = vmul(u, u)
            num = vfma(vmul(a, u), vfma(u2, vfma(u, _vc(k, 5, x), _vc(k, 4, x)),
                                        vfma(u, _vc(k, 3, x), _vc(k, 2, x))), a)
            den = vfma(u2, vfma(u2, _vc(k, 9, x), vfma(u, _vc(k, 8, x), _vc(k, 7, x))),
                       vfma(u, _vc(k, 6, x), _vc(k, 1, x)))
            return vdiv(num, den)
        return impl
    if k.count != N_ACC:
        return None
    if x.dtype == numba.types.float64:
        def impl(x, k):
            a = vclamp_above(vabs(x), _vc(k, 0, x))
            t = vadd(a, a)
            kf = vfloor(vfma(a, _vc(k, 1, x), _vc(k, 15, x)))
            r = vfma(vneg(kf), _vc(k, 2, x), t)
            r2 = vmul(r, r)
            r4 = vmul(r2, r2)
            q0 = vfma(r2, vfma(r, _vc(k, 6, x), _vc(k, 5, x)), vfma(r, _vc(k, 4, x), _vc(k, 3, x)))
            q1 = vfma(r2, vfma(r, _vc(k, 10, x), _vc(k, 9, x)), vfma(r, _vc(k, 8, x), _vc(k, 7, x)))
            q2 = vfma(r2, vfma(r, _vc(k, 14, x), _vc(k, 13, x)),
                            vfma(r, _vc(k, 12, x), _vc(k, 11, x)))
            p = vfma(r2, vfma(r4, vfma(r4, q2, q1), q0), r)
            scale = vexp2i(kf)
            e = vfma(scale, p, vsub(scale, _vc(k, 16, x)))
            return vcopysign(vdiv(e, vadd(e, _vc(k, 17, x))), x)
        return impl

    def impl(x, k):
        a = vclamp_above(vabs(x), _vc(k, 0, x))
        t = vadd(a, a)
        kf = vfloor(vfma(a, _vc(k, 1, x), _vc(k, 15, x)))
        r = vfma(vneg(kf), _vc(k, 2, x), t)
        r2 = vmul(r, r)
        p = vfma(r2, vfma(vmul(r2, r2), vfma(r, _vc(k, 8, x), _vc(k, 7, x)),
                          vfma(r2, vfma(r, _vc(k, 6, x), _vc(k, 5, x)), vfma(r, _vc(k, 4, x), _vc(k, 3, x)))), r)
        scale = vexp2i(kf)
        e = vfma(scale, p, vsub(scale, _vc(k, 16, x)))
        return vcopysign(vdiv(e, vadd(e, _vc(k, 17, x))), x)
    return impl


@numba.njit(inline="always", **_JIT_ACT)
def _vc(k, i, like):
    return splat_as(k[i], like)


@numba.njit(inline="always", **_JIT_ACT)
def _tree8(w, v):
    """The generic kernel's eight-row tree, on vectors (``w``, ``v``: tuples of eight)."""
    return vadd(vadd(vfma(w[0], v[0], vmul(w[1], v[1])), vfma(w[2], v[2], vmul(w[3], v[3]))),
                vadd(vfma(w[4], v[4], vmul(w[5], v[5])), vfma(w[6], v[6], vmul(w[7], v[7]))))


@numba.njit(inline="always", **_JIT_ACT)
def _units8(h, g, like):
    """Units 8·g .. 8·g + 7 of the state ``h``, each in every lane of a vector like ``like``."""
    b = 8 * g
    return (splat_as(lane(h, b), like), splat_as(lane(h, b + 1), like), splat_as(lane(h, b + 2), like),
            splat_as(lane(h, b + 3), like), splat_as(lane(h, b + 4), like), splat_as(lane(h, b + 5), like),
            splat_as(lane(h, b + 6), like), splat_as(lane(h, b + 7), like))


@numba.njit(inline="always", **_JIT_ACT)
def _inputs8(x, n, like):
    """Inputs 0 .. 7 of row ``n`` of ``x``, each in every lane of a vector like ``like``."""
    return (splat_as(x[n, 0], like), splat_as(x[n, 1], like), splat_as(x[n, 2], like), splat_as(x[n, 3], like),
            splat_as(x[n, 4], like), splat_as(x[n, 5], like), splat_as(x[n, 6], like), splat_as(x[n, 7], like))


@numba.njit(**_JIT_STACK)
def _small(kind, xin, out, yseq, ring, rows, p0, f0, mode, taps_w, delayed, last, w_ih, w_hh, bias_a, bias_b,
           head_w, head_b, inp, skip, k, half, zero, lanes):
    """One LSTM or GRU layer (``kind``, a compile-time constant) of padded size Hp = 8·len(lanes) (8, 16 or
    32), one to eight inputs, plain (UNIT, delay 1) or CHAIN, its state in registers; a one-output head
    (``last``) or the states passed on to ``yseq`` (for dense layers behind): the generic kernel's arguments
    and bits."""
    literally(kind)
    m = xin.shape[0]
    if m == 0:
        return
    sp = ring.shape[1]
    hp = 8 * len(lanes)
    gp = w_hh.shape[2]
    rf = ring.reshape(ring.size)
    wf = w_hh.reshape(w_hh.size)
    chain = mode == MODE_CHAIN
    n_taps = taps_w.shape[0]
    ra = rows + 2
    rb = rows + 3
    rc = rows + 4
    sr = f0 if chain else _wrap(p0 - 1, rows)
    # the state fed back (ŝ_n: h, and an LSTM's c) and the CHAIN mode's partial sums A, B, C
    h = vload_t(rf, sr * sp, lanes, 1)
    ah = vload_as(rf, ra * sp, h)
    bh = vload_as(rf, rb * sp, h)
    ch = vload_as(rf, rc * sp, h)
    c = ac = bc = cc = h
    if kind == LSTM:
        c = vload_as(rf, sr * sp + hp, h)
        ac = vload_as(rf, ra * sp + hp, h)
        bc = vload_as(rf, rb * sp + hp, h)
        cc = vload_as(rf, rc * sp + hp, h)
    tw0 = splat_as(taps_w[0], h)
    tw1 = splat_as(taps_w[1] if n_taps > 1 else zero, h)
    tw2 = splat_as(taps_w[2] if n_taps > 2 else zero, h)
    tw3 = splat_as(taps_w[3] if n_taps > 3 else zero, h)
    vhalf = splat_as(half, h)
    wi = w_ih.reshape(w_ih.size)
    grouped = w_ih.shape[1] == 8
    n_single = 0 if grouped else xin.shape[1]  # inputs whose weight rows are packed one per pass
    # The gate sums as one vector of Hp lanes per block (i, f, g, o; r, z, n), except a float32 LSTM of
    # Hp = 8: its blocks in pairs (i, f), (g, o), vectors of 16 lanes that fill a 512-bit register.
    pair = kind == LSTM and hp == 8 and is_float32(zero)
    b0 = vload_as(bias_a, 0, h)
    b1 = vload_as(bias_a, hp, h)
    b2 = vload_as(bias_a, 2 * hp, h)
    b3 = vload_as(bias_a, 3 * hp, h) if kind == LSTM else b2
    e0 = vload_as(bias_b, 0, h)
    e1 = vload_as(bias_b, hp, h)
    e2 = vload_as(bias_b, 2 * hp, h)
    b01 = vload_t(bias_a, 0, lanes, 2)
    b23 = vload_as(bias_a, 2 * hp, b01) if kind == LSTM else b01
    hw = vload_as(head_w.reshape(head_w.size), 0, h)
    hn = h
    cn = c
    for n in range(m):
        # the input side (zz[0] of the generic kernel): from the bias, one multiply-add per input and gate
        # block, input by input (the generic kernel's one-row-per-pass order); the GRU's recurrent sums (its
        # zz[1]) in y0 .. y2
        z0, z1, z2, z3, z01, z23 = b0, b1, b2, b3, b01, b23
        if grouped:
            # eight inputs: eight weight rows per pass, summed as the generic kernel's tree
            if pair:
                v = _inputs8(xin, n, b01)
                z01 = vadd(z01, _tree8(vrows8(wi, 0, gp, b01), v))
                z23 = vadd(z23, _tree8(vrows8(wi, 2 * hp, gp, b01), v))
            else:
                v = _inputs8(xin, n, h)
                z0 = vadd(z0, _tree8(vrows8(wi, 0, gp, h), v))
                z1 = vadd(z1, _tree8(vrows8(wi, hp, gp, h), v))
                z2 = vadd(z2, _tree8(vrows8(wi, 2 * hp, gp, h), v))
                if kind == LSTM:
                    z3 = vadd(z3, _tree8(vrows8(wi, 3 * hp, gp, h), v))
        for j in range(n_single):
            o = j * gp
            if pair:
                xw = splat_as(xin[n, j], b01)
                z01 = vfma(vload_as(wi, o, b01), xw, z01)
                z23 = vfma(vload_as(wi, o + 2 * hp, b01), xw, z23)
            else:
                xv = splat_as(xin[n, j], h)
                z0 = vfma(vload_as(wi, o, h), xv, z0)
                z1 = vfma(vload_as(wi, o + hp, h), xv, z1)
                z2 = vfma(vload_as(wi, o + 2 * hp, h), xv, z2)
                if kind == LSTM:
                    z3 = vfma(vload_as(wi, o + 3 * hp, h), xv, z3)
        y0 = e0
        y1 = e1
        y2 = e2
        for g in range(len(lanes)):
            o = 8 * g * gp
            if kind == GRU:
                v = _units8(h, g, h)
                y0 = vadd(y0, _tree8(vrows8(wf, o, gp, h), v))
                y1 = vadd(y1, _tree8(vrows8(wf, o + hp, gp, h), v))
                y2 = vadd(y2, _tree8(vrows8(wf, o + 2 * hp, gp, h), v))
            elif pair:
                v = _units8(h, g, b01)
                z01 = vadd(z01, _tree8(vrows8(wf, o, gp, b01), v))
                z23 = vadd(z23, _tree8(vrows8(wf, o + 2 * hp, gp, b01), v))
            else:
                v = _units8(h, g, h)
                z0 = vadd(z0, _tree8(vrows8(wf, o, gp, h), v))
                z1 = vadd(z1, _tree8(vrows8(wf, o + hp, gp, h), v))
                z2 = vadd(z2, _tree8(vrows8(wf, o + 2 * hp, gp, h), v))
                z3 = vadd(z3, _tree8(vrows8(wf, o + 3 * hp, gp, h), v))
        if kind == LSTM:
            if pair:
                a01 = vtanh(z01, k)
                a23 = vtanh(z23, k)
                ti, tf, tg, to = vpart(a01, 0, h), vpart(a01, 1, h), vpart(a23, 0, h), vpart(a23, 1, h)
            else:
                ti, tf, tg, to = vtanh(z0, k), vtanh(z1, k), vtanh(z2, k), vtanh(z3, k)
            cn = vfma(vfma(vhalf, ti, vhalf), tg, vmul(vfma(vhalf, tf, vhalf), c))
            hn = vmul(vfma(vhalf, to, vhalf), vtanh(cn, k))
        else:
            r = vtanh(vadd(z0, y0), k)
            z = vtanh(vadd(z1, y1), k)
            hy = vmul(vhalf, y2)
            a = vtanh(vfma(r, hy, vadd(hy, z2)), k)
            hn = vfma(vfma(vneg(vhalf), z, vhalf), a, vmul(vfma(vhalf, z, vhalf), h))
        if chain:
            h = vfma(tw0, hn, ah)
            ah = vfma(tw1, hn, bh)
            bh = vfma(tw2, hn, ch)
            ch = vmul(tw3, hn)
            if kind == LSTM:
                c = vfma(tw0, cn, ac)
                ac = vfma(tw1, cn, bc)
                bc = vfma(tw2, cn, cc)
                cc = vmul(tw3, cn)
            s = h if delayed else hn
        else:
            h = hn
            c = cn
            s = hn
        if not last:  # the state, for the dense layers behind
            vstore(yseq[n], 0, s)
            continue
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
        for g in range(len(lanes)):
            a0 = fma(lane(hw, 8 * g + 0), lane(s, 8 * g + 0), a0)
            a1 = fma(lane(hw, 8 * g + 1), lane(s, 8 * g + 1), a1)
            a2 = fma(lane(hw, 8 * g + 2), lane(s, 8 * g + 2), a2)
            a3 = fma(lane(hw, 8 * g + 3), lane(s, 8 * g + 3), a3)
            a4 = fma(lane(hw, 8 * g + 4), lane(s, 8 * g + 4), a4)
            a5 = fma(lane(hw, 8 * g + 5), lane(s, 8 * g + 5), a5)
            a6 = fma(lane(hw, 8 * g + 6), lane(s, 8 * g + 6), a6)
            a7 = fma(lane(hw, 8 * g + 7), lane(s, 8 * g + 7), a7)
        out[n, 0] = (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + head_b[0]
        if skip:
            out[n, 0] += inp[n, 0]
    # the ring as the generic kernel leaves it: s_n in the last sample's row, and for CHAIN the next
    # feedback row and the partial sums
    last = _wrap(p0 + (m - 1) % rows, rows)
    vstore(rf, last * sp, hn)
    if chain:
        fend = f0 if m % 2 == 0 else 2 * rows + 1 - f0
        vstore(rf, fend * sp, h)
        vstore(rf, ra * sp, ah)
        vstore(rf, rb * sp, bh)
        vstore(rf, rc * sp, ch)
    if kind == LSTM:
        vstore(rf, last * sp + hp, cn)
        if chain:
            vstore(rf, fend * sp + hp, c)
            vstore(rf, ra * sp + hp, ac)
            vstore(rf, rb * sp + hp, bc)
            vstore(rf, rc * sp + hp, cc)


@numba.njit(**_JIT_STACK)
def lstm_small(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
               bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _small(LSTM, xin, out, yseq, ring, rows, p0, f0, mode, taps_w, delayed, last, w_ih, w_hh, bias_a, bias_b, head_w,
           head_b, inp, skip, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def lstm_small_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
                        w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _small(LSTM, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, taps_w, delayed, last, w_ih, w_hh,
               bias_a, bias_b, head_w, head_b, inp[c], skip, k, half, zero, tiles)


@numba.njit(**_JIT_STACK)
def gru_small(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih, w_hh, bias_a,
              bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    _small(GRU, xin, out, yseq, ring, rows, p0, f0, mode, taps_w, delayed, last, w_ih, w_hh, bias_a, bias_b, head_w,
           head_b, inp, skip, k, half, zero, tiles)


@numba.njit(parallel=True, **_JIT_STACK)
def gru_small_channels(xin, out, yseq, ring, rows, p0, f0, mode, d1, taps_d, taps_w, delayed, last, relu, w_ih,
                       w_hh, bias_a, bias_b, head_w, head_b, inp, skip, zz, k, half, zero, tiles):
    for c in prange(xin.shape[0]):
        _small(GRU, xin[c], out[c], yseq[c], ring[c], rows, p0, f0, mode, taps_w, delayed, last, w_ih, w_hh,
               bias_a, bias_b, head_w, head_b, inp[c], skip, k, half, zero, tiles)


# ---------------------------------------------------------------------------------------------------------------
# Any network: the table-driven fallback


@numba.njit(**_JIT)
def _act_tanh(v, fast, kf):
    if fast:
        return tanh_fast(v, kf)
    return math.tanh(v)


@numba.njit(**_JIT)
def _sigmoid(v, one, limit):
    # exp's argument capped: exp(-v) overflows in float32 for v < -88, and this kernel's fastmath assumes no
    # infinities (1/(1 + inf) came out NaN); the cap changes the result by less than 2e-35
    return one / (one + math.exp(min(-v, limit)))


@numba.njit(**_JIT)
def _act_sigmoid(v, fast, kf, half, one, limit):
    if fast:
        return half * tanh_fast(half * v, kf) + half
    return _sigmoid(v, one, limit)


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
    limit = consts[EXP_LIMIT]
    if act == 1:
        for k in range(n_out):
            y[k] = math.tanh(y[k])
    elif act == 2:
        for k in range(n_out):
            y[k] = _sigmoid(y[k], one, limit)
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
def _cell(table, l, params, x, h_prev, c_prev, new, gates, gates2, consts, fast, kf):
    """One step of a recurrent cell from the fed-back state; writes the fresh state into ``new``."""
    kind = table[l, 0]
    n_in = table[l, 1]
    hid = table[l, 2]
    wih = table[l, 3]
    whh = table[l, 4]
    bias = table[l, 5]
    one = consts[1]
    half = consts[2]
    limit = consts[EXP_LIMIT]
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
            r = _act_sigmoid(gates[k] + gates2[k], fast, kf, half, one, limit)
            z = _act_sigmoid(gates[hid + k] + gates2[hid + k], fast, kf, half, one, limit)
            n = _act_tanh(gates[2 * hid + k] + r * gates2[2 * hid + k], fast, kf)
            new[k] = (one - z) * n + z * h_prev[k]
        return
    for j in range(hid):
        hj = h_prev[j]
        base = whh + j * g
        for k in range(g):
            gates[k] += params[base + k] * hj
    if kind == LSTM:
        for k in range(hid):
            i = _act_sigmoid(gates[k], fast, kf, half, one, limit)
            f = _act_sigmoid(gates[hid + k], fast, kf, half, one, limit)
            c = f * c_prev[k] + i * _act_tanh(gates[2 * hid + k], fast, kf)
            o = _act_sigmoid(gates[3 * hid + k], fast, kf, half, one, limit)
            new[hid + k] = c
            new[k] = o * _act_tanh(c, fast, kf)
    elif kind == RNN_TANH:
        for k in range(hid):
            new[k] = _act_tanh(gates[k], fast, kf)
    else:
        zero = consts[0]
        for k in range(hid):
            new[k] = gates[k] if gates[k] > zero else zero


@numba.njit(**_JIT)
def run_network(inp, out, table, params, ring, feedback, position, depth, plan_kind, tap_delay, tap_weight,
                delayed_output, skip, consts, buf_a, buf_b, gates, gates2, fast):
    """Process ``inp`` (N, inputs) into ``out`` (N, outputs) for one channel, updating the state in place.

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
    ``plan_kind`` is 0 (FIR taps), 1 (allpass) or 2 (state-trajectory rescale).
    ``ring`` (sum of depth*S over recurrent layers), ``feedback`` (sum of S) and
    ``position`` (one int64, the ring slot the next sample writes) carry the whole
    state from one call to the next, so any split into blocks gives the same result:
    for every recurrent layer ``feedback`` holds the state the next sample feeds back
    (ŝ_{n+1}), computed right after s_n is written into the ring.  ``fast`` selects
    the rational tanh (and sigmoid through it) instead of libm's.
    """
    n_samples = inp.shape[0]
    n_layers = table.shape[0]
    n_out = out.shape[1]
    n_taps = tap_delay.shape[0]
    pos = position[0]
    zero = consts[0]
    kf = _fast_consts(consts)
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
                _cell(table, l, params, x, fb[:hid], fb[hid:], slot, gates, gates2, consts, fast, kf)
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
                 delayed_output, skip, consts, buf_a, buf_b, gates, gates2, fast):
    """:func:`run_network` over independent channels (first axis of every state array) on all cores."""
    for c in prange(inp.shape[0]):
        run_network(inp[c], out[c], table, params, ring[c], feedback[c], position[c], depth, plan_kind,
                    tap_delay, tap_weight, delayed_output, skip, consts, buf_a[c], buf_b[c], gates[c], gates2[c], fast)


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
