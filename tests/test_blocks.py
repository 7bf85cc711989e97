"""Block-size invariance: any split of a signal into blocks gives the one-shot output bit for bit."""

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN

CASES = [
    ("agm_lstm_l2_i2_h6_skip0.json", 44100, dict(method="naive")),
    ("agm_gru_l1_i1_h12_skip1.json", 48000, dict(method="lagrange", order=3)),
    ("agm_rnn_l2_i1_h5_skip1.json", 96000, dict(method="allpass")),
    ("torch_lstm8_gru6x2.json", 48000, dict(method="linear", output="delayed")),
    ("agm_lstm_l1_i1_h8_skip1.json", 40000, dict(method="lagrange", order=2)),
    ("agm_lstm_l1_i1_h8_skip1.json", 88200, dict(method="stn")),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,rate,opts", CASES, ids=[f"{c[0]}-{c[2]['method']}" for c in CASES])
def test_blocks_equal_one_shot(name, rate, opts, dtype):
    model = nbrnn.load(GOLDEN / name)
    rng = np.random.default_rng(1)
    n = 1000
    x = (0.5 * np.sin(np.arange(n) * 0.05) + 0.1 * rng.standard_normal(n))[:, None] * [1.0, -0.7]
    cond = [0.3] * len(model.conditioning_names) or None
    whole = model.process(x, rate, cond=cond, dtype=dtype, **opts)
    for block in (1, 7, 256):
        parts = []
        for start in range(0, n, block):
            parts.append(model.process(x[start:start + block], rate, cond=cond, dtype=dtype,
                                       reset=start == 0, **opts))
        assert np.array_equal(np.concatenate(parts), whole), f"block size {block}"


def test_channels_are_independent_streams():
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (500, 3))
    both = model.process(x, 48000)
    for c in range(3):
        assert np.array_equal(both[:, c], model.process(np.ascontiguousarray(x[:, c]), 48000))


def test_reset_false_rejects_a_changed_stream():
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    model.process(np.zeros(10), 48000)
    with pytest.raises(nbrnn.ArgumentError, match="but the sample rate changed; pass reset=True"):
        model.process(np.zeros(10), 96000, reset=False)
    model.process(np.zeros(10), 48000)
    with pytest.raises(nbrnn.ArgumentError, match="but the activations changed; pass reset=True"):
        model.process(np.zeros(10), 48000, reset=False, activations="fast")
    with pytest.raises(nbrnn.ArgumentError, match="but the method or its options and dtype changed"):
        model.process(np.zeros(10), 48000, reset=False, method="allpass", dtype="float32")


def test_warmup_equals_processing_silence_first():
    model = nbrnn.load(GOLDEN / "agm_gru_l3_i1_h4_skip0.json")
    x = np.sin(np.arange(300) * 0.07) * 0.4
    both = model.process(np.concatenate([np.zeros(4410), x]), 44100)
    assert np.array_equal(model.process(x, 44100, warmup=0.1), both[4410:])
    with pytest.raises(nbrnn.ArgumentError, match="warmup.*60 seconds"):
        model.process(x, 44100, warmup=-1)


KNOBS = GOLDEN / "agm_gru_l2_i3_h6_skip0.json"  # inputs audio, cond1, cond2


def _knob_inputs(x, a, b):
    """(n, 3): the columns in the network's input order, written out without nbrnn's conditioning code."""
    return np.column_stack([x, np.broadcast_to(a, x.shape), np.broadcast_to(b, x.shape)])


def test_each_knob_reaches_its_own_input():
    from nbrnn import reference

    model = nbrnn.load(KNOBS)
    x = np.sin(np.arange(400) * 0.07) * 0.4
    a, b = 0.9, np.linspace(-0.3, 0.2, 400)
    expected = reference.run(model.network, _knob_inputs(x, a, b), model.plan(44100, "naive"))[:, 0]
    for cond in ({"cond2": b, "cond1": a}, [a, b], {2: b, 1: a}, {"1": a, "cond2": b}):
        np.testing.assert_allclose(model.process(x, 44100, method="naive", cond=cond), expected, rtol=0,
                                   atol=1e-14, err_msg=str(cond))


def test_knobs_keep_their_values_during_the_warmup():
    model = nbrnn.load(KNOBS)
    x = np.sin(np.arange(300) * 0.07) * 0.4
    cond = {"cond1": 0.8, "cond2": np.linspace(-0.5, 0.5, 300)}  # warm-up: the first sample's values
    both = model.process(np.concatenate([np.zeros(4410), x]), 44100,
                         cond={"cond1": 0.8, "cond2": np.concatenate([np.full(4410, -0.5), cond["cond2"]])})
    assert np.array_equal(model.process(x, 44100, cond=cond, warmup=0.1), both[4410:])


@pytest.mark.parametrize("method", ["lagrange", "resample"])
def test_a_stream_warms_up_after_every_reset_with_the_knobs_it_is_fed(method):
    """Model.stream warms up as process does: after each reset, with the knobs at the first fed sample's values."""
    model = nbrnn.Model(nbrnn.load(KNOBS).network, warmup=0.05)
    x = np.sin(np.arange(500) * 0.07) * 0.4
    cond = [0.8, np.linspace(-0.5, 0.5, 500)]
    want = model.process(x, 40000, method=method, cond=cond)
    stream = model.stream(40000, method=method)
    inp = model.inputs(x, cond)
    for take in range(2):
        got = np.concatenate([stream.feed(inp[:, :200]), stream.feed(inp[:, 200:]), stream.finish()], axis=1)
        assert np.array_equal(got[0, :, 0], want), take
        stream.reset()
    cold = nbrnn.Model(model.network).process(x, 40000, method=method, cond=cond)
    assert np.abs(cold - want).max() > 1e-3  # the warm-up matters
    stream.reset(model.stream(40000, method=method).state)  # an explicit state is where the stream starts
    assert np.array_equal(stream.feed(inp)[0, :, 0], cold) if method == "lagrange" else True


