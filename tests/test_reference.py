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
