"""npz / safetensors containers: every golden model saved and reloaded gives identical output."""

import json

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, golden_manifest

MODELS = golden_manifest()


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("entry", MODELS, ids=[m["file"] for m in MODELS])
def test_round_trip_is_exact(tmp_path, entry, suffix):
    model = nbrnn.load(GOLDEN / entry["file"])
    path = tmp_path / ("model" + suffix)
    model.save(path)
    again = nbrnn.load(path)
    assert again.network.format == suffix[1:]
    assert again.network.skip == model.network.skip
    assert again.trained_rate == model.trained_rate
    assert again.input_names == model.input_names
    x = np.load(GOLDEN / entry["golden"])["x"][:300]
    cond = [x[:, i] for i in range(1, x.shape[1])] or None
    for dtype in ("float64", "float32"):
        a = model.process(x[:, 0], 48000, cond=cond, dtype=dtype)
        b = again.process(x[:, 0], 48000, cond=cond, dtype=dtype)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_network_from_arrays_says_where_its_rate_came_from(tmp_path, suffix):
    """A network built with trained_rate= said its rate was the 'format default', also after a save and load."""
    layers = (nbrnn.Dense([[0.5]], [0.0]),)
    given = nbrnn.Network(layers, trained_rate=44100.0)
    assert (given.trained_rate, given.rate_source) == (44100.0, "caller")
    default = nbrnn.Network(layers)
    assert (default.trained_rate, default.rate_source) == (44100.0, "format default")
    assert nbrnn.Network(layers, trained_rate=48000, rate_source="file").rate_source == "file"
    nbrnn.Model(given).save(tmp_path / f"m{suffix}")
    back = nbrnn.load(tmp_path / f"m{suffix}")
    assert (back.trained_rate, back.network.rate_source) == (44100.0, "caller")
    assert "44100 Hz (caller)" in back.info()


def test_nam_prewarm_survives_export(tmp_path):
    path = tmp_path / "nam.safetensors"
    nbrnn.load(GOLDEN / "nam_lstm_l1_h3.nam").save(path)
    assert nbrnn.load(path, prewarm=True).warmup == 0.5


def test_torch_named_safetensors_with_metadata(tmp_path):
    from nbrnn.formats.safetensors import write_safetensors

    sd = json.loads((GOLDEN / "agm_lstm_l1_i1_h8_skip1.json").read_text())["state_dict"]
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in sd.items()}
    write_safetensors(tmp_path / "m.safetensors", arrays, {"skip": "1", "sample_rate": "44100"})
    model = nbrnn.load(tmp_path / "m.safetensors")
    ref = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    assert model.network.skip == 1 and model.trained_rate == 44100 and model.network.rate_source == "file"
    x = np.sin(np.arange(200) * 0.1)
    assert np.array_equal(model.process(x, 44100), ref.process(x, 44100))


def test_export_refuses_overwrite_and_bad_suffix(tmp_path):
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    path = tmp_path / "m.npz"
    model.save(path)
    with pytest.raises(nbrnn.OutputError, match="exists"):
        model.save(path)
    with pytest.raises(nbrnn.ArgumentError, match=r"\.npz or \.safetensors"):
        model.save(tmp_path / "m.json")


def test_npz_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, a=np.array([object()], dtype=object))
    with pytest.raises(nbrnn.ModelFormatError, match="npz"):
        nbrnn.load(path)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_load_options_apply_to_containers(tmp_path, suffix):
    """skip= overrides the file's skip, as it does for the JSON formats; format= insists on its container."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    path = tmp_path / f"m{suffix}"
    model.save(path)
    assert nbrnn.load(path).network.skip == 1
    assert nbrnn.load(path, skip=0).network.skip == 0
    x = np.sin(np.arange(100) * 0.1)
    np.testing.assert_allclose(nbrnn.load(path, skip=0).process(x, 44100), model.process(x, 44100) - x, atol=1e-15)
    other = "safetensors" if suffix == ".npz" else "npz"
    with pytest.raises(nbrnn.ModelFormatError, match=f"was given as format '{other}', but it is"):
        nbrnn.load(path, format=other)
    assert nbrnn.load(path, format=suffix[1:]).network.skip == 1
