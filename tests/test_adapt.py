"""Sample-rate adaptation: plan design (check numbers of docs/methods.md) and the adapted engine."""

import ast
import gzip
import re

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, run_fresh
from nbrnn.adapt import allpass_coefficient, lagrange_weights, make_plan
from nbrnn.stability import spectral_radius

R_UP = 48000 / 44100
R_UP2 = 96000 / 44100
R_DOWN = 44100 / 48000


@pytest.mark.parametrize("ratio,expected", [
    (R_UP, [0.845574, 0.246100, -0.117357, 0.025683]),
    (R_UP2, [-0.044237, 0.883048, 0.189746, -0.028556]),
    (R_DOWN, [1.155649, -0.260522, 0.135346, -0.030474]),
])
def test_cubic_lagrange_check_numbers(ratio, expected):
    plan = make_plan(44100, 44100 * ratio, "lagrange", order=3)
    np.testing.assert_allclose(plan.tap_weight, expected, atol=5e-7)
    assert plan.tap_delay.tolist() == [1, 2, 3, 4]


def test_allpass_check_numbers():
    assert allpass_coefficient(R_UP - 1) == pytest.approx(0.837500, abs=5e-7)
    assert allpass_coefficient(R_UP2 - 2) == pytest.approx(0.699422, abs=5e-7)
    plan = make_plan(44100, 96000, "allpass")
    assert plan.tap_delay.tolist() == [2] and plan.tap_weight[0] == pytest.approx(0.699422, abs=5e-7)


def test_lagrange_weights_interpolate_polynomials_exactly():
    for order in range(1, 8):
        for delta in (-0.3, 0.0884, 1.5, order - 0.2):
            w = lagrange_weights(delta, order)
            for p in range(order + 1):
                assert np.dot(w, np.arange(order + 1) ** p) == pytest.approx(delta ** p, abs=1e-9)


@pytest.mark.parametrize("ratio", [1, 2, 3, 5])
def test_integer_ratio_all_delay_methods_equal_integer_delay(ratio):
    base = make_plan(1, ratio, "integer")
    for method, kw in [("linear", {}), ("lagrange", {"order": 3}), ("lagrange", {"order": 1}), ("allpass", {}),
                       ("lagrange", {"order": 4, "placement": "centred"})]:
        plan = make_plan(1, ratio, method, **kw)
        # the same state is read: weight 1 on delay R, 0 elsewhere
        weights = dict(zip(plan.tap_delay.tolist(), plan.tap_weight.tolist()))
        assert weights.get(ratio) == pytest.approx(1.0, abs=1e-15), (method, kw)
        assert sum(abs(v) for d, v in weights.items() if d != ratio) < 1e-14, (method, kw)
    assert base.tap_delay.tolist() == [ratio]


@pytest.mark.parametrize("name", ["agm_lstm_l3_i3_h5_skip1.json", "agm_gru_l2_i3_h6_skip0.json",
                                  "agm_rnn_l2_i1_h5_skip1.json", "agm_lstm_l1_i1_h8_skip1.json",
                                  "torch_gru5_rnn7_lstm4x3.json"])
@pytest.mark.parametrize("ratio", [2, 3])
@pytest.mark.parametrize("method", ["integer", "linear", "lagrange", "allpass"])
def test_integer_ratio_fresh_state_is_bit_exact(name, ratio, method):
    model = nbrnn.load(GOLDEN / name)
    data = np.load(GOLDEN / name.replace(".json", ".npz"))
    x = data["x"][:400]
    cond = [x[:, i] for i in range(1, x.shape[1])] or None
    y = model.process(x[:, 0], model.trained_rate, method="naive", cond=cond)
    # the same samples at R times the rate: x'[R i] = x[i], anything in between
    up = np.repeat(x, ratio, axis=0) * np.where(np.arange(len(x) * ratio) % ratio == 0, 1.0, 0.37)[:, None]
    cond_up = [up[:, i] for i in range(1, up.shape[1])] or None
    y_up = model.process(up[:, 0], model.trained_rate * ratio, method=method, cond=cond_up)
    assert np.array_equal(y_up[::ratio], y)


