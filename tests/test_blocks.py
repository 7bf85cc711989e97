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
    with pytest.raises(nbrnn.ArgumentError, match="reset=True"):
        model.process(np.zeros(10), 96000, reset=False)
    model.process(np.zeros(10), 48000)
    with pytest.raises(nbrnn.ArgumentError, match="sample rate, method, dtype, activations or channel count changed"):
        model.process(np.zeros(10), 48000, reset=False, activations="fast")


def test_warmup_equals_processing_silence_first():
    model = nbrnn.load(GOLDEN / "agm_gru_l3_i1_h4_skip0.json")
    x = np.sin(np.arange(300) * 0.07) * 0.4
    both = model.process(np.concatenate([np.zeros(4410), x]), 44100)
    assert np.array_equal(model.process(x, 44100, warmup=0.1), both[4410:])
    with pytest.raises(nbrnn.ArgumentError, match="warmup.*60 seconds"):
        model.process(x, 44100, warmup=-1)
