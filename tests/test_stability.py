"""The linear stability prediction against the adapted engine itself."""

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN
from nbrnn import stability

CASES = [(44100, "naive", {}), (96000, "allpass", {}), (88200, "stn", {}), (48000, "lagrange", {}),
         (66150, "fir", {"kernel": [3.0, -3.0, 1.0]}), (20000, "lagrange", {"order": 5}),
         (11025, "lagrange", {"order": 3})]


@pytest.mark.parametrize("rate,method,opts", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_spectral_radius_predicts_growth_of_a_small_perturbation(rate, method, opts):
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    radius = stability.spectral_radius(model, rate, method, **opts)
    s0 = stability.fixed_point(model)
    stream = model.stream(rate, method=method, **opts)
    stream.reset(state=(s0 + 1e-6 * np.random.default_rng(0).standard_normal(s0.size))[None, :])
    norms = []
    for _ in range(60):
        stream.feed(model.inputs(np.zeros(1)))
        norms.append(np.linalg.norm(stream.state[0] - s0))
    growth = float(np.exp(np.polyfit(np.arange(20, 60), np.log(norms[20:60]), 1)[0]))
    assert (radius < 1) == (growth < 1)
    # Measured: within 1e-4 .. 3.6e-2 (allpass at 96 kHz, whose second mode is still visible in the window; a
    # longer one reaches float64's floor around the fixed point, or the nonlinearity when the loop grows).
    assert growth == pytest.approx(radius, abs=0.05)


def test_unstable_plans_are_flagged():
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    assert stability.spectral_radius(model, 44100, "naive") < 1
    assert stability.spectral_radius(model, 66150, "fir", kernel=[3.0, -3.0, 1.0]) > 1


def test_loop_matrix_for_integer_delay_is_a_companion_of_j():
    jac = np.array([[0.5]])
    plan = nbrnn.make_plan(1, 3, "integer")
    eig = np.abs(np.linalg.eigvals(stability.loop_matrix(jac, plan)))
    np.testing.assert_allclose(eig, 0.5 ** (1 / 3), rtol=1e-12)  # z^3 = 0.5


@pytest.mark.parametrize("rate,method,opts,rows", [(48000, "fir", {"kernel": np.ones(65536) / 65536}, 1048576),
                                                    (48000 * 1000, "lagrange", {}, 16032)])
def test_loops_too_large_to_analyse_are_refused_before_they_are_built(rate, method, opts, rows):
    model = nbrnn.load_default()  # 16 state values
    with pytest.raises(nbrnn.ArgumentError, match=f"{rows} x {rows} matrix; the stability analysis takes at most "
                                                  f"{stability.MAX_LOOP_SIZE} rows"):
        stability.spectral_radius(model, rate, method, **opts)
    plan = model.plan(rate, method, **opts)
    with pytest.raises(nbrnn.ArgumentError, match=f"{rows} x {rows} matrix"):
        stability.loop_matrix(np.zeros((16, 16)), plan)
    assert stability.loop_size(16, model.plan(48000 * 200, "lagrange")) == 16 * 202 <= stability.MAX_LOOP_SIZE


def test_a_network_without_recurrent_layers_has_no_loop():
    model = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[0.5]], [0.1], "tanh"),)))
    assert stability.spectral_radius(model, 96000) == 0.0