def _ref(path):
    head = gzip.open(path, "rt").readline()
    return head, np.loadtxt(path)


def test_rtneural_sample_rate_correction_references(shared):
    files = sorted((shared / "reference/rtneural-sr").glob("*.csv.gz"))
    assert len(files) == 10
    for path in files:
        head, y = _ref(path)
        cell = "lstm_1d" if "lstm" in path.name else "gru_1d"
        model = nbrnn.load(shared / f"models/keras/rtneural_{cell}.json", trained_rate=48000)
        fs = float(re.search(r" fs=(\d+)", head).group(1))
        mode = re.search(r"mode=(\w+)", head).group(1)
        method = {"LinInterp": "linear", "NoInterp": "integer", "None": "naive"}[mode]
        x = np.sin(600 * np.arange(len(y)) / fs)
        out = model.process(x, fs, method=method, output="delayed")
        np.testing.assert_allclose(out, y, rtol=0, atol=1e-12, err_msg=path.name)


def test_article_references(shared):
    files = sorted((shared / "reference/article").glob("*.csv.gz"))
    assert len(files) == 4
    model = nbrnn.load(shared / "models/article/metal_face_lstm28_96k.json", trained_rate=96000)
    for path in files:
        head, y = _ref(path)
        fs = float(re.search(r" fs=(\d+)", head).group(1))
        x = np.sin(2 * np.pi * 100 * np.arange(len(y)) / fs)
        method = "naive" if "uncorrected" in path.name else "linear"
        out = model.process(x, fs, method=method, output="delayed")
        np.testing.assert_allclose(out, y, rtol=0, atol=1e-12, err_msg=path.name)


def test_delayed_output_lags_by_r_minus_one_at_integer_ratio():
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    x = np.sin(np.arange(300) * 0.1) * 0.5
    y = model.process(x, 44100, method="naive")
    up = np.repeat(x, 3)
    y3 = model.process(up, 44100 * 3, method="integer", output="delayed")
    np.testing.assert_array_equal(y3[2::3] - up[2::3], y - x)  # skip path adds the current input


RATIOS = [0.25, 0.5, 0.9, 1, 1.0884, 1.5, 2, 2.1769, 3.7, 8, 16]
ALL_METHODS = [("naive", {}), ("integer", {}), ("linear", {}), ("lagrange", {"order": 1}),
               ("lagrange", {"order": 3}), ("lagrange", {"order": 5, "placement": "centred"}), ("allpass", {}),
               ("fir", {"kernel": [0.5, 0.5]}), ("minimax", {"order": 3}), ("stn", {}), ("oversample", {}),
               ("resample", {}), ("resample", {"resampler": "fft"})]


def run_grid(model_path, n=600):
    """Every method at every ratio: finite output or a clear refusal (an ArgumentError / UnstableError)."""
    model = nbrnn.load(model_path)
    outcomes = {}
    for ratio in RATIOS:
        # 1.0884 and 2.1769 stand for 48 and 96 kHz over 44.1 kHz: use the exact rates
        rate = {1.0884: 48000.0 / 44100.0, 2.1769: 96000.0 / 44100.0}.get(ratio, ratio) * model.trained_rate
        x = 0.4 * np.sin(2 * np.pi * 220 * np.arange(int(n * ratio)) / rate)
        for method, kw in ALL_METHODS:
            try:
                y = model.process(x, rate, method=method, cond=[0.5] * len(model.conditioning_names), **kw)
                assert y.shape == x.shape and np.all(np.isfinite(y))
                outcomes[(ratio, method, str(kw))] = "ok"
            except (nbrnn.ArgumentError, nbrnn.UnstableError) as exc:
                assert str(exc)
                outcomes[(ratio, method, str(kw))] = type(exc).__name__
    return outcomes


CENTRED5 = str({"order": 5, "placement": "centred"})


