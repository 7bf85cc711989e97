"""The recurrent-stack kernels and the two activation paths.

Accuracy bounds of the vectorisable activations over dense grids, the fast path
against the accurate one on the PyTorch goldens, the stack kernels against the
table-driven kernel under every plan, and the bit-exact invariances on the code
paths the older tests do not reach (float32, the fast path, chunked multi-layer
stacks, several channels).  No timing here: see tools/bench.py.
"""

import dataclasses

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, golden_manifest, run_fresh, run_golden
from nbrnn import _kernels, engine, reference
from nbrnn.adapt import make_plan
from nbrnn.network import Dense, Network, Recurrent

MODELS = golden_manifest()
DTYPES = ["float32", "float64"]


def _tanh(x, dtype, fast):
    x = np.ascontiguousarray(x, dtype=dtype)
    out = np.empty_like(x)
    _kernels.tanh_many(x, out, _kernels.constants(dtype), fast)
    return out


def _grid():
    """Dense on [-25, 25], plus magnitudes from 1e-300 up and both zeros."""
    tiny = np.geomspace(1e-300, 25.0, 100_001)
    return np.concatenate([np.linspace(-25.0, 25.0, 1_000_001), tiny, -tiny, [0.0, -0.0]])


# -- activations -----------------------------------------------------------------------------------------------

def _small_args(dtype):
    """Where the accurate tanh's error peaks (|x| < 0.4, k = 0 or 1 in its range reduction): float32 every
    seventh input from 2^-10 to 1/4, float64 two million seeded samples."""
    if dtype == "float32":
        lo, hi = (int(np.array(v, np.float32).view(np.int32)) for v in (2.0 ** -10, 0.25))
        return np.arange(lo, hi, 7, dtype=np.int32).view(np.float32)
    rng = np.random.default_rng(7)
    return np.concatenate([rng.uniform(0.0, 0.4, 1_000_000), 10 ** rng.uniform(-9, np.log10(0.4), 1_000_000)])


@pytest.mark.parametrize("dtype,bound", [("float32", 2.5), ("float64", 2.75)])
def test_accurate_tanh_ulp_bound(dtype, bound):
    # every float32 input, and 120 M float64 samples (python tools/tanh_ulp.py --f64 120): 2.46 and 2.63 ulp
    x = np.concatenate([_grid().astype(dtype), _small_args(dtype)])
    ref = np.tanh(x.astype(np.longdouble))  # 64-bit mantissa on x86: a reference for both dtypes
    ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.longdouble)
    err = np.abs(_tanh(x, dtype, 0).astype(np.longdouble) - ref) / ulp
    assert float(err.max()) <= bound


@pytest.mark.parametrize("dtype", DTYPES)
def test_accurate_tanh_agrees_with_libm(dtype):
    x = _grid().astype(dtype)
    ref = np.tanh(x)
    assert np.all(np.abs(_tanh(x, dtype, 0) - ref) <= 3 * np.spacing(np.abs(ref)))


@pytest.mark.parametrize("dtype,bound", [("float32", 4e-7), ("float64", 2.5e-8)])
def test_fast_tanh_error_bound(dtype, bound):
    # float64: the rational's own error (2.14e-8); float32: that plus float32 rounding (3.3e-7 over every
    # input, python tools/tanh_ulp.py)
    x = np.concatenate([_grid().astype(dtype), _small_args(dtype)])
    ref = np.tanh(x.astype(np.float64))
    err = np.abs(_tanh(x, dtype, 1).astype(np.float64) - ref)
    assert err.max() <= bound
    nonzero = ref != 0
    assert (err[nonzero] / np.abs(ref[nonzero])).max() <= bound


@pytest.mark.parametrize("dtype,fast,bound", [("float64", 0, 2.3e-16), ("float32", 0, 1.2e-7),
                                              ("float64", 1, 1.1e-8), ("float32", 1, 2.4e-7)])
def test_sigmoid_through_tanh(dtype, fast, bound):
    """The kernels' sigmoid, tanh(x/2)/2 + 1/2 on pre-halved gate rows, against 1/(1 + e^-x)."""
    x = np.linspace(-40.0, 40.0, 400_001).astype(dtype)
    half = np.dtype(dtype).type(0.5)
    sig = half * _tanh(half * x, dtype, fast) + half
    ref = 1.0 / (1.0 + np.exp(-x.astype(np.longdouble)))
    assert float(np.abs(sig.astype(np.longdouble) - ref).max()) <= bound


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fast", [0, 1])
def test_tanh_saturates_is_odd_and_keeps_nan(dtype, fast):
    x = np.array([0.0, 30.0, -30.0, 1e30, -1e30, np.inf, -np.inf, np.nan], dtype=dtype)
    y = _tanh(x, dtype, fast)
    assert y[0] == 0 and np.isnan(y[7])
    if fast and dtype == "float64":
        # the clamp holds the rational's value at 9, tanh(9) to within its 2.2e-8
        np.testing.assert_allclose(y[1:7], [1, -1, 1, -1, 1, -1], rtol=0, atol=2.5e-8)
    else:
        assert list(y[1:7]) == [1, -1, 1, -1, 1, -1]
    z = np.linspace(0.01, 12, 5001).astype(dtype)
    assert np.array_equal(_tanh(-z, dtype, fast), -_tanh(z, dtype, fast))