def test_warmup_is_refused_where_a_stream_continues():
    model = nbrnn.load_default()
    model.process(np.zeros(10), 48000)
    with pytest.raises(nbrnn.ArgumentError, match=r"Argument 'warmup' \(0.5 s\) applies after a reset"):
        model.process(np.zeros(10), 48000, reset=False, warmup=0.5)


def test_masked_and_huge_knob_values():
    model = nbrnn.load(KNOBS)
    x = np.zeros(20)
    masked = np.ma.masked_array(np.full(20, 0.9), mask=True)
    with pytest.raises(nbrnn.ArgumentError, match="'cond1' is a masked array"):
        model.process(x, 44100, cond=[masked, 0.0])
    with pytest.raises(nbrnn.ArgumentError, match="beyond float32's range"):  # a number, not an 'int of object'
        model.process(x, 44100, cond=[10 ** 40, 0.0], dtype="float32")


@pytest.mark.parametrize("method", ["resample", "oversample"])
def test_reset_false_is_refused_by_the_resampling_methods(method):
    model = nbrnn.load(KNOBS)
    x = np.zeros(100)
    model.process(x, 40000, method=method, cond=[0.5, 0.5])
    with pytest.raises(nbrnn.ArgumentError, match=f"method '{method}' resamples whole signals.*Model.stream"):
        model.process(x, 40000, method=method, cond=[0.5, 0.5], reset=False)


@pytest.mark.parametrize("method", ["resample", "oversample"])
def test_time_varying_knobs_are_held_through_the_resampling_methods(method):
    """At half the trained rate (22.05 kHz) both methods run the model at 44.1 kHz, each knob value held for two
    model samples: the model at 44.1 kHz given the knob repeated, decimated, to within the filters' error."""
    from scipy.signal import resample_poly

    model = nbrnn.load(KNOBS)
    x = 0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 44100)
    slow = 0.5 + 0.4 * np.sin(2 * np.pi * 2 * np.arange(4000) / 22050)  # a 2 Hz knob sweep at 22.05 kHz
    ref = resample_poly(model.process(x, 44100, method="naive", cond=[np.repeat(slow, 2), 0.3]), 1, 2)
    y = model.process(resample_poly(x, 1, 2), 22050, method=method, cond=[slow, 0.3])
    err = y[200:-200] - ref[200:-200]
    assert 10 * np.log10(np.sum(ref[200:-200] ** 2) / np.sum(err ** 2)) > 60
    swapped = model.process(resample_poly(x, 1, 2), 22050, method=method, cond=[slow[::-1], 0.3])
    assert np.max(np.abs(swapped - y)) > 1e-3  # the knob matters


class _Buffer(np.ndarray):
    """An ndarray subclass, as an audio library's buffer type may be."""


@pytest.mark.parametrize("kind", ["ndarray", "subclass", "memmap"])
@pytest.mark.parametrize("resampler", ["fft", "polyphase"])
def test_a_stream_fed_one_refilled_buffer_equals_one_call(resampler, kind, tmp_path):
    """The fft resampler holds the blocks until finish(): it kept the caller's array, so a buffer refilled for
    every block (as an audio callback does) left only the last block's samples; then it still kept a subclass's
    or a memmap's memory, through the plain view np.ascontiguousarray makes of it."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 4000)
    stream = model.stream(40000, method="resample", resampler=resampler)
    buffer, parts = np.empty((1, 1000, 1)), []
    if kind == "subclass":
        buffer = buffer.view(_Buffer)
    elif kind == "memmap":
        buffer = np.memmap(tmp_path / "buffer", dtype=np.float64, mode="w+", shape=(1, 1000, 1))
    for k in range(4):
        buffer[0, :, 0] = x[k * 1000:(k + 1) * 1000]
        parts.append(stream.feed(buffer))
    y = np.concatenate(parts + [stream.finish()], axis=1)[0, :, 0]
    np.testing.assert_array_equal(y, model.process(x, 40000, method="resample", resampler=resampler))


@pytest.mark.parametrize("method", ["lagrange", "resample"])
def test_a_read_only_block_is_processed_as_a_writeable_one(monkeypatch, method):
    """A read-only array is another type to Numba: fed as it was, every kernel compiled again (seconds per kernel,
    and new files in the cache). The kernels now only ever see writeable arrays."""
    from nbrnn import _checks

    seen = []
    count_beyond = _checks.count_beyond
    monkeypatch.setattr(_checks, "count_beyond", lambda a, limit: seen.append(a.flags.writeable) or count_beyond(
        a, limit))
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    x = model.inputs(np.random.default_rng(2).uniform(-0.5, 0.5, 500))
    frozen = x.copy()
    frozen.setflags(write=False)
    a, b = model.stream(52000, method=method), model.stream(52000, method=method)
    np.testing.assert_array_equal(np.concatenate([a.feed(frozen), a.finish()], axis=1),
                                  np.concatenate([b.feed(x), b.finish()], axis=1))
    assert seen and all(seen)