def test_every_method_every_ratio_finite_or_refused():
    path = GOLDEN / "agm_lstm_l1_i1_h8_skip1.json"
    outcomes = run_grid(path)
    # below the trained rate linear and allpass refuse; every other plan runs, or diverges and says so
    refused = {k for k, v in outcomes.items() if v == "ArgumentError"}
    assert refused == {(r, m, "{}") for r in (0.25, 0.5, 0.9) for m in ("linear", "allpass")}
    diverged = {k for k, v in outcomes.items() if v == "UnstableError"}
    assert diverged == {(3.7, "lagrange", str({"order": 1})), (0.25, "stn", "{}"),
                        (0.25, "lagrange", CENTRED5), (0.5, "lagrange", CENTRED5), (1.5, "lagrange", CENTRED5)}
    # each of them is a loop the linearisation calls unstable; the output of some (an LSTM's h = o·tanh(c)
    # saturates) stays finite while the state grows without bound, so only the state check catches them
    model = nbrnn.load(path)
    for ratio, method, kw in diverged:
        assert spectral_radius(model, ratio * model.trained_rate, method, **ast.literal_eval(kw)) > 1.1


def test_grid_with_numba_bounds_checking(tmp_path):
    """The same grid in a fresh process with Numba's bounds checks on: no out-of-range read anywhere."""
    path = str(GOLDEN / "agm_gru_l2_i3_h6_skip0.json")
    code = (
        "from test_adapt import run_grid\n"
        "print(sorted(run_grid(%r, n=200).items()))\n"
    ) % path
    out = run_fresh(code, NUMBA_BOUNDSCHECK="1", NBRNN_NUMBA_CACHE="0", NUMBA_NUM_THREADS="1")
    expected = sorted(run_grid(path, n=200).items())
    assert out.strip().splitlines()[-1] == str(expected)
    # 6 refusals below R = 1 (linear, allpass), and the fastest-diverging plan
    assert sum(v == "ok" for _, v in expected) == len(RATIOS) * len(ALL_METHODS) - 7


def test_refusals_say_what_to_use_instead():
    with pytest.raises(nbrnn.ArgumentError, match="lagrange.*oversample.*resample"):
        make_plan(48000, 44100, "linear")
    with pytest.raises(nbrnn.ArgumentError, match="allpass.*>= 1"):
        make_plan(48000, 44100, "allpass")
    with pytest.raises(nbrnn.ArgumentError, match="order.*1 to 64.*0"):
        make_plan(44100, 48000, "lagrange", order=0)
    with pytest.raises(nbrnn.ArgumentError, match="method.*one of"):
        make_plan(44100, 48000, "cubicspline")
    with pytest.raises(nbrnn.ArgumentError, match="'order' applies"):
        make_plan(44100, 48000, "allpass", order=3)
    with pytest.raises(nbrnn.ArgumentError, match="kernel"):
        make_plan(44100, 48000, "fir")
    with pytest.raises(nbrnn.ArgumentError, match="sample_rate.*1 Hz to 100 MHz, not -48000"):
        make_plan(44100, -48000, "naive")


def test_cubic_alias_and_oversample_factor():
    assert make_plan(44100, 48000, "cubic").tap_weight.size == 4
    plan = make_plan(48000, 20000, "oversample")
    assert plan.oversample == 3 and plan.ratio == pytest.approx(1.25)
    inner = make_plan(48000, 44100, "oversample", inner="lagrange", inner_order=5, factor=4)
    assert inner.oversample == 4 and inner.tap_weight.size == 6 and inner.ratio == pytest.approx(3.675)
    assert make_plan(48000, 44100, "oversample", inner="apdl").kind == make_plan(48000, 88200, "allpass").kind