# -- end to end against PyTorch --------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_fast_float32_agrees_with_accurate_and_torch(entry):
    model = nbrnn.load(GOLDEN / entry["file"])
    data = np.load(GOLDEN / entry["golden"])
    fast = run_golden(model, data["x"], "float32", activations="fast")
    accurate = run_golden(model, data["x"], "float32")
    assert fast.dtype == np.float32 and not np.array_equal(fast, accurate)  # the path really changed
    # the NAM goldens' slow integrator amplifies any float32 rounding (see test_goldens.py)
    atol = 1e-4 if entry["format"] == "nam" else 1e-5
    np.testing.assert_allclose(fast, accurate, rtol=0, atol=atol)
    np.testing.assert_allclose(fast, data["y32"][:, 0], rtol=0, atol=atol)


@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_fast_float64_is_within_float32_resolution_of_torch(entry):
    model = nbrnn.load(GOLDEN / entry["file"])
    data = np.load(GOLDEN / entry["golden"])
    np.testing.assert_allclose(run_golden(model, data["x"], "float64", activations="fast"), data["y64"][:, 0], rtol=0,
                               atol=1e-6)


@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_accurate_float64_is_at_rounding_level(entry):
    """Tighter than test_goldens' 1e-12: measured 1.8e-15 at most (NAM's integrator: 4.3e-14)."""
    model = nbrnn.load(GOLDEN / entry["file"])
    data = np.load(GOLDEN / entry["golden"])
    bound = 2e-13 if entry["format"] == "nam" else 1e-14
    np.testing.assert_allclose(run_golden(model, data["x"], "float64"), data["y64"][:, 0], rtol=0, atol=bound)


# -- the stack kernels against the table-driven one -------------------------------------------------------------

PLANS = [
    (44100, dict(method="naive")),
    (88200, dict(method="integer")),
    (48000, dict(method="lagrange")),  # CHAIN
    (48000, dict(method="linear", output="delayed")),  # CHAIN, delayed state passed on
    (96000, dict(method="lagrange", order=5)),  # CHAIN would need 6 taps: FIR
    (150000, dict(method="lagrange")),  # taps on delays 2..5: FIR
    (40000, dict(method="lagrange", order=2)),  # extrapolation below the trained rate
    (48000, dict(method="fir", kernel=[0.6, 0.3, 0.1])),
    (100000, dict(method="linear")),  # two taps on delays 2, 3: FIR
    (96000, dict(method="allpass")),
    (96000, dict(method="allpass", output="delayed")),
    (88200, dict(method="stn")),
]
STACKS = ["agm_lstm_l1_i1_h8_skip1.json", "agm_gru_l2_i3_h6_skip0.json", "agm_rnn_l2_i1_h5_skip1.json",
          "torch_gru5_rnn7_lstm4x3.json", "nam_lstm_l2_h5.nam"]


def _stream(model, dtype, rate, opts, channels=1, activations="accurate", specialise=True):
    plan = model.plan(rate, **opts)
    packed = engine.pack(model.network, dtype, specialise=specialise)
    return engine.Stream(packed, plan, channels, rate, model.trained_rate, activations=activations)


