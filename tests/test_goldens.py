"""nbrnn against the project's own PyTorch goldens (tests/data/golden, made by tools/make_goldens.py).

Regenerate with: pip install torch==2.13.0 && python tools/make_goldens.py
"""

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, golden_manifest, run_golden

MODELS = golden_manifest()


@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_float64_matches_torch(entry):
    model = nbrnn.load(GOLDEN / entry["file"])
    data = np.load(GOLDEN / entry["golden"])
    y = run_golden(model, data["x"], "float64")
    np.testing.assert_allclose(y, data["y64"][:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_float32_matches_torch(entry):
    model = nbrnn.load(GOLDEN / entry["file"])
    data = np.load(GOLDEN / entry["golden"])
    y = run_golden(model, data["x"], "float32")
    assert y.dtype == np.float32
    # NAM goldens hold a deliberately slow integrator whose float32 rounding drifts (torch's own
    # float32 run is 7.6e-6 away from its float64 run there), so they get a looser bound.
    atol = 1e-4 if entry["format"] == "nam" else 1e-5
    np.testing.assert_allclose(y, data["y32"][:, 0], rtol=0, atol=atol)


@pytest.mark.parametrize("entry", [m for m in MODELS if m["format"] == "nam"], ids=lambda m: m["file"])
def test_nam_prewarm_matches_runtime_behaviour(entry):
    data = np.load(GOLDEN / entry["golden"])
    cold = nbrnn.load(GOLDEN / entry["file"])
    warm = nbrnn.load(GOLDEN / entry["file"], prewarm=True)
    assert warm.warmup == 0.5
    np.testing.assert_allclose(run_golden(warm, data["x"], "float64"), data["y64_prewarm"][:, 0], rtol=0, atol=1e-12)
    # without the stored initial state the output is different: the loader must keep it
    assert np.abs(run_golden(cold, data["x"], "float64") - data["y64_prewarm"][:, 0]).max() > 1e-3


@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_loaded_shape(entry):
    model = nbrnn.load(GOLDEN / entry["file"])
    net = model.network
    assert net.input_size == entry["input_size"]
    assert net.skip == entry["skip"]
    assert len(net.recurrent_layers) == entry["num_layers"]
    assert net.recurrent_layers[-1].hidden_size == entry["hidden_size"]
    if entry["sample_rate"]:
        assert net.trained_rate == entry["sample_rate"] and net.rate_source == "file"