@pytest.mark.parametrize("method, option, value", [
    ("allpass", "placement", "paper"), ("linear", "placement", "centred"), ("minimax", "placement", "paper"),
    ("lagrange", "bandwidth", 0.5), ("lagrange", "inner", "allpass"), ("lagrange", "factor", 2),
    ("resample", "inner_order", 3), ("oversample", "resampler", "fft"), ("lagrange", "resampler", "polyphase"),
    ("stn", "order", 1), ("naive", "kernel", [1.0]),
])
def test_options_for_another_method_are_refused_not_ignored(method, option, value):
    with pytest.raises(nbrnn.ArgumentError, match=f"'{option}' applies to method.*not to '{method}'"):
        make_plan(44100, 48000, method, **{option: value})


def test_inner_order_needs_an_inner_method_with_an_order():
    with pytest.raises(nbrnn.ArgumentError, match="'inner_order' applies to inner methods.*'allpass'"):
        make_plan(48000, 44100, "oversample", inner="allpass", inner_order=3)
    for inner in (None, "minimax"):  # the message named 'order', which the caller had not given
        with pytest.raises(nbrnn.ArgumentError, match="'inner_order' of method '(lagrange|minimax)'.*not 99"):
            make_plan(48000, 44100, "oversample", inner=inner, inner_order=99)


def test_resample_baseline_is_close_to_the_model_at_its_rate():
    """Running at 2x through the resample baseline reproduces the plain model (band-limited input)."""
    from scipy.signal import resample_poly

    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    n = 4000
    x = 0.4 * np.sin(2 * np.pi * 300 * np.arange(n) / 44100)
    y = model.process(x, 44100, method="naive")
    y2 = model.process(resample_poly(x, 2, 1), 88200, method="resample")
    back = resample_poly(y2, 1, 2)
    err = back[200:-200] - y[200:-200]
    # 85 dB measured; running the model unadapted (naive) at 2x gives 34 dB
    assert 10 * np.log10(np.sum(y[200:-200] ** 2) / np.sum(err ** 2)) > 70


@pytest.mark.parametrize("method", ["resample", "oversample"])
def test_half_the_trained_rate_through_the_resampling_wrappers(method):
    """At 22.05 kHz both run the model at its 44.1 kHz (oversample: L = 2, inner delay exactly 1): the model's
    output at 44.1 kHz, decimated, to 79 dB (naive: 28 dB)."""
    from scipy.signal import resample_poly

    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    x = 0.4 * np.sin(2 * np.pi * 300 * np.arange(8000) / 44100)
    ref = resample_poly(model.process(x, 44100, method="naive"), 1, 2)[200:-200]
    err = model.process(resample_poly(x, 1, 2), 22050, method=method)[200:-200] - ref
    assert 10 * np.log10(np.sum(ref ** 2) / np.sum(err ** 2)) > 70


def test_plan_check_numbers_of_the_simple_methods():
    """From the definitions in docs/methods.md, worked by hand."""
    assert make_plan(44100, 96000, "stn").tap_weight[0] == pytest.approx(0.459375, abs=5e-7)  # 1/R
    for rate, delay in [(48000, 1), (70560, 2), (66150, 2), (61740, 1)]:  # round(R): R = 1.088, 1.6, 1.5, 1.4
        assert make_plan(44100, rate, "integer").tap_delay.tolist() == [delay]
    # centred placement, d0 = max(1, floor(R - (N - 1)/2)): R = 3.4, N = 3 -> delays 2..5; N = 4 -> 1..5
    assert make_plan(44100, 3.4 * 44100, "lagrange", placement="centred").tap_delay.tolist() == [2, 3, 4, 5]
    assert make_plan(44100, 3.4 * 44100, "lagrange", order=4, placement="centred").tap_delay.tolist() == [
        1, 2, 3, 4, 5]


@pytest.mark.parametrize("inner", ["allpass", "linear", "lagrange", "minimax"])
@pytest.mark.parametrize("trained,run", [(44100, 44100 / 41), (44100.0000000001, 44100)])
def test_oversampling_to_the_trained_rate_up_to_rounding_is_the_integer_delay(inner, trained, run):
    """L·R = 1 that rounds to 1 − 2e-16 was refused by allpass and linear ('needs R >= 1, not 1') and made
    Lagrange extrapolate with weights such as [1, −3e-16, …]."""
    plan = make_plan(trained, run, "oversample", inner=inner)
    assert plan.ratio == 1.0
    assert plan.tap_delay[np.nonzero(plan.tap_weight)].tolist() == [1]
    assert plan.tap_weight[plan.tap_delay == 1].tolist() == [1.0]


