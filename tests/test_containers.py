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


def test_loader_options_and_keras_fields(tmp_path):
    """Options and fields the README documents, each checked against what it must change."""
    dense = {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [[[0.5], [0.25]], [0.1]]}
    gru = {"type": "gru", "activation": "tanh", "shape": [None, None, 2],
           "weights": [np.full((1, 6), 0.2).tolist(), np.full((2, 6), 0.1).tolist(), np.zeros((2, 6)).tolist()]}
    keras = {"in_shape": [None, None, 1], "in_skip": 1, "metadata": {"samplerate": "96000"}, "layers": [gru, dense]}
    path = tmp_path / "k.json"
    path.write_text(json.dumps(keras))
    net = nbrnn.load(path).network
    assert (net.skip, net.trained_rate, net.rate_source) == (1, 96000.0, "file")
    # format= picks the loader: a Keras file forced through another JSON format is refused, not read as Keras
    assert nbrnn.load(path, format="rtneural-keras-json").network.skip == 1
    with pytest.raises(nbrnn.ModelFormatError, match="agm-json"):
        nbrnn.load(path, format="agm-json")
    # rnn_nonlinearity: a raw state_dict's nn.RNN layer as relu instead of tanh
    w = {"rnn.weight_ih_l0": [[1.0], [-1.0]], "rnn.weight_hh_l0": [[0.0, 0.0], [0.0, 0.0]],
         "rnn.bias_ih_l0": [0.0, 0.0], "rnn.bias_hh_l0": [0.0, 0.0], "lin.weight": [[1.0, 1.0]], "lin.bias": [0.0]}
    raw = tmp_path / "rnn.json"
    raw.write_text(json.dumps(w))
    x = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(nbrnn.load(raw).process(x, 44100), np.tanh(x) + np.tanh(-x), atol=1e-15)
    np.testing.assert_allclose(nbrnn.load(raw, rnn_nonlinearity="relu").process(x, 44100), np.abs(x), atol=1e-15)


def _small_network(**kwargs):
    rng = np.random.default_rng(3)
    rec = nbrnn.Recurrent("gru", rng.uniform(-0.5, 0.5, (12, 1)), rng.uniform(-0.5, 0.5, (12, 4)),
                          rng.uniform(-0.1, 0.1, 12), rng.uniform(-0.1, 0.1, 12))
    return nbrnn.Network((rec, nbrnn.Dense(rng.uniform(-1, 1, (1, 4)), [0.0])), **kwargs)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_saved_model_keeps_its_warmup(tmp_path, suffix):
    """save() wrote the network only: the reloaded model skipped the warm-up and computed something else."""
    model = nbrnn.Model(_small_network(), warmup=0.25)
    model.save(tmp_path / f"w{suffix}")
    again = nbrnn.load(tmp_path / f"w{suffix}")
    assert again.warmup == 0.25
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 2000)
    np.testing.assert_array_equal(again.process(x, 48000), model.process(x, 48000))
    assert nbrnn.load(tmp_path / f"w{suffix}", prewarm=False).warmup == 0.25  # prewarm is NAM's own 0.5 s


@pytest.mark.parametrize("value", [61, -1.0, float("nan"), "abc"])
def test_metadata_the_reader_would_refuse_is_not_written(tmp_path, value):
    model = nbrnn.Model(_small_network(metadata={"prewarm_seconds": value}))
    with pytest.raises(nbrnn.ArgumentError, match="prewarm_seconds must be a number from 0 to 60 seconds"):
        model.save(tmp_path / "p.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_name_safetensors_cannot_hold_is_refused_in_one_line(tmp_path):
    """A lone surrogate has no UTF-8 form: the header's encoding raised UnicodeEncodeError. An .npz holds it."""
    model = nbrnn.Model(_small_network(format="odd\ud800", input_names=("audio\ud800",)))
    with pytest.raises(nbrnn.ArgumentError, match=r"cannot hold the lone surrogate '\\ud800' .*\(save as .npz\)"):
        model.save(tmp_path / "s.safetensors")
    assert list(tmp_path.iterdir()) == []
    model.save(tmp_path / "s.npz")
    assert nbrnn.load(tmp_path / "s.npz").input_names == ("audio\ud800",)


def test_the_model_file_is_protected_after_a_change_of_folder(tmp_path, monkeypatch):
    """The source was kept as given, relative: from another folder 'a.npz' was another file, and save replaced
    the model file it was loaded from."""
    (tmp_path / "sub").mkdir()
    nbrnn.Model(_small_network()).save(tmp_path / "sub" / "a.npz")
    monkeypatch.chdir(tmp_path)
    model = nbrnn.load("sub/a.npz")
    monkeypatch.chdir(tmp_path / "sub")
    before = (tmp_path / "sub" / "a.npz").read_bytes()
    with pytest.raises(nbrnn.OutputError, match="is the model file"):
        model.save("a.npz", overwrite=True)
    assert (tmp_path / "sub" / "a.npz").read_bytes() == before
