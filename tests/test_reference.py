"""The Numba kernels against the plain NumPy engine (nbrnn.reference), for every plan kind."""

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, golden_manifest
from nbrnn import reference

MODELS = [m["file"] for m in golden_manifest()]
PLANS = [(48000 / 44100, dict(method="lagrange", order=3)), (96000 / 44100, dict(method="allpass")),
         (1.7, dict(method="linear", output="delayed")), (0.91875, dict(method="lagrange", order=2)),
         (2.5, dict(method="stn")), (1.3, dict(method="minimax", order=4)), (1.0, dict(method="naive")),
         (3.0, dict(method="fir", kernel=[0.1, 0.2, 0.7]))]


@pytest.mark.parametrize("ratio,opts", PLANS, ids=[p[1]["method"] for p in PLANS])
@pytest.mark.parametrize("name", MODELS)
def test_kernels_match_numpy_reference(name, ratio, opts):
    model = nbrnn.load(GOLDEN / name)
    data = np.load(GOLDEN / name.replace(".json", ".npz").replace(".nam", ".npz"))
    x = data["x"][:250]
    rate = model.trained_rate * ratio
    cond = [x[:, i] for i in range(1, x.shape[1])] or None
    y = model.process(x[:, 0], rate, cond=cond, **opts)
    plan = model.plan(rate, **opts)
    ref = reference.run(model.network, x, plan)[:, 0]
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12)


def test_reference_matches_torch_golden():
    data = np.load(GOLDEN / "agm_gru_l2_i3_h6_skip0.npz")
    net = nbrnn.load(GOLDEN / "agm_gru_l2_i3_h6_skip0.json").network
    ref = reference.run(net, data["x"], nbrnn.make_plan(1, 1, "naive"))
    np.testing.assert_allclose(ref[:, 0], data["y64"][:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("rate,method,opts", [(40000, "resample", {}), (96000, "resample", {"resampler": "fft"}),
                                              (30000, "oversample", {}), (30000, "oversample", {"factor": 3})])
def test_resampling_plans_are_refused(rate, method, opts):
    model = nbrnn.load_default()
    plan = model.plan(rate, method, **opts)
    with pytest.raises(nbrnn.ArgumentError, match=f"Argument 'plan' is method '{method}' .* delay-line methods and "
                                                  f"'stn' only"):
        reference.run(model.network, model.inputs(np.zeros(8))[0], plan)
    with pytest.raises(nbrnn.ArgumentError, match="Argument 'plan' must be an nbrnn Plan"):
        reference.run(model.network, model.inputs(np.zeros(8))[0], "lagrange")


def test_the_reference_checks_what_it_is_given():
    """step and cell are public: a wrong state list gave IndexError, a wrong size numpy's matmul error; run took
    complex input (dropping the imaginary part) and returned inf where the engine raises UnstableError."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    net, layer = model.network, model.network.layers[0]
    state = np.zeros(layer.state_size)
    for call, match in ((lambda: reference.step(net, [0.0], []), r"'fed_back' must be a list of 1 state\(s\)"),
                        (lambda: reference.step(net, [0.0], [np.zeros(3)]), r"'fed_back\[0\]' must be 16 real"),
                        (lambda: reference.step(net, [0.0, 1.0], [state]), r"'x' must be 1 real number"),
                        (lambda: reference.step(None, [0.0], [state]), "'network' must be an nbrnn Network"),
                        (lambda: reference.cell(net, [0.0], state), "'layer' must be an nbrnn Recurrent"),
                        (lambda: reference.cell(layer, [0.0], state[:3]), r"'state' must be 16 real"),
                        (lambda: reference.run(net, np.zeros((4, 1), complex), model.plan(48000)), "complex128"),
                        (lambda: reference.run(net, np.zeros((4, 1), bool), model.plan(48000)), "bool")):
        with pytest.raises(nbrnn.ArgumentError, match=match):
            call()
    fresh, out = reference.step(net, [0.25], [state])
    np.testing.assert_array_equal(out, reference.run(net, [[0.25]], model.plan(44100, "naive"))[0])
    loud = nbrnn.Network(net.layers, skip=1, input_gain=1e6)
    with pytest.raises(nbrnn.UnstableError, match="not finite from sample 0"):
        with np.errstate(over="ignore", invalid="ignore"):
            reference.run(loud, np.full((3, 1), 1e305), model.plan(44100, "naive"))