def test_oversample_messages_name_what_the_caller_gave():
    with pytest.raises(nbrnn.ArgumentError, match=r"Argument 'inner' must be one of naive, .*, stn \(or an alias"):
        make_plan(44100, 20000, "oversample", inner="allpas")
    with pytest.raises(nbrnn.ArgumentError, match="Argument 'inner' must be a string"):
        make_plan(44100, 20000, "oversample", inner=3)
    with pytest.raises(nbrnn.ArgumentError, match=r"oversampling by 2 would run the model at 1.2e\+08 Hz, beyond "
                                                  r"1e\+08 Hz: use method 'resample'$"):
        make_plan(1e8, 6e7, "oversample")
    with pytest.raises(nbrnn.ArgumentError, match=r"oversampling by 64 \(Argument 'factor'\) makes L\*R = 1333.33, "
                                                  r"beyond 1024"):
        make_plan(48000, 1e6, "oversample", factor=64)
    with pytest.raises(nbrnn.ArgumentError, match=r"'factor' = 2 leaves L\*R = 0.8333333333333334 < 1; use factor "
                                                  r">= 3"):
        make_plan(48000, 20000, "oversample", factor=2)


def test_cubic_takes_the_same_orders_as_lagrange():
    for method, kw in (("cubic", {"order": 3.0}), ("oversample", {"inner": "cubic", "inner_order": 3.0})):
        with pytest.raises(nbrnn.ArgumentError, match="must be an integer from 1 to 64, not 3.0"):
            make_plan(48000, 20000, method, **kw)
    assert make_plan(48000, 20000, "cubic", order=np.int64(3)).tap_weight.size == 4


def test_a_fraction_bandwidth_designs_the_kernel():
    from fractions import Fraction

    plan = make_plan(48000, 50000, "minimax", bandwidth=Fraction(1, 2))
    assert np.array_equal(plan.tap_weight, make_plan(48000, 50000, "minimax", bandwidth=0.5).tap_weight)
    assert plan.description.endswith("band 0.5)")


@pytest.mark.parametrize("method", ["linear", "allpass"])
def test_a_ratio_refused_for_being_below_1_does_not_read_as_1(method):
    with pytest.raises(nbrnn.ArgumentError, match=r">= 1, not 0.9999999979166667 \(47999.9999/48000 Hz\)"):
        make_plan(48000, 47999.9999, method)


@pytest.mark.parametrize("call,match", [
    (lambda: lagrange_weights(-0.5, -1), "'order' must be an integer from 0 to 64, not -1"),
    (lambda: lagrange_weights(0.5, 2.5), "'order' must be an integer from 0 to 64, not 2.5"),
    (lambda: lagrange_weights(float("nan"), 2), "'delta' must be a real number from -1024 to 1024, not nan"),
    (lambda: lagrange_weights(1e308, 2), "'delta' must be a real number from -1024 to 1024, not 1e\\+308"),
    (lambda: lagrange_weights("0.5", 2), "'delta' must be a real number"),
    (lambda: allpass_coefficient(-1), "'alpha' must be a real number above -1, not -1"),
    (lambda: allpass_coefficient(float("nan")), "'alpha' must be a real number above -1, not nan"),
])
def test_the_interpolator_helpers_check_their_arguments(call, match):
    with pytest.raises(nbrnn.ArgumentError, match=match):
        call()


def test_the_interpolator_helpers_take_what_the_rates_take():
    from fractions import Fraction

    np.testing.assert_allclose(lagrange_weights(Fraction(1, 3), 3), lagrange_weights(1 / 3, 3), rtol=1e-15)
    assert lagrange_weights(0.3, 0).tolist() == [1.0]
    assert allpass_coefficient(np.float32(0.5)) == pytest.approx(1 / 3)
