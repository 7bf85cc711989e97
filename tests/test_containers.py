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
