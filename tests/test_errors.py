"""Bad input gets one clear NbrnnError naming the argument, the constraint and the value."""

import json

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN

LSTM = GOLDEN / "agm_lstm_l1_i1_h8_skip1.json"


@pytest.fixture(scope="module")
def model():
    return nbrnn.load(LSTM)


def _write(tmp_path, obj, name="m.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _agm():
    return json.loads(LSTM.read_text())


@pytest.mark.parametrize("content,match", [
    ("", "not a model file"),
    ("{", "not valid JSON"),
    ("[1, 2, 3]", "no loader accepts"),
    ('{"hello": 1}', "no loader accepts.*model_data"),
    ("\x00\x01garbage", "not a model file"),
    ("[" * 100000 + "]" * 100000, "nested too deeply|no loader"),
])
def test_unknown_or_malformed_files(tmp_path, content, match):
    with pytest.raises(nbrnn.ModelFormatError, match=match):
        nbrnn.load(_write(tmp_path, content))


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(nbrnn.ModelFormatError, match="does not exist"):
        nbrnn.load(tmp_path / "nope.json")
    with pytest.raises(nbrnn.ModelFormatError, match="is a directory"):
        nbrnn.load(tmp_path)


def test_agm_without_state_dict(tmp_path):
    obj = _agm()
    del obj["state_dict"]
    with pytest.raises(nbrnn.ModelFormatError, match="no 'state_dict'"):
        nbrnn.load(_write(tmp_path, obj))


@pytest.mark.parametrize("mutate,match", [
    (lambda o: o["model_data"].update(hidden_size=9), "hidden_size = 9 but layer 0 holds hidden size 8"),
    (lambda o: o["model_data"].update(num_layers=2), "num_layers = 2 but the state_dict holds 1"),
    (lambda o: o["model_data"].update(input_size=2), "input_size = 2"),
    (lambda o: o["model_data"].update(unit_type="TRANSFORMER"), "unit_type must be one of"),
    (lambda o: o["state_dict"].update({"lin.weight": [[1.0, 2.0]]}), "lin.weight.*shape"),
    (lambda o: o["state_dict"]["rec.weight_hh_l0"].pop(), "weight_hh"),
    (lambda o: o["state_dict"].update({"rec.bias_ih_l0": "abc"}), "bias_ih_l0"),
    (lambda o: o["state_dict"]["rec.weight_ih_l0"][0].__setitem__(0, None), "null values"),
    (lambda o: o["model_data"].update(sample_rate="fast"), "sample_rate.*Hz"),
    (lambda o: o["model_data"].update(sample_rate=-44100), "sample_rate.*> 0"),
    (lambda o: o["model_data"].update(skip=3), "skip = 3"),
])
def test_agm_shape_and_value_mismatches(tmp_path, mutate, match):
    obj = _agm()
    mutate(obj)
    with pytest.raises(nbrnn.ModelFormatError, match=match):
        nbrnn.load(_write(tmp_path, obj))


def test_nan_weights_are_rejected(tmp_path):
    text = LSTM.read_text()
    obj = json.loads(text)
    first = obj["state_dict"]["rec.bias_hh_l0"][0]
    text = text.replace(repr(first), "NaN", 1)
    with pytest.raises(nbrnn.ModelFormatError, match="NaN|non-finite"):
        nbrnn.load(_write(tmp_path, text))
    obj["state_dict"]["rec.bias_hh_l0"][0] = 1e400
    with pytest.raises(nbrnn.ModelFormatError):
        nbrnn.load(_write(tmp_path, json.dumps(obj).replace("Infinity", "1e999")))


def test_keras_gru_reset_after_false_refused(tmp_path):
    layers = [{"type": "gru", "activation": "tanh", "shape": [None, None, 2],
               "weights": [np.zeros((1, 6)).tolist(), np.zeros((2, 6)).tolist(), np.zeros(6).tolist()]},
              {"type": "dense", "activation": "", "shape": [None, None, 1],
               "weights": [np.zeros((2, 1)).tolist(), [0.0]]}]
    with pytest.raises(nbrnn.ModelFormatError, match="reset_after=False"):
        nbrnn.load(_write(tmp_path, {"in_shape": [None, None, 1], "layers": layers}))
    layers[0]["type"] = "conv1d"
    with pytest.raises(nbrnn.ModelFormatError, match="'conv1d'"):
        nbrnn.load(_write(tmp_path, {"in_shape": [None, None, 1], "layers": layers}))


def test_nam_other_architectures_and_sizes(tmp_path):
    with pytest.raises(nbrnn.ModelFormatError, match="'WaveNet'.*LSTM"):
        nbrnn.load(_write(tmp_path, {"version": "0.5", "architecture": "WaveNet", "config": {}, "weights": []}))
    obj = json.loads((GOLDEN / "nam_lstm_l1_h3.nam").read_text())
    obj["weights"] = obj["weights"][:-1]
    with pytest.raises(nbrnn.ModelShapeError, match="holds 69 values but config.*needs 70"):
        nbrnn.load(_write(tmp_path, obj, "m.nam"))


@pytest.mark.parametrize("x,match", [
    (np.array([0.0, np.nan, 0.1]), r"NaN/Inf sample.*index \(1,\)"),
    (np.array([0.0, np.inf]), "NaN/Inf"),
    (np.array([1, 2, 3], dtype=np.int16), "float samples, not int16.*32768"),
    (np.zeros((2, 2, 2)), r"shape \(samples,\)"),
    ("loud", "float samples"),
])
def test_bad_audio(model, x, match):
    with pytest.raises(nbrnn.AudioError, match=match):
        model.process(x, 48000)


@pytest.mark.parametrize("rate,match", [(0, "sample_rate' must be > 0, not 0"), (-44100, "> 0, not -44100"),
                                        (float("nan"), "> 0, not nan"), ("48k", "number of Hz"),
                                        (1e12, "at most 100 MHz")])
def test_impossible_sample_rates(model, rate, match):
    with pytest.raises(nbrnn.ArgumentError, match=match):
        model.process(np.zeros(10), rate)


def test_bad_trained_rate_and_options(model):
    with pytest.raises(nbrnn.ArgumentError, match="trained_rate' must be > 0"):
        nbrnn.load(LSTM, trained_rate=0)
    with pytest.raises(nbrnn.ArgumentError, match="dtype.*float32.*float16"):
        model.process(np.zeros(4), 48000, dtype="float16")
    with pytest.raises(nbrnn.ArgumentError, match="unknown option.*wobble"):
        model.process(np.zeros(4), 48000, wobble=3)
    with pytest.raises(nbrnn.ArgumentError, match="prewarm.*NAM"):
        nbrnn.load(LSTM, prewarm=True)


def test_conditioning_errors():
    cond_model = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")
    x = np.zeros(8)
    with pytest.raises(nbrnn.ArgumentError, match="1 conditioning input.*cond1.*cond="):
        cond_model.process(x, 44100)
    with pytest.raises(nbrnn.ArgumentError, match="'drive'.*not one of cond1"):
        cond_model.process(x, 44100, cond={"drive": 0.5})
    with pytest.raises(nbrnn.ArgumentError, match="shape"):
        cond_model.process(x, 44100, cond=[np.zeros(5)])
    with pytest.raises(nbrnn.ArgumentError, match="NaN"):
        cond_model.process(x, 44100, cond=[np.nan])
    with pytest.raises(nbrnn.ArgumentError, match="no conditioning inputs"):
        nbrnn.load(LSTM).process(x, 44100, cond=[0.5])


def test_errors_are_value_errors_too():
    assert issubclass(nbrnn.ModelFormatError, ValueError) and issubclass(nbrnn.ArgumentError, ValueError)
    assert issubclass(nbrnn.AudioError, nbrnn.NbrnnError)


def test_unstable_adaptation_is_reported_not_returned():
    """An explosive feedback kernel gives UnstableError naming the method, never NaN audio."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    with pytest.raises(nbrnn.UnstableError, match="non-finite.*FIR kernel"):
        model.process(np.ones(20000), 44100, method="fir", kernel=[1e3, -1e3, 1e3])
