"""Conformance with third-party models and goldens in ../shared (skipped when absent).

Golden outputs: RTNeural's test data (Keras / PyTorch, commit 1fb1f075), see shared/SOURCES.tsv.
"""

import json

import numpy as np
import pytest

import nbrnn

KERAS = ["lstm", "gru", "lstm_1d", "gru_1d", "dense"]
TORCH = ["lstm", "gru"]


def _tol(name):
    return 5e-6 if "gru" in name else 1e-6  # RTNeural's own acceptance bounds


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", KERAS)
def test_rtneural_keras_models(shared, name, dtype):
    model = nbrnn.load(shared / f"models/keras/rtneural_{name}.json")
    x = np.loadtxt(shared / f"reference/rtneural/{name}_x_python.csv")
    y = np.loadtxt(shared / f"reference/rtneural/{name}_y_python.csv")
    out = model.process(x, model.trained_rate, method="naive", dtype=dtype)
    np.testing.assert_allclose(out, y, rtol=0, atol=_tol(name))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH)
def test_rtneural_torch_models(shared, name, dtype):
    model = nbrnn.load(shared / f"models/torch-json/rtneural_{name}_torch.json")
    assert len(model.network.recurrent_layers) == 4  # one module plus a 3-layer module: every layer runs
    x = np.loadtxt(shared / f"reference/rtneural/{name}_torch_x_python.csv")
    y = np.loadtxt(shared / f"reference/rtneural/{name}_torch_y_python.csv")
    out = model.process(x, model.trained_rate, method="naive", dtype=dtype)
    np.testing.assert_allclose(out, y, rtol=0, atol=_tol(name))


def _agm_files(shared):
    return sorted((shared / "models/agm").glob("*.json")) + sorted((shared / "models/proteus").glob("*.json")) + [
        shared / "models/article/metal_face_lstm28_96k.json"]


def test_every_agm_file_loads_with_its_declared_shape(shared):
    files = _agm_files(shared)
    assert len(files) == 11 + 18 + 1
    for path in files:
        meta = json.loads(path.read_text())["model_data"]
        model = nbrnn.load(path)
        net = model.network
        rec = net.recurrent_layers
        assert len(rec) == meta["num_layers"], path.name
        assert rec[0].cell == meta["unit_type"].lower(), path.name
        assert all(r.hidden_size == meta["hidden_size"] for r in rec), path.name
        assert net.input_size == meta["input_size"], path.name
        assert net.skip == meta["skip"], path.name
        assert len(model.conditioning_names) == meta["input_size"] - 1, path.name
        x = np.sin(np.linspace(0, 20, 300)) * 0.3
        y = model.process(x, net.trained_rate, cond=[0.5] * len(model.conditioning_names), method="naive")
        assert y.shape == x.shape and np.all(np.isfinite(y))


def test_article_model_has_no_skip_and_proteus_has_skip(shared):
    assert nbrnn.load(shared / "models/article/metal_face_lstm28_96k.json").network.skip == 0
    for path in (shared / "models/proteus").glob("*.json"):
        net = nbrnn.load(path).network
        assert net.skip == 1 and net.recurrent_layers[0].hidden_size == 40


def test_keras_conditioned_and_time_distributed(shared):
    net = nbrnn.load(shared / "models/keras/kloncentaur_small.json").network
    assert net.input_size == 3 and net.layers[0].output_size == 4 and net.recurrent_layers[0].cell == "gru"
    assert net.trained_rate == 48000 and net.rate_source == "format default"


def test_bad_lstm_is_rejected_naming_the_mismatch(shared):
    with pytest.raises(nbrnn.ModelShapeError, match=r"declares 16 units.*holds 20"):
        nbrnn.load(shared / "models/keras/rtneural_bad_lstm.json")
