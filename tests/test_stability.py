"""The linear stability prediction against the adapted engine itself."""

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN
from nbrnn import stability

CASES = [(44100, "naive", {}), (96000, "allpass", {}), (88200, "stn", {}), (48000, "lagrange", {}),
         (66150, "fir", {"kernel": [3.0, -3.0, 1.0]}), (20000, "lagrange", {"order": 5}),
         (11025, "lagrange", {"order": 3})]


def _growth(model, stream, state) -> float:
    """How fast a 1e-6 disturbance of the fed-back ``state`` grows per sample on silence (samples 20-60)."""
    stream.reset(state=(state + 1e-6 * np.random.default_rng(0).standard_normal(state.size))[None, :])
    norms = []
    for _ in range(60):
        stream.feed(model.inputs(np.zeros(1)))
        norms.append(np.linalg.norm(stream.state[0] - state))
    return float(np.exp(np.polyfit(np.arange(20, 60), np.log(norms[20:60]), 1)[0]))


@pytest.mark.parametrize("rate,method,opts", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_spectral_radius_predicts_growth_of_a_small_perturbation(rate, method, opts):
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    radius = stability.spectral_radius(model, rate, method, **opts)
    growth = _growth(model, model.stream(rate, method=method, **opts), stability.fixed_point(model))
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


@pytest.mark.parametrize("kernel", [[1.3], [0.7, 0.2], [1.2]])
def test_a_kernel_not_summing_to_1_is_linearised_at_its_own_fixed_point(kernel):
    """Taps summing to g ≠ 1 feed back g times the state: the adapted loop settles elsewhere than the plain
    model, and its Jacobian there is another (kernel [1.3]: ρ 0.957 at the plain model's fixed point, 0.983 at
    its own, against the growth measured in the engine)."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    plan = model.plan(44100, "fir", kernel=kernel)
    fixed = stability.loop_fixed_point(model, plan)
    stream = model.stream(44100, method="fir", kernel=kernel)
    stream.feed(model.inputs(np.zeros(100_000)))
    settled = stream.state[0].copy()  # the state fed back: the taps' sum times the fresh one
    np.testing.assert_allclose(sum(kernel) * fixed, settled, rtol=0, atol=1e-9)
    assert np.abs(fixed - stability.fixed_point(model)).max() > 1e-3
    radius = stability.spectral_radius(model, 44100, "fir", kernel=kernel)
    assert _growth(model, stream, settled) == pytest.approx(radius, abs=0.02)


def test_a_kernel_not_summing_to_1_that_diverges_is_flagged():
    """Kernel [1.34] was called stable (ρ = 0.987 at the plain model's fixed point); the engine diverges."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    assert stability.spectral_radius(model, 44100, "fir", kernel=[1.34]) > 1.03
    with pytest.raises(nbrnn.UnstableError):
        model.stream(44100, method="fir", kernel=[1.34]).feed(model.inputs(np.zeros(100_000)))


def test_loop_gain_of_each_plan_kind():
    model = nbrnn.load_default()
    assert stability.loop_gain(model.plan(48000 * 1.7, "lagrange")) == pytest.approx(1.0, abs=1e-14)
    assert stability.loop_gain(model.plan(96000, "allpass")) == 1.0
    assert stability.loop_gain(model.plan(96000, "stn")) == 1.0
    assert stability.loop_gain(model.plan(48000, "fir", kernel=[0.5, 0.25])) == 0.75


@pytest.mark.parametrize("jac,plan,match", [
    ([[1.0]], "lagrange", "Argument 'plan' must be a Plan .*, not str"),
    (np.array(1.0), None, r"'jac' must be a square 2-D array of real numbers, not a float64 array of shape \(\)"),
    (np.zeros((2, 3)), None, r"not a float64 array of shape \(2, 3\)"),
    ([[1.0], [1.0, 2.0]], None, "'jac' must be a square 2-D array"),
    ([["a"]], None, "not a <U1 array"),
    ([[np.nan]], None, "'jac' holds NaN/Inf"),
])
def test_loop_matrix_checks_its_arguments(jac, plan, match):
    plan = nbrnn.make_plan(1, 3, "integer") if plan is None else plan
    with pytest.raises(nbrnn.ArgumentError, match=match):
        stability.loop_matrix(jac, plan)


def test_loop_matrix_takes_a_nested_list():
    eig = np.abs(np.linalg.eigvals(stability.loop_matrix([[0.5]], nbrnn.make_plan(1, 3, "integer"))))
    np.testing.assert_allclose(eig, 0.5 ** (1 / 3), rtol=1e-12)


def test_the_public_helpers_check_their_arguments():
    """loop_gain(None) and loop_size(16, None) raised AttributeError; loop_size('a', plan) returned 'aaaa'; a
    jacobian ignored cond on a model without knobs, and returned NaN columns far out."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    plan = model.plan(48000)
    for call in (lambda: stability.loop_gain(None), lambda: stability.loop_size(16, None)):
        with pytest.raises(nbrnn.ArgumentError, match="'plan' must be a Plan"):
            call()
    for size in ("a", -1, 2.5, True):
        with pytest.raises(nbrnn.ArgumentError, match="'state_size' must be a non-negative integer"):
            stability.loop_size(size, plan)
    assert stability.loop_size(16, plan) == 16 * int(plan.depth)
    state = stability.fixed_point(model)
    with pytest.raises(nbrnn.ArgumentError, match="no conditioning inputs"):
        stability.jacobian(model, state, cond=[1.0])
    embedded = nbrnn.load_default()
    with pytest.raises(nbrnn.ArgumentError, match="'state' is too far out"), np.errstate(all="ignore"):
        stability.jacobian(embedded, np.full(stability.fixed_point(embedded).size, 1e308))