def _signal(model, n, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((channels, n, model.network.input_size))
    x[:, :, 0] = 0.5 * np.sin(np.arange(n) * 0.05) + 0.1 * rng.standard_normal((channels, n))
    x[:, :, 1:] = 0.3
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate,opts", PLANS, ids=[f"{p[1]['method']}-{p[0]}" for p in PLANS])
@pytest.mark.parametrize("name", STACKS)
def test_stack_kernels_match_table_driven_kernel(name, rate, opts, dtype):
    model = nbrnn.load(GOLDEN / name)
    stack = _stream(model, dtype, rate, opts)
    table = _stream(model, dtype, rate, opts, specialise=False)
    assert stack.stack is not None and table.stack is None
    x = _signal(model, 700).astype(dtype)
    # float32: the NAM goldens' slow integrator amplifies rounding (see test_goldens.py)
    atol = 1e-12 if dtype == "float64" else 1e-4 if name.endswith(".nam") else 2e-5
    a, b = stack.feed(x[:, :300]), table.feed(x[:, :300])
    np.testing.assert_allclose(stack.state, table.state, rtol=0, atol=atol)
    a = np.concatenate([a, stack.feed(x[:, 300:])], axis=1)
    b = np.concatenate([b, table.feed(x[:, 300:])], axis=1)
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unroll", [8, 2, 1])
def test_every_weight_layout_matches_table_driven_kernel(unroll, dtype, monkeypatch):
    """Weight rows read eight, two or one per pass (engine.UNROLL picks by size; forced here on small
    layers): a GRU on the size-generic kernel feeding an LSTM on a size-specialised one, so that both
    the recurrent and the input-side loops run in each layout."""
    network = _random_network([("gru", 16), ("lstm", 24), ("dense", 1)], seed=3)
    monkeypatch.setattr(engine, "UNROLL", ((1 << 40, unroll),))
    plan = make_plan(48000, 52000, method="lagrange")
    stack = engine.Stream(engine.pack(network, dtype), plan, 1, 52000, 48000)
    table = engine.Stream(engine.pack(network, dtype, specialise=False), plan, 1, 52000, 48000)
    layers = stack.stack.layers
    assert [layers[0].w_hh.shape[1], layers[1].w_ih.shape[1], layers[1].w_hh.shape[1]] == [unroll] * 3
    assert not stack.tiles[0] and stack.tiles[1]
    x = np.sin(np.arange(900).reshape(1, 900, 1) * 0.037).astype(dtype)
    atol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(stack.feed(x), table.feed(x), rtol=0, atol=atol)


def _contracting(network):
    """``network`` with its recurrent weights divided by the square root of their size: a contracting loop, so that
    the table-driven kernel's roundings stay small."""
    return dataclasses.replace(network, layers=tuple(
        dataclasses.replace(layer, weight_hh=layer.weight_hh / np.sqrt(layer.hidden_size))
        if isinstance(layer, Recurrent) else layer for layer in network.layers))


PANEL_PLANS = [(48000, dict(method="naive")), (52000, dict(method="lagrange")), (96000, dict(method="allpass")),
               (150000, dict(method="lagrange")), (96000, dict(method="stn"))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate,opts", PANEL_PLANS, ids=[f"{p[1]['method']}-{p[0]}" for p in PANEL_PLANS])
def test_panel_layout_is_bit_exact_with_one_row_per_pass(rate, opts, dtype, monkeypatch):
    """Recurrent matrices beyond engine.PANEL bytes are packed as panels of 128 bytes of gate columns, each
    summed in registers over every row: the one-row-per-pass order, so the same bits, on a size-specialised
    and a size-generic kernel, LSTM, GRU and Elman, every plan family, two channels, in two blocks."""
    network = _contracting(_random_network([("lstm", 24), ("gru", 32), ("rnn_tanh", 64), ("dense", 2)], seed=5))
    plan = make_plan(48000, rate, **opts)
    x = np.sin(np.arange(2 * 1100).reshape(2, 1100, 1) * np.array([0.037, 0.051])[:, None, None]).astype(dtype)

    def run():
        stream = engine.Stream(engine.pack(network, dtype), plan, 2, rate, 48000)
        return stream, np.concatenate([stream.feed(x[:, :500]), stream.feed(x[:, 500:])], axis=1)

    with monkeypatch.context() as m:
        m.setattr(engine, "UNROLL", ())  # the input-side matrices one row per pass in both runs
        m.setattr(engine, "PANEL", 0)
        panel, y = run()
        m.setattr(engine, "PANEL", 1 << 40)
        rows, y_rows = run()
    lanes = engine.PANEL_BYTES // np.dtype(dtype).itemsize
    assert [layer.w_hh.shape for layer in panel.stack.layers] == [(96 // lanes, 24, lanes), (96 // lanes, 32, lanes),
                                                                  (64 // lanes, 64, lanes)]
    assert all(layer.w_hh.shape[1] == 1 for layer in rows.stack.layers)
    assert panel.tiles[0] and not panel.tiles[2]
    assert np.array_equal(y, y_rows)
    assert np.array_equal(panel.state, rows.state)
    table = engine.Stream(engine.pack(network, dtype, specialise=False), plan, 2, rate, 48000)
    np.testing.assert_allclose(y, table.feed(x), rtol=0, atol=1e-12 if dtype == "float64" else 2e-5)


@pytest.mark.parametrize("cell,h,dtype,panel", [("lstm", 64, "float32", True), ("lstm", 40, "float64", True),
                                                ("gru", 72, "float32", True), ("lstm", 48, "float32", False),
                                                ("gru", 64, "float32", False), ("gru", 80, "float32", True)])
def test_large_recurrent_matrices_are_packed_as_panels(cell, h, dtype, panel):
    """By default only beyond 48 KiB (where the weights leave the L1 cache; below it eight rows per pass are
    faster); a float32 GRU of 80 units has 240 gate rows, padded to 256 for whole panels."""
    layer = engine.pack(_random_network([(cell, h), ("dense", 1)]), dtype).stack.layers[0]
    lanes = engine.PANEL_BYTES // np.dtype(dtype).itemsize
    assert (layer.w_hh.shape == (layer.bias_a.size // lanes, layer.padded, lanes)) == panel
    assert layer.w_hh.nbytes > engine.PANEL or not panel


def test_gate_rows_padded_to_whole_panels_are_bit_exact(monkeypatch):
    """A float32 GRU of 80 units (240 gate rows, padded to 256 for its panels) gives the one-row-per-pass
    result on one row per pass with its 240 rows, and the table-driven kernel's to float32 rounding."""
    network = _contracting(_random_network([("gru", 80), ("dense", 1)], seed=2))
    plan = make_plan(48000, 52000, method="lagrange")
    x = np.sin(np.arange(1200).reshape(1, 1200, 1) * 0.037).astype("float32")

    def run():
        stream = engine.Stream(engine.pack(network, "float32"), plan, 1, 52000, 48000)
        return stream, stream.feed(x)

    panel, y = run()
    with monkeypatch.context() as m:
        m.setattr(engine, "PANEL", 1 << 40)
        m.setattr(engine, "UNROLL", ())
        rows, y_rows = run()
    assert panel.stack.layers[0].w_hh.shape == (8, 80, 32) and rows.stack.layers[0].w_hh.shape == (80, 1, 240)
    assert np.array_equal(y, y_rows)
    table = engine.Stream(engine.pack(network, "float32", specialise=False), plan, 1, 52000, 48000)
    np.testing.assert_allclose(y, table.feed(x), rtol=0, atol=2e-5)


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("rate,opts", [(44100, dict(method="naive")), (48000, dict(method="lagrange")),
                                       (96000, dict(method="allpass"))])
def test_blocks_channels_and_chunks_are_bit_exact(rate, opts, activations):
    """float32, several channels, a three-layer stack processed in chunks: any split gives the one-shot result."""
    model = nbrnn.load(GOLDEN / "torch_gru5_rnn7_lstm4x3.json")
    n = 2 * engine.STACK_CHUNK + 300
    x = _signal(model, n, channels=3).astype(np.float32)
    whole = _stream(model, "float32", rate, opts, channels=3, activations=activations).feed(x)
    for block in (1, 333, engine.STACK_CHUNK, engine.STACK_CHUNK + 1):
        stream = _stream(model, "float32", rate, opts, channels=3, activations=activations)
        parts = [stream.feed(x[:, s:s + block]) for s in range(0, n, block)]
        assert np.array_equal(np.concatenate(parts, axis=1), whole), f"block size {block}"
    for c in range(3):
        alone = _stream(model, "float32", rate, opts, activations=activations).feed(x[c:c + 1])
        assert np.array_equal(alone[0], whole[c]), f"channel {c}"


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("ratio", [2, 3])
@pytest.mark.parametrize("method", ["integer", "linear", "lagrange", "allpass"])
def test_integer_ratio_fresh_state_is_bit_exact_in_float32(method, ratio, activations):
    model = nbrnn.load(GOLDEN / "agm_gru_l2_i3_h6_skip0.json")
    data = np.load(GOLDEN / "agm_gru_l2_i3_h6_skip0.npz")
    x = data["x"][:300]
    kw = dict(dtype="float32", activations=activations)
    y = model.process(x[:, 0], model.trained_rate, method="naive", cond=[x[:, 1], x[:, 2]], **kw)
    up = np.repeat(x, ratio, axis=0) * np.where(np.arange(len(x) * ratio) % ratio == 0, 1.0, 0.37)[:, None]
    y_up = model.process(up[:, 0], model.trained_rate * ratio, method=method, cond=[up[:, 1], up[:, 2]], **kw)
    assert np.array_equal(y_up[::ratio], y)


# -- kernels compiled for one hidden size, padded layouts ------------------------------------------------------

SIZED = [("lstm", 5, "float32"), ("lstm", 16, "float32"), ("lstm", 40, "float64"), ("gru", 24, "float32"),
         ("gru", 40, "float32"), ("gru", 32, "float64"), ("gru", 5, "float32"), ("gru", 12, "float32")]
SIZED_PLANS = [(48000, dict(method="naive")), (52000, dict(method="lagrange")),
               (52000, dict(method="lagrange", order=5)), (52000, dict(method="allpass")),
               (96000, dict(method="stn"))]


def _sized_run(cell, h, dtype, rate, opts, activations, channels, outputs=1, skip=0, inputs=1):
    network = dataclasses.replace(_random_network([(cell, h), ("dense", outputs)], seed=h, inputs=inputs), skip=skip)
    stream = engine.Stream(engine.pack(network, dtype), make_plan(48000, rate, **opts), channels, rate, 48000,
                           activations=activations)
    # the signal, then (conditioning inputs) slower sines
    x = np.sin(np.arange(channels * 1500)[:, None] * (0.037 / (1 + 2 * np.arange(inputs))))
    x = x.reshape(channels, 1500, inputs).astype(dtype)
    return stream, np.concatenate([stream.feed(x[:, :700]), stream.feed(x[:, 700:])], axis=1)


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("rate,opts", SIZED_PLANS, ids=[f"{p[1]['method']}-{p[0]}" for p in SIZED_PLANS])
@pytest.mark.parametrize("cell,h,dtype", SIZED, ids=[f"{c}{h}-{d}" for c, h, d in SIZED])
def test_size_specialised_kernels_are_bit_exact(cell, h, dtype, rate, opts, activations, monkeypatch):
    """A layer run on a kernel compiled for its size, a float32 LSTM of H <= 8 padded to 16 zero units,
    a float32 GRU of H <= 16 with 64 gate rows: each gives the size-generic kernel's result on the
    narrowest layout bit for bit, on one channel and on two."""
    def layout(stream):
        return stream.tiles[0], stream.stack.layers[0].w_hh.shape

    for channels in (1, 2):
        # two outputs: not the register kernel's shape (test_register_kernel_is_bit_exact), whatever the plan
        tiled, y = _sized_run(cell, h, dtype, rate, opts, activations, channels, outputs=2)
        with monkeypatch.context() as m:
            m.setattr(engine, "TILED", {})
            m.setattr(engine, "MIN_PADDED", {})
            m.setattr(engine, "MIN_GATES", {})
            generic, y_generic = _sized_run(cell, h, dtype, rate, opts, activations, channels, outputs=2)
        assert not generic.tiles[0]
        assert layout(tiled) != layout(generic), "this case must run on a specialised kernel or layout"
        assert np.array_equal(y, y_generic), f"{channels} channel(s)"
        assert np.array_equal(tiled.state, generic.state)


SMALL_PLANS = [(48000, dict(method="naive")), (52000, dict(method="lagrange")),
               (52000, dict(method="linear", output="delayed")), (44000, dict(method="lagrange", order=2)),
               (96000, dict(method="allpass"))]  # the last one is not the register kernel's: it must not take it


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("rate,opts", SMALL_PLANS, ids=[f"{p[1]['method']}-{p[0]}" for p in SMALL_PLANS])
@pytest.mark.parametrize("cell,h,dtype", [("lstm", 5, "float32"), ("lstm", 8, "float64"), ("lstm", 12, "float32"),
                                          ("lstm", 3, "float64"), ("gru", 7, "float32"), ("gru", 16, "float64"),
                                          ("lstm", 32, "float32"), ("gru", 27, "float32"), ("lstm", 14, "float64"),
                                          ("gru", 11, "float64"), ("gru", 13, "float32"), ("gru", 6, "float64")])
def test_register_kernel_is_bit_exact(cell, h, dtype, rate, opts, activations, monkeypatch):
    """A single small LSTM or GRU with its state in SIMD registers (plain, CHAIN plans) gives the generic
    kernel's result bit for bit, on one channel and on two, fed in two blocks, and leaves the same state."""
    _check_register_kernel(cell, h, dtype, rate, opts, activations, 1, monkeypatch)


REGISTERS = (_kernels.lstm_small, _kernels.lstm_small_channels, _kernels.gru_small, _kernels.gru_small_channels)


def _check_register_kernel(cell, h, dtype, rate, opts, activations, inputs, monkeypatch):
    for channels, skip in ((1, 1), (2, 0)):
        small, y = _sized_run(cell, h, dtype, rate, opts, activations, channels, skip=skip, inputs=inputs)
        with monkeypatch.context() as m:
            m.setattr(engine, "SMALL", {})
            generic, y_generic = _sized_run(cell, h, dtype, rate, opts, activations, channels, skip=skip,
                                            inputs=inputs)
        assert (small.entries[0] in REGISTERS) == (opts["method"] != "allpass")
        assert generic.entries[0] not in REGISTERS
        assert np.array_equal(y, y_generic), f"{channels} channel(s)"
        assert np.array_equal(small.state, generic.state)


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("rate,opts", SMALL_PLANS[:2] + SMALL_PLANS[-1:],
                         ids=[f"{p[1]['method']}-{p[0]}" for p in SMALL_PLANS[:2] + SMALL_PLANS[-1:]])
@pytest.mark.parametrize("cell,h,dtype,inputs", [("lstm", 8, "float32", 2), ("lstm", 32, "float32", 3),
                                                 ("gru", 12, "float32", 3), ("lstm", 16, "float64", 2),
                                                 ("gru", 16, "float64", 7), ("gru", 8, "float32", 2)])
def test_register_kernel_takes_conditioning_inputs(cell, h, dtype, inputs, rate, opts, activations, monkeypatch):
    """Two to seven inputs (the signal and conditioning values): the register kernel's extra multiply-adds
    give the generic kernel's bits."""
    _check_register_kernel(cell, h, dtype, rate, opts, activations, inputs, monkeypatch)


@pytest.mark.parametrize("cell,h,dtype,activations", [("lstm", 8, "float32", "fast"), ("lstm", 12, "float64", "fast"),
                                                     ("gru", 16, "float64", "accurate")])
def test_register_kernel_takes_eight_inputs(cell, h, dtype, activations, monkeypatch):
    """Eight inputs are read eight rows per pass (a tree, not a chain): the register kernel mirrors it."""
    for rate, opts in SMALL_PLANS[:2]:
        _check_register_kernel(cell, h, dtype, rate, opts, activations, 8, monkeypatch)


def test_register_kernel_not_for_nine_inputs():
    stream, _ = _sized_run("lstm", 8, "float32", 52000, dict(method="lagrange"), "fast", 1, inputs=9)
    assert stream.entries[0] not in REGISTERS and stream.entries[0] is _kernels.lstm_filtered


TAIL_NETWORKS = {
    # RTNeural's gru test model: a dense layer with a sigmoid behind the GRU, then a linear one
    "gru-sigmoid-tail": ([("gru", 8), ("dense_sigmoid", 8), ("dense", 1)], 1, 1, "float32"),
    # RTNeural's lstm test model: eight inputs into the LSTM (from a dense layer in front), a linear head
    "dense-lstm": ([("dense_tanh", 8), ("lstm", 8), ("dense", 1)], 1, 0, "float64"),
    # a head with an activation and two outputs, a skip, conditioning inputs
    "lstm-two-outputs": ([("lstm", 30), ("dense_tanh", 3), ("dense", 2)], 2, 1, "float32"),
}


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("rate,opts", SMALL_PLANS[:2], ids=[f"{p[1]['method']}-{p[0]}" for p in SMALL_PLANS[:2]])
@pytest.mark.parametrize("name", sorted(TAIL_NETWORKS))
def test_register_kernel_with_dense_layers_behind_is_bit_exact(name, rate, opts, activations, monkeypatch):
    """A single small layer with dense layers behind (they take its states, in block passes) or eight inputs
    runs on the register kernel, and gives the generic kernel's bits, on one channel and on two, in blocks."""
    layers, inputs, skip, dtype = TAIL_NETWORKS[name]
    network = dataclasses.replace(_random_network(layers, seed=4, inputs=inputs), skip=skip)
    plan = make_plan(48000, rate, **opts)
    n = engine.PASS_CHUNK + 900
    for channels in (1, 2):
        x = np.sin(np.arange(channels * n * inputs).reshape(channels, n, inputs) * 0.037).astype(dtype)

        def run():
            stream = engine.Stream(engine.pack(network, dtype), plan, channels, rate, 48000, activations=activations)
            return stream, np.concatenate([stream.feed(x[:, :777]), stream.feed(x[:, 777:])], axis=1)

        small, y = run()
        with monkeypatch.context() as m:
            m.setattr(engine, "SMALL", {})
            generic, y_generic = run()
        assert small.entries[0] in REGISTERS and generic.entries[0] not in REGISTERS
        assert np.array_equal(y, y_generic), f"{channels} channel(s)"
        assert np.array_equal(small.state, generic.state)


def test_fresh_compile_gives_the_cached_result():
    """Every multiply-add is written out (no fusion left to the optimiser): a kernel compiled afresh in
    another process gives the bits of the one this process uses (cached or compiled here)."""
    case = ("lstm", 16, "float32", 52000, dict(method="lagrange"), "accurate", 1)
    here = _sized_run(*case)[1]
    code = ("from test_fast_paths import _sized_run\n"
            "sys.stdout.write(_sized_run(*%r)[1].tobytes().hex())\n") % (case,)
    out = run_fresh(code, NBRNN_NUMBA_CACHE="0")
    fresh = np.frombuffer(bytes.fromhex(out.strip()), dtype=here.dtype).reshape(here.shape)
    assert np.array_equal(fresh, here)


_CACHES = """
import importlib, pkgutil
import nbrnn
from numba.core.dispatcher import Dispatcher
caches = {}
for info in pkgutil.walk_packages(nbrnn.__path__, "nbrnn."):
    if info.name.startswith("nbrnn.figures") or info.name == "nbrnn.__main__":
        continue  # plotting and job scheduling, and the command line: no kernels
    for name, obj in vars(importlib.import_module(info.name)).items():
        if isinstance(obj, Dispatcher) and obj.py_func.__module__ == info.name:
            caches[info.name + "." + name] = type(obj._cache).__name__ != "NullCache"
print(sorted(k for k, cached in caches.items() if cached))
"""


def test_the_on_disk_cache_can_be_switched_off_for_every_kernel():
    """NBRNN_NUMBA_CACHE=0 leaves every compiled function of the package without Numba's on-disk cache (the
    diode clipper's integrator ignored it once); by default the functions called from Python use it."""
    cached = eval(run_fresh(_CACHES))
    for name in ("nbrnn._kernels.lstm_small", "nbrnn._kernels.run_network", "nbrnn._checks.count_beyond",
                 "nbrnn.circuit._trapezoidal_diode_clipper"):
        assert name in cached
    assert eval(run_fresh(_CACHES, NBRNN_NUMBA_CACHE="0")) == []


# -- dispatch --------------------------------------------------------------------------------------------------

def _random_network(layers, seed=0, inputs=1):
    rng = np.random.default_rng(seed)
    out, width = [], inputs
    for kind, size in layers:
        if kind.startswith("dense"):  # "dense" (linear) or "dense_<activation>"
            activation = kind.partition("_")[2] or "linear"
            out.append(Dense(rng.normal(0, 0.5, (size, width)), rng.normal(0, 0.1, size), activation))
        else:
            g = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}[kind]
            out.append(Recurrent(kind, rng.normal(0, 0.5, (g * size, width)), rng.normal(0, 0.3, (g * size, size)),
                                 rng.normal(0, 0.1, g * size), rng.normal(0, 0.1, g * size)))
        width = size
    return Network(tuple(out), trained_rate=48000.0)


@pytest.mark.parametrize("layers,is_stack", [
    ([("lstm", 8), ("dense", 1)], True),
    ([("gru", 12), ("lstm", 5), ("dense", 2)], True),
    ([("rnn_relu", 4)], True),  # no head: the state itself is the output
    ([("dense", 4), ("gru", 6), ("dense", 1)], True),  # time-distributed dense in front: a block pass
    ([("lstm", 6), ("dense_tanh", 1)], True),  # head with an activation: a block pass after the layer
    ([("lstm", 6), ("dense", 3), ("dense", 1)], True),  # two dense layers behind
    ([("dense_tanh", 6), ("dense", 1)], False),  # no recurrent layer
])
def test_dispatch_stack_or_table(layers, is_stack):
    network = _random_network(layers)
    assert engine.is_stack(network) is is_stack
    packed = engine.pack(network, "float32")
    assert (packed.stack is not None) is is_stack
    model = nbrnn.Model(network)
    x = np.sin(np.arange(600) * 0.05)
    for activations in ("accurate", "fast"):
        y = model.process(x, 52000, dtype="float64", activations=activations)
        assert y.shape[0] == 600 and np.all(np.isfinite(y))
    if is_stack:
        generic = engine.Stream(engine.pack(network, "float64", specialise=False), model.plan(52000), 1, 52000,
                                48000).feed(model.inputs(x))
        np.testing.assert_allclose(model.process(x, 52000).reshape(generic.shape[1:]), generic[0], rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("rate,opts,mode", [
    (48000, dict(method="naive"), _kernels.MODE_UNIT),
    (96000, dict(method="integer"), _kernels.MODE_UNIT),
    (96000, dict(method="lagrange"), _kernels.MODE_UNIT),  # an integer ratio: one tap of weight 1
    (52000, dict(method="lagrange"), _kernels.MODE_CHAIN),
    (52000, dict(method="linear"), _kernels.MODE_CHAIN),
    (52000, dict(method="lagrange", order=5), _kernels.MODE_FIR),
    (200000, dict(method="lagrange"), _kernels.MODE_FIR),
    (52000, dict(method="allpass"), _kernels.MODE_ALLPASS),
    (52000, dict(method="stn"), _kernels.MODE_STN),
])
def test_plan_modes(rate, opts, mode):
    network = _random_network([("lstm", 8), ("dense", 1)])
    stream = engine.Stream(engine.pack(network, "float32"), make_plan(48000, rate, **opts), 1, rate, 48000)
    assert stream.mode == mode


def test_reset_to_a_given_state_continues_the_run():
    model = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")
    x = _signal(model, 900)
    other = _stream(model, "float64", 44100, dict(method="naive"))
    other.feed(x[:, :500])
    state = other.state
    a = _stream(model, "float64", 44100, dict(method="naive"))
    a.reset(state)
    np.testing.assert_array_equal(a.state, state)
    np.testing.assert_array_equal(a.feed(x[:, 500:]), other.feed(x[:, 500:]))


def test_divergence_is_reported():
    rng = np.random.default_rng(3)
    h = 8
    rec = Recurrent("rnn_relu", rng.normal(0, 1, (h, 1)), 3 * np.eye(h), np.zeros(h), np.zeros(h))
    model = nbrnn.Model(Network((rec, Dense(np.ones((1, h)), [0.0])), trained_rate=48000.0))
    for activations in ("accurate", "fast"):
        with pytest.raises(nbrnn.UnstableError):
            model.process(np.ones(2000), 52000, activations=activations)


# -- dense layers around and between the recurrent layers ------------------------------------------------------

DENSE_NETWORKS = {
    # KlonCentaur's shape: a dense layer in front of a GRU of 8, on the register kernel
    "front": ([("dense_tanh", 4), ("gru", 8), ("dense", 1)], 3, 1),
    # every activation, between the recurrent layers and behind them, and a skip
    "between": ([("dense_relu", 6), ("lstm", 7), ("dense_sigmoid", 5), ("gru", 9), ("dense_elu", 3),
                 ("dense_softmax", 4), ("dense", 2)], 2, 0),
    "tail": ([("lstm", 12), ("dense_selu", 5), ("dense_softplus", 3), ("dense_gelu", 2)], 1, 1),
}


DENSE_PLANS = [(48000, dict(method="naive")), (52000, dict(method="lagrange")),
               (52000, dict(method="linear", output="delayed")), (52000, dict(method="lagrange", order=5)),
               (96000, dict(method="allpass")), (88200, dict(method="stn"))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate,opts", DENSE_PLANS, ids=[f"{p[1]['method']}-{p[0]}" for p in DENSE_PLANS])
@pytest.mark.parametrize("name", sorted(DENSE_NETWORKS))
def test_dense_passes_match_table_driven_kernel(name, rate, opts, dtype):
    layers, inputs, skip = DENSE_NETWORKS[name]
    network = dataclasses.replace(_random_network(layers, seed=5, inputs=inputs), skip=skip)
    plan = make_plan(48000, rate, **opts)
    stack = engine.Stream(engine.pack(network, dtype), plan, 2, rate, 48000)
    table = engine.Stream(engine.pack(network, dtype, specialise=False), plan, 2, rate, 48000)
    assert stack.stack is not None and table.stack is None
    if name == "front" and opts["method"] in ("naive", "lagrange") and "order" not in opts:
        assert stack.entries[0] is _kernels.gru_small_channels  # plain and CHAIN
    n = engine.PASS_CHUNK + 700
    x = np.sin(np.arange(2 * n * inputs).reshape(2, n, inputs) * 0.037 + np.arange(inputs)).astype(dtype)
    atol = 1e-12 if dtype == "float64" else 2e-5
    a = np.concatenate([stack.feed(x[:, :300]), stack.feed(x[:, 300:])], axis=1)
    np.testing.assert_allclose(a, table.feed(x), rtol=0, atol=atol)
    np.testing.assert_allclose(stack.state, table.state, rtol=0, atol=atol)
    assert a.shape == (2, n, network.output_size)
    if dtype == "float64":  # the passes' arithmetic is shared with the table-driven kernel: check it independently
        np.testing.assert_allclose(a[1, :600], reference.run(network, x[1, :600], plan), rtol=0, atol=1e-12)


@pytest.mark.parametrize("activations", ["accurate", "fast"])
@pytest.mark.parametrize("name", sorted(DENSE_NETWORKS))
def test_dense_passes_are_bit_exact_in_blocks_and_channels(name, activations):
    """float32: any split into blocks (across the passes' chunks) and any channel alone give the one-shot bits."""
    layers, inputs, skip = DENSE_NETWORKS[name]
    network = dataclasses.replace(_random_network(layers, seed=6, inputs=inputs), skip=skip)
    plan = make_plan(48000, 52000, method="lagrange")

    def run(x, channels, block):
        stream = engine.Stream(engine.pack(network, "float32"), plan, channels, 52000, 48000, activations=activations)
        return np.concatenate([stream.feed(x[:, s:s + block]) for s in range(0, x.shape[1], block)], axis=1)

    n = 2 * engine.PASS_CHUNK + 300
    x = np.sin(np.arange(3 * n * inputs).reshape(3, n, inputs) * 0.041 + np.arange(inputs)).astype(np.float32)
    whole = run(x, 3, n)
    for block in (1, 333, engine.PASS_CHUNK + 1):
        assert np.array_equal(run(x[:, :2500] if block == 1 else x, 3, block), whole[:, :2500] if block == 1 else whole)
    for c in range(3):
        assert np.array_equal(run(x[c:c + 1], 1, n)[0], whole[c]), f"channel {c}"


def _chunk_bytes(stream):
    """Bytes of a stream's chunk buffers: the states passed on, the dense passes' outputs and their scratch."""
    passes = [buffer for stages in (*stream.before, stream.tail) for _, buffer in stages]
    return sum(a.nbytes for a in (*stream.seq, *passes, stream.transposed))


def test_wide_layers_and_many_channels_get_shorter_chunks():
    """The chunk buffers grew as channels x 4096 x width: five dense layers of 256 in front of a GRU on eight
    channels asked for 380 MB (a stack of 200 such layers, 13 GB); now they stay within CHUNK_BYTES."""
    network = _random_network([("dense_tanh", 256)] * 5 + [("gru", 8), ("dense", 1)], seed=3)
    plan = make_plan(48000, 48000, method="naive")
    stream = engine.Stream(engine.pack(network, "float64"), plan, 8, 48000, 48000)
    assert engine.MIN_CHUNK <= stream.chunk < engine.PASS_CHUNK
    assert 0.5 * engine.CHUNK_BYTES < _chunk_bytes(stream) <= engine.CHUNK_BYTES
    small = engine.Stream(engine.pack(network, "float64"), plan, 1, 48000, 48000)  # one channel: the full chunk
    assert small.chunk == engine.PASS_CHUNK


@pytest.mark.parametrize("name", ["three layers", *sorted(DENSE_NETWORKS)])
def test_short_chunks_give_the_same_bits(name, monkeypatch):
    """float32: a stream whose chunks CHUNK_BYTES cut short gives the bits of the full chunks."""
    if name == "three layers":
        layers, inputs, skip = [("gru", 5), ("rnn_tanh", 7), ("lstm", 4), ("dense", 3)], 1, 0
    else:
        layers, inputs, skip = DENSE_NETWORKS[name]
    network = dataclasses.replace(_random_network(layers, seed=7, inputs=inputs), skip=skip)
    plan = make_plan(48000, 52000, method="lagrange")
    x = np.sin(np.arange(2 * 2500 * inputs).reshape(2, 2500, inputs) * 0.043 + np.arange(inputs)).astype(np.float32)
    full = engine.Stream(engine.pack(network, "float32"), plan, 2, 52000, 48000)
    monkeypatch.setattr(engine, "CHUNK_BYTES", 1)
    short = engine.Stream(engine.pack(network, "float32"), plan, 2, 52000, 48000)
    assert short.chunk == engine.MIN_CHUNK < full.chunk
    assert np.array_equal(short.feed(x[:, :777]), full.feed(x[:, :777]))
    assert np.array_equal(short.feed(x[:, 777:]), full.feed(x[:, 777:]))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_table_driven_sigmoid_of_large_negative_gates_in_float32(cell):
    """Gate pre-activations below -88 overflowed exp() in float32, which the table-driven kernel's fastmath
    assumes cannot happen: the output became NaN (the KlonCentaur with knobs beyond 0..1 reached -93)."""
    network = _random_network([(cell, 4), ("dense", 1)], seed=2)
    layer = dataclasses.replace(network.layers[0], bias_ih=np.full(network.layers[0].bias_ih.shape, -100.0))
    network = dataclasses.replace(network, layers=(layer, network.layers[1]))  # every gate saturated
    plan = make_plan(48000, 48000, method="naive")
    x = np.sin(np.arange(200) * 0.05).reshape(1, 200, 1)
    y32 = engine.Stream(engine.pack(network, "float32", specialise=False), plan, 1, 48000, 48000).feed(
        x.astype(np.float32))
    y64 = engine.Stream(engine.pack(network, "float64", specialise=False), plan, 1, 48000, 48000).feed(x)
    np.testing.assert_allclose(y32, y64, rtol=0, atol=1e-5)
