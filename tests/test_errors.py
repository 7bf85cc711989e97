"""Bad input gets one clear NbrnnError naming the argument, the constraint and the value."""

import json
import os
import warnings

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
    (lambda o: o["model_data"].update(skip=3), r"model_data.skip must be a whole number from 0 to 1 .*, not 3"),
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
    (np.zeros((1, 5000)), r"5000 channels, more than 4096; audio is \(samples, channels\): for 1 channel\(s\) pass x\.T"),
    (np.ma.masked_array(np.zeros(4), mask=[0, 1, 0, 0]), r"masked array.*x\.filled"),
])
def test_bad_audio(model, x, match):
    with pytest.raises(nbrnn.AudioError, match=match):
        model.process(x, 48000)


@pytest.mark.parametrize("rate,match", [(0, "sample_rate' must be from 1 Hz to 100 MHz, not 0"), (-44100, "not -44100"),
                                        (float("nan"), "100 MHz, not nan"), ("48k", "number of Hz"),
                                        (1e12, "to 100 MHz, not 1e\\+12")])
def test_impossible_sample_rates(model, rate, match):
    with pytest.raises(nbrnn.ArgumentError, match=match):
        model.process(np.zeros(10), rate)


def test_bad_trained_rate_and_options(model):
    with pytest.raises(nbrnn.ArgumentError, match="trained_rate' must be from 1 Hz"):
        nbrnn.load(LSTM, trained_rate=0)
    with pytest.raises(nbrnn.ArgumentError, match="dtype.*float32.*float16"):
        model.process(np.zeros(4), 48000, dtype="float16")
    with pytest.raises(nbrnn.ArgumentError, match="unknown option.*wobble"):
        model.process(np.zeros(4), 48000, wobble=3)
    with pytest.raises(nbrnn.ArgumentError, match="prewarm.*NAM"):
        nbrnn.load(LSTM, prewarm=True)
    with pytest.raises(nbrnn.ArgumentError, match="'prewarm' must be True or False, not 'no'"):
        nbrnn.load(LSTM, prewarm="no")


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
    for huge in (10 ** 400, -10 ** 400):  # a Python integer float() refuses (OverflowError before)
        with pytest.raises(nbrnn.ArgumentError, match=r"beyond float64's range\): -?10000.*\.\.\.$"):
            cond_model.process(x, 44100, cond=[huge])
    np.testing.assert_array_equal(cond_model.process(x, 44100, cond=[2 ** 70]),
                                  cond_model.process(x, 44100, cond=[float(2 ** 70)]))
    with pytest.raises(nbrnn.ArgumentError, match="no conditioning inputs"):
        nbrnn.load(LSTM).process(x, 44100, cond=[0.5])
    for cond in (object(), len):
        with pytest.raises(nbrnn.ArgumentError, match="cond' must be a dict.*or a number, not"):
            cond_model.process(x, 44100, cond=cond)
    for key in ("\u00b2", "\u0661", "1" * 5000):  # not an ASCII index, and one beyond any index
        with pytest.raises(nbrnn.ArgumentError, match="cond' (names|key)"):
            cond_model.process(x, 44100, cond={key: 0.5})
    for cond in ({1: 0.0, "cond1": 1.0}, {"cond1": 0.0, "1": 1.0}, {np.int64(1): 0.0, "1": 1.0}):
        with pytest.raises(nbrnn.ArgumentError, match="gives 'cond1' twice, as .* and as "):
            cond_model.process(x, 44100, cond=cond)


def test_conditioning_as_a_0d_array_and_with_an_empty_signal():
    cond_model = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")
    x = np.sin(np.arange(300) * 0.05)
    expected = cond_model.process(x, 44100, cond=[0.5])
    assert np.array_equal(cond_model.process(x, 44100, cond=np.array(0.5)), expected)
    assert np.array_equal(cond_model.process(x, 44100, cond={"cond1": np.array(0.5)}), expected)
    # the warm-up holds the knobs at their first sample's values: with no sample yet, it waits for the next call
    warm = cond_model.process(x, 44100, cond=[0.5], warmup=0.1)
    assert not np.array_equal(warm, expected)
    assert cond_model.process(np.zeros(0), 44100, cond=[0.5], warmup=0.1).shape == (0,)
    assert np.array_equal(cond_model.process(x, 44100, cond=[0.5], reset=False), warm)
    assert cond_model.process(np.zeros((0, 2)), 44100, cond=[np.zeros(0)], warmup=0.1).shape == (0, 2)


def test_errors_are_value_errors_too():
    assert issubclass(nbrnn.ModelFormatError, ValueError) and issubclass(nbrnn.ArgumentError, ValueError)
    assert issubclass(nbrnn.AudioError, nbrnn.NbrnnError)


def test_unstable_adaptation_is_reported_not_returned():
    """An explosive feedback kernel gives UnstableError naming the method, never NaN audio."""
    model = nbrnn.load(GOLDEN / "agm_lstm_l1_i1_h8_skip1.json")
    with pytest.raises(nbrnn.UnstableError, match="non-finite.*FIR kernel.*try method 'allpass' or 'linear'"):
        model.process(np.ones(20000), 44100, method="fir", kernel=[1e3, -1e3, 1e3])


@pytest.mark.parametrize("rate, method, kw, hint", [
    (80000, "lagrange", {}, "try method 'allpass' or 'linear'"),
    (40000, "lagrange", {}, "try method 'resample', or 'oversample' with inner='allpass'"),
    (40000, "oversample", {}, "try inner='allpass'"), (40000, "oversample", {"inner": "allpass"}, "try method 'resample'"),
    (80000, "stn", {}, "try method 'resample'"),
])
def test_divergence_names_the_stable_choices(rate, method, kw, hint):
    from nbrnn.adapt import make_plan
    from nbrnn.engine import divergence_hint

    assert divergence_hint(make_plan(44100, rate, method, **kw)).startswith(hint)


# -- hostile files, odd values and odd types: an NbrnnError, never a raw exception or a huge allocation ----------

@pytest.mark.parametrize("obj,match", [
    ({"in_shape": [None, 10 ** 9], "layers": [{"type": "activation", "activation": "tanh"}]}, "1 to 1024"),
    ({"in_shape": [None, True], "layers": [{"type": "activation", "activation": "tanh"}]}, "in_shape"),
])
def test_keras_input_count_is_bounded(tmp_path, obj, match):
    with pytest.raises(nbrnn.ModelFormatError, match=match):
        nbrnn.load(_write(tmp_path, obj))


def _activations(width, count, dense=None):
    layers = [dense] if dense else []
    return {"in_shape": [None, None, width], "layers": layers + [{"type": "activation", "activation": "tanh"}] * count}


@pytest.mark.parametrize("obj,match", [
    (_activations(1024, 20), r"layers\[15\] \(activation\) needs a 1024x1024 identity layer, which would give the "
                             r"network: 16793600 weights and biases; a network may hold at most 16777216"),
    (_activations(1, 5000), r"layers\[256\] .* 257 layers; a network may have at most 256"),
    (_activations(1, 1, {"type": "dense", "activation": "tanh", "shape": [None, None, 8192],
                         "weights": [[[0.5] * 8192], [0.0] * 8192]}), r"layers\[1\] .* 8192x8192 identity"),
])
def test_keras_activation_layers_are_bounded(tmp_path, obj, match):
    """Each activation layer after a recurrent or non-linear layer becomes an identity dense layer of its width:
    the network's bounds are checked before one is built."""
    with pytest.raises(nbrnn.ModelShapeError, match=match):
        nbrnn.load(_write(tmp_path, obj))
    assert nbrnn.load(_write(tmp_path, _activations(1024, 2))).network.parameter_count == 2 * 1024 * 1025


def test_networks_are_bounded():
    dense = nbrnn.Dense([[1.0]], [0.0], "tanh")
    assert len(nbrnn.Network((dense,) * nbrnn.network.MAX_LAYERS).layers) == 256
    with pytest.raises(nbrnn.ModelShapeError, match="257 layers; a network may have at most 256"):
        nbrnn.Network((dense,) * 257)
    wide = nbrnn.Dense(np.zeros((4097, 4096)), np.zeros(4097))
    with pytest.raises(nbrnn.ModelShapeError, match="16785409 weights and biases; a network may hold at most 16777"):
        nbrnn.Network((wide,))


@pytest.mark.parametrize("mutate,error,match", [
    (lambda o: o["state_dict"].update({"rec.weight_ih_l1000000000000": [[0.0]]}), nbrnn.ModelFormatError,
     "not numbered 0"),
    # '²'.isdigit() is true but int() refuses it: no layer index, a tensor the model does not use
    (lambda o: o["state_dict"].update({"rec.weight_ih_l\u00b2": [[0.0]]}), nbrnn.ModelFormatError,
     r"1 tensor\(s\) an AGM model \(rec, lin\) does not use: 'rec.weight_ih_l²'"),
    (lambda o: o["model_data"].update(sample_rate=10 ** 400), nbrnn.ModelFormatError, "sample rate > 0 Hz, not inf"),
])
def test_agm_hostile_keys_and_values(tmp_path, mutate, error, match):
    obj = _agm()
    mutate(obj)
    path = _write(tmp_path, obj)
    with pytest.raises(error, match=match):
        nbrnn.load(path)


@pytest.mark.parametrize("make,match", [
    (lambda: nbrnn.Dense([[1j]], [0.0]), "real numbers.*complex"),
    (lambda: nbrnn.Dense([["1.5"]], [0.0]), "real numbers"),
    (lambda: nbrnn.Dense([[10 ** 400]], [0.0]), "real numbers.*object"),
    (lambda: nbrnn.Dense([[True]], [0.0]), "real numbers.*bool"),
    (lambda: nbrnn.Dense([[1.0]], [0.0], activation=np.array(["tanh", "relu"])), "activation must be one of"),
    (lambda: nbrnn.Recurrent(["lstm"], np.zeros((4, 1)), np.zeros((4, 1)), np.zeros(4), np.zeros(4)), "cell must"),
    (lambda: nbrnn.Network(None), "layers must be a sequence"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), input_names=5), "input_names must be a sequence"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), input_names=[7]), "non-empty strings"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), trained_rate=1e-300), "trained_rate.*1 Hz to 100 MHz"),
    (lambda: nbrnn.Network((nbrnn.Dense(np.ones((1, 3)), [0.0]),), input_names=("audio", "k", "k")),
     "input_names must differ.*'k' appears more than once"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), source=5), "'source' must be a string, not 5"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), format=None), "'format' must be a string"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), metadata=[]), "'metadata' must be a dict, not list"),
    (lambda: nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), input_gain=10 ** 400),  # was an OverflowError
     r"'input_gain' must be a linear gain .* not inf"),
])
def test_layer_and_network_arguments(make, match):
    with pytest.raises(nbrnn.NbrnnError, match=match):
        make()


def test_odd_argument_types(model, tmp_path):
    cond_model = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")
    x = np.zeros(8)
    for cond in ([1j], {"cond1": 1j}, {"cond1": np.full(8, 1j)}, [{"a": 1}]):
        with pytest.raises(nbrnn.ArgumentError, match="real number"):
            cond_model.process(x, 44100, cond=cond)
    for option in ({"output": np.array(["fresh", "x"])}, {"placement": []}, {"activations": np.array(["a"])}):
        with pytest.raises(nbrnn.ArgumentError):
            model.process(x, 48000, **option)
    with pytest.raises(nbrnn.ArgumentError, match="NUL"):
        nbrnn.load("m\x00.json")
    with pytest.raises(nbrnn.ArgumentError, match="file path"):
        model.save(None)


@pytest.mark.parametrize("rates,match", [((48000, 1e-300), "trained_rate.*1 Hz to 100 MHz"),
                                         ((0.5, 48000), "sample_rate.*1 Hz to 100 MHz"),
                                         ((1e8, 44100), "R = .* beyond"), ((20, 48000), "R = .* beyond")])
def test_rates_and_their_ratio_are_bounded(rates, match):
    with pytest.raises(nbrnn.ArgumentError, match=match):
        nbrnn.adapt.make_plan(rates[1], rates[0])


def test_weights_beyond_float32_name_the_remedy():
    big = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0]], [1e39]),)))
    with pytest.raises(nbrnn.ArgumentError, match="beyond float32's range.*float64"):
        big.process(np.zeros(4), 44100, dtype="float32")
    assert big.process(np.zeros(4), 44100, dtype="float64")[0] == 1e39


@pytest.mark.parametrize("method,rate", [("resample", 96000), ("resample", 40000), ("oversample", 30000)])
def test_whole_signal_methods_take_any_length(model, method, rate):
    for n in (0, 1, 2, 5, 20, 64):
        assert model.process(np.zeros(n), rate, method=method).shape == (n,)


def test_stream_feed_checks_its_block(model):
    stream = model.stream(48000, channels=2)
    good = model.inputs(np.zeros((16, 2)))
    assert stream.feed(good).shape == (2, 16, 1)
    for block, error in ((np.zeros((16, 2)), nbrnn.ArgumentError), (good.astype(np.float32), nbrnn.ArgumentError),
                         (good[:1], nbrnn.ArgumentError), ([[0.0]], nbrnn.ArgumentError), (None, nbrnn.ArgumentError),
                         (np.full((2, 4, 1), np.nan), nbrnn.AudioError),
                         (np.ma.masked_array(good), nbrnn.ArgumentError)):
        with pytest.raises(error, match="Stream.feed"):
            stream.feed(block)
    bad = good.copy()
    bad[1, 9, 0], bad[1, 12, 0] = np.inf, np.nan
    with pytest.raises(nbrnn.AudioError, match=r"2 NaN/Inf value\(s\), the first at index \(1, 9, 0\)"):
        stream.feed(bad)


def test_arguments_that_numpy_would_take_are_refused(model):
    """np.dtype(None) is float64; an array in `x in choices` raised numpy's "truth value is ambiguous"."""
    for call in (lambda: model.process(np.zeros(4), 44100, dtype=None), lambda: model.stream(44100, dtype=None),
                 lambda: model.inputs(np.zeros(4), dtype=None)):
        with pytest.raises(nbrnn.ArgumentError, match="'dtype' must be 'float32' or 'float64', not None"):
            call()
    for name in ("rnn_nonlinearity", "format"):
        with pytest.raises(nbrnn.ArgumentError, match=f"'{name}' must be"):
            nbrnn.load(LSTM, **{name: np.array(["tanh", "npz"])})


def test_messages_stay_short_whatever_the_value(model):
    for call, name in ((lambda: model.process(np.zeros(4), "9" * 100000), "sample_rate"),
                       (lambda: model.process(np.zeros(4), [1.0] * 100000), "sample_rate"),
                       (lambda: model.process(np.zeros(4), 44100, warmup=10 ** 400), "warmup"),
                       (lambda: nbrnn.Model(model.network, warmup=10 ** 400), "warmup")):
        with pytest.raises(nbrnn.ArgumentError, match=f"'{name}'") as info:
            call()
        assert len(str(info.value)) < 200
    knob = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0, 1.0]], [0.0]),), input_names=("audio", "gain")))
    for cond in ({"g" * 100000: 0.5}, {10 ** 100: 0.5}, {"gain": 0.5, "1": 0.5, **{"x" * 100000: 1}}):
        with pytest.raises(nbrnn.ArgumentError, match="'cond'") as info:
            knob.process(np.zeros(4), 44100, cond=cond)
        assert len(str(info.value)) < 200


def test_a_mapping_of_knob_values_is_read_by_name():
    import types
    knob = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0, 1.0, 1.0]], [0.0]),), input_names=("audio", "a", "b")))
    y = knob.process(np.zeros(3), 44100, cond=types.MappingProxyType({"b": 0.5, "a": 0.25}))
    np.testing.assert_array_equal(y, 0.75)


def test_a_model_s_network_and_warmup_cannot_change_under_its_packed_weights(model):
    """The weights are packed (and a stream continued) from the network the model was made with: assigning
    another network or warm-up used to go on running the old one while info() showed the new."""
    for name, value in (("network", model.network), ("warmup", 1.0)):
        with pytest.raises(AttributeError):
            setattr(model, name, value)


def test_prewarm_on_another_format_names_the_file_once(tmp_path):
    path = tmp_path / "amp\nfile.json"
    path.write_text(LSTM.read_text())
    with pytest.raises(nbrnn.ArgumentError, match=r"applies to NAM files; '[^']*amp\\nfile.json' is agm") as info:
        nbrnn.load(os.fsencode(path), prewarm=True)
    assert "b'" not in str(info.value)


def test_stream_feed_takes_large_finite_values_without_a_warning():
    """The NaN/Inf test summed the block first, which overflowed for values near float32's limit: a spurious
    RuntimeWarning, an exception under -W error."""
    skip = nbrnn.Model(nbrnn.Network((nbrnn.Recurrent("gru", np.full((3, 1), 0.1), np.zeros((3, 1)), np.zeros(3),
                                                      np.zeros(3)), nbrnn.Dense([[1.0]], [0.0])), skip=1))
    stream = skip.stream(44100, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = stream.feed(np.full((1, 4, 1), 3e38, np.float32))
    assert np.all(np.isfinite(y))


def _gru_with_skip(head_bias=0.0):
    rec = nbrnn.Recurrent("gru", np.full((3, 1), 0.1), np.zeros((3, 1)), np.zeros(3), np.zeros(3))
    return nbrnn.Model(nbrnn.Network((rec, nbrnn.Dense([[1.0]], [head_bias])), skip=1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_checks_find_one_bad_value_anywhere_and_take_the_largest_finite(dtype):
    """The per-block checks are compiled loops (nbrnn/_checks.py): compiled with fastmath they could assume that
    no value is NaN or Inf and drop the test.  One bad value at the start, inside or in the vector loop's
    remainder of a two-channel block; the dtype's largest values pass, in the input and in the output."""
    model = _gru_with_skip()
    big = np.finfo(dtype).max
    block = np.zeros((2, 4099, 1), dtype)
    block[0, 0, 0], block[1, -1, 0] = big, -big
    y = model.stream(44100, dtype=dtype, channels=2).feed(block)
    assert y[0, 0, 0] == big and y[1, -1, 0] == -big
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (1, 2050), (1, 4098)):
            wrong = block.copy()
            wrong[where + (0,)] = bad
            with pytest.raises(nbrnn.AudioError, match=r"Stream.feed: the block holds 1 NaN/Inf value\(s\), "
                               rf"the first at index \({where[0]}, {where[1]}, 0\)"):
                model.stream(44100, dtype=dtype, channels=2).feed(wrong)
    # an output beyond the dtype's range: the head's bias plus the skip overflow to Inf
    over = _gru_with_skip(head_bias=big / 2)
    with pytest.raises(nbrnn.UnstableError, match="the output became non-finite"):
        over.stream(44100, dtype=dtype).feed(np.full((1, 5, 1), big, dtype))


def test_long_warmup_runs_in_blocks_with_the_same_bits(model):
    x = np.sin(np.arange(500) * 0.05)
    warm = model.process(x, 48000, warmup=1.5)  # 72000 samples of silence: more than one block
    whole = model.process(np.concatenate([np.zeros(72000), x]), 48000)[72000:]
    assert np.array_equal(warm, whole)


def test_warmup_shorter_than_half_a_sample_is_no_warmup(model):
    x = np.sin(np.arange(64) * 0.1)
    plain = model.process(x, 48000)
    for seconds in (1e-6, 1e-300, 5e-6):  # 0.048, ~0 and 0.24 samples at 48 kHz
        assert np.array_equal(model.process(x, 48000, warmup=seconds), plain)
    stream = nbrnn.Model(model.network, warmup=1e-9).stream(48000)
    assert np.array_equal(stream.feed(model.inputs(x))[0, :, 0], plain)


def test_values_beyond_float32_name_the_input_and_the_remedy(model):
    with np.errstate(over="raise"):  # no overflow on the way to the message
        for x, where in ((np.r_[0, 1e300], r"1e\+300 at index \(1,\)"), (np.array([[0.0, 1], [3, -5e38]]),
                                                                         r"-5e\+38 at index \(1, 1\)")):
            with pytest.raises(nbrnn.AudioError, match=f"Argument 'x' holds values beyond float32's range "
                                                       rf"\(±3.4e\+38\), the first {where}; use dtype='float64'"):
                model.process(x, 48000, dtype="float32")
        cond_model = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")
        with pytest.raises(nbrnn.ArgumentError, match="'cond1' holds values beyond float32's range"):
            cond_model.process(np.zeros(3), 44100, cond=[np.r_[0, 0, -1e39]], dtype="float32")
    assert model.process(np.r_[0, 1e300], 48000)[1] > 1e299


@pytest.mark.parametrize("state,match", [
    (np.zeros(3), r"shape \(16,\) \(one state for every channel\) or \(2, 16\) \(one per channel\), not \(3,\)"),
    (np.zeros((3, 16)), r"not \(3, 16\)"), ("x", "real numbers, not a str"), ([True] * 16, "real numbers.*bool"),
    (np.full(16, np.nan), "16 NaN/Inf value"), (np.r_[np.zeros(15), np.inf], "1 NaN/Inf value"),
])
def test_stream_states_are_checked(state, match):
    from nbrnn.network import check_state

    with pytest.raises(nbrnn.ArgumentError, match=f"Argument 'state' .*{match}"):
        check_state(state, 16, 2, np.float64)
    with pytest.raises(nbrnn.ArgumentError, match="beyond float32's range"):
        check_state(np.full(16, 1e39), 16, 2, np.float32)
    for good in (np.arange(16), np.ones((2, 16)).tolist()):
        assert check_state(good, 16, 2, np.float32).dtype == np.float32
    assert check_state(None, 16, 2, np.float32) is None


def test_stream_reset_checks_its_state():
    model = nbrnn.load_default()  # 16 state values
    stream = model.stream(48000, channels=2)
    for state in (np.zeros(3), "x", np.full(16, np.nan), np.zeros((3, 16))):
        with pytest.raises(nbrnn.ArgumentError, match="Argument 'state'"):
            stream.reset(state)
    stream.reset(np.full((2, 16), 0.1))
    assert np.array_equal(stream.state, np.full((2, 16), 0.1))


# -- misuse of the Python API: one clear error, never a wrong result ----------------------------------------------

@pytest.mark.parametrize("method,kw", [("lagrange", {}), ("resample", {}), ("resample", {"resampler": "fft"}),
                                       ("oversample", {})])
def test_a_finished_stream_takes_no_more_blocks(model, method, kw):
    x = np.sin(np.arange(3000) * 0.05) * 0.5
    stream = model.stream(40000 if method == "oversample" else 46000, method=method, **kw)
    stream.feed(model.inputs(x[:1000]))
    stream.finish()
    for call in (lambda: stream.feed(model.inputs(x[1000:])), stream.finish):
        with pytest.raises(nbrnn.ArgumentError, match="the stream was finished.*stream.reset()"):
            call()
    stream.reset()  # starts again, as a new stream would
    again = np.concatenate([stream.feed(model.inputs(x)), stream.finish()], axis=1)
    fresh = model.stream(40000 if method == "oversample" else 46000, method=method, **kw)
    np.testing.assert_array_equal(again, np.concatenate([fresh.feed(model.inputs(x)), fresh.finish()], axis=1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_diverging_state_is_reported_although_the_output_stays_finite(model, dtype):
    """Lagrange order 1 at R = 3.7 (spectral radius 1.17): the cell state grows by ~1e5 every 100 samples while
    h = o·tanh(c) stays in [-1, 1], so the output alone looks fine."""
    x = 0.4 * np.sin(2 * np.pi * 220 * np.arange(3000) / (3.7 * 44100))
    with pytest.raises(nbrnn.UnstableError, match="diverged with Lagrange order 1"):
        model.process(x, 3.7 * 44100, method="lagrange", order=1, dtype=dtype)
    stream = model.stream(3.7 * 44100, method="lagrange", order=1)
    with pytest.raises(nbrnn.UnstableError, match=r"state grew beyond 3.4e\+38 \(float32's range\), although the "
                                                  r"output stayed finite"):
        for block in np.array_split(x, 30):
            assert np.isfinite(stream.feed(model.inputs(block))).all()


def test_divergence_without_adaptation_is_not_blamed_on_it():
    rec = nbrnn.Recurrent("rnn_relu", np.ones((4, 1)), 1.5 * np.eye(4), np.zeros(4), np.zeros(4))
    relu = nbrnn.Model(nbrnn.Network((rec, nbrnn.Dense(np.ones((1, 4)), [0.0]))))
    for method in ("naive", "resample"):
        with pytest.raises(nbrnn.UnstableError, match="the model diverged with its feedback loop as trained.*"
                                                      "no method makes it stable"):
            relu.process(np.ones(3000), 48000, method=method)


def test_conditioning_order_and_shapes():
    knob = nbrnn.load(GOLDEN / "agm_lstm_l2_i2_h6_skip0.json")  # one knob
    x = np.sin(np.arange(64) * 0.1)
    with pytest.raises(nbrnn.ArgumentError, match="is a set, whose order is arbitrary"):
        knob.process(x, 44100, cond={0.5})
    ramp = np.linspace(0.0, 1.0, 64)
    expected = knob.process(x, 44100, cond=ramp)
    np.testing.assert_array_equal(knob.process(x, 44100, cond=ramp[:, None]), expected)  # (n, channels)


def test_dtype_spellings_and_warmup_types(model):
    x = np.sin(np.arange(200) * 0.1)
    y = model.process(x, 48000, warmup=0.01)
    np.testing.assert_array_equal(model.process(x, 48000, dtype=">f8", warmup=np.float32(0.01)), y)
    assert model.process(x, 48000, dtype=">f4").dtype == np.float32
    with pytest.raises(nbrnn.ArgumentError, match="'warmup' must be a number of seconds from 0 to 60, not 'soon'"):
        model.process(x, 48000, reset=False, warmup="soon")
    with pytest.raises(nbrnn.ArgumentError, match="'warmup' must be between 0 and 60 seconds, not 61.0"):
        nbrnn.Model(model.network, warmup=np.float64(61))


def test_a_failed_reset_leaves_nothing_to_continue(model):
    x = np.sin(np.arange(500) * 0.1)
    first = model.process(x, 48000)
    with pytest.raises(nbrnn.ArgumentError, match="not a fraction"):
        model.process(x, 47999, method="resample")
    # reset=False with nothing to continue starts afresh; it must not carry on from the first call
    np.testing.assert_array_equal(model.process(x, 48000, reset=False), first)


@pytest.mark.parametrize("rate,kw,match", [
    (100, {"method": "oversample"}, r"100/44100 Hz = 0.00226757 would need oversampling by 441, more than 64: "
                                    r"use method 'resample'"),
    (40000, {"method": "oversample", "inner": "cubic", "inner_order": 5},
     r"inner='cubic' means Lagrange order 3; got inner_order=5"),
    # was accepted, then asked for a 'kernel', which oversample refuses
    (40000, {"method": "oversample", "inner": "fir"}, r"'inner' must be one of naive, integer, linear, lagrange, "
                                                       r"allpass, minimax, stn \(or an alias: .*\), not 'fir'"),
    (48000, {"method": "fir", "kernel": np.array([1 + 1j])}, "1-D array of real numbers"),
    (48000, {"method": "fir", "kernel": np.ones(70000)}, "at most 65536 taps, not 70000"),
    (48000, {"method": "fir", "kernel": [1e39, 1.0], "dtype": "float32"},
     r"tap weight 1e\+39 is beyond float32's range; use dtype='float64'"),
])
def test_method_options_are_checked(model, rate, kw, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning or overflow warning on the way
        with pytest.raises(nbrnn.ArgumentError, match=match):
            model.process(np.zeros(100), rate, **kw)


def test_save_arguments(model, tmp_path):
    with pytest.raises(nbrnn.ArgumentError, match="'overwrite' must be True or False, not 'no'"):
        model.save(tmp_path / "m.npz", overwrite="no")
    with pytest.raises(nbrnn.OutputError, match="NUL character"):
        model.save(str(tmp_path / "a\0.npz"))
    model.save(bytes(tmp_path / "b.npz"))
    assert nbrnn.load(tmp_path / "b.npz").network.skip == model.network.skip


def test_reference_and_stability_check_their_arguments(model):
    from nbrnn import reference, stability

    plan = model.plan(48000)
    for args, match in [((model, np.zeros((4, 1))), "'network' must be an nbrnn Network"),
                        ((model.network, np.zeros(4)), r"shape \(n, inputs = 1\), not \(4,\)"),
                        ((model.network, np.full((4, 1), np.nan)), "NaN/Inf")]:
        with pytest.raises(nbrnn.ArgumentError, match=match):
            reference.run(*args, plan)
    with pytest.raises(nbrnn.ArgumentError, match="'model' must be an nbrnn Model"):
        stability.spectral_radius("m", 44100)
    # NaN seconds ended in int(NaN)'s ValueError, 1e9 in a MemoryError, -1 passed; a short state in numpy's
    # matmul error deep in reference.step, eps=0 in a NaN matrix
    size = sum(layer.state_size for layer in model.network.recurrent_layers)
    for seconds in (float("nan"), 1e9, -1, 0, True, "1"):
        with pytest.raises(nbrnn.ArgumentError, match="'seconds' must be a number above 0 and at most 60, not"):
            stability.fixed_point(model, seconds=seconds)
    state = stability.fixed_point(model)
    for bad, match in [(np.zeros(size + 1), rf"shape \({size},\) \(every recurrent layer's state\), not a float64 "
                                            rf"array of shape \({size + 1},\)"),
                       (list(state), "not a list"), (np.full(size, np.nan), "'state' holds NaN/Inf")]:
        with pytest.raises(nbrnn.ArgumentError, match=match):
            stability.jacobian(model, bad)
    for eps in (0, float("nan"), -1e-6, 2.0):
        with pytest.raises(nbrnn.ArgumentError, match="'eps' must be a number above 0 and at most 1, not"):
            stability.jacobian(model, state, eps=eps)
    assert stability.jacobian(model, state).shape == (size, size)


def test_a_json_model_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + LSTM.read_bytes())
    x = np.sin(np.arange(100) * 0.1)
    np.testing.assert_array_equal(nbrnn.load(path).process(x, 44100), nbrnn.load(LSTM).process(x, 44100))


def test_a_device_is_not_read_as_a_model():
    with pytest.raises(nbrnn.ModelFormatError, match="'/dev/zero' is a device, not a file"):
        nbrnn.load("/dev/zero")  # it used to read 2 GiB before refusing


def test_knob_names_from_a_file_are_shown_on_one_line():
    """The names were joined raw into messages: a name holding a line break or a terminal escape broke the one-line
    message; and every one of 1023 names was listed. Accented names are kept as they are."""
    names = ("audio", "dr\u00efve \u2603", "evil\n\x1b[31m") + tuple(f"k{i}" for i in range(20))
    knob = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0] * len(names)], [0.0]),), input_names=names))
    with pytest.raises(nbrnn.ArgumentError) as info:
        knob.process(np.zeros(4), 44100, cond={"x": 1.0})
    text = str(info.value)
    assert "\n" not in text and "\x1b" not in text and "evil\\n\\x1b[31m" in text and "dr\u00efve \u2603" in text
    assert "(22 in all)" in text and "k19" not in text
    assert "dr\u00efve \u2603" in knob.info()
    with pytest.raises(nbrnn.ArgumentError, match="misses a value for") as info:  # all but one missing
        knob.process(np.zeros(4), 44100, cond={"k0": 1.0})
    assert "\n" not in str(info.value) and "(21 in all)" in str(info.value) and "k19" not in str(info.value)


def test_a_render_names_the_knobs_on_one_line(tmp_path):
    import soundfile as sf

    from nbrnn.render import render

    names = ("audio", "evil\n\x1b[31m") + tuple(f"k{i}" for i in range(20))
    knob = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0] * len(names)], [0.0]),), input_names=names))
    sf.write(tmp_path / "in.wav", np.zeros(100), 48000)
    with pytest.raises(nbrnn.ArgumentError, match=r"conditioning input\(s\) evil\\n\\x1b\[31m, k0") as info:
        render(tmp_path / "in.wav", tmp_path / "out.wav", knob, progress=False)
    assert "\n" not in str(info.value) and "(21 in all)" in str(info.value)
    assert "--cond evil\\n\\x1b[31m=0.5" in str(info.value)


def test_a_render_cuts_a_long_knob_name_in_its_value_message(tmp_path):
    import soundfile as sf

    from nbrnn.render import render

    knob = nbrnn.Model(nbrnn.Network((nbrnn.Dense([[1.0, 1.0]], [0.0]),), input_names=("audio", "k" * 100000)))
    sf.write(tmp_path / "in.wav", np.zeros(100), 48000)
    with pytest.raises(nbrnn.ArgumentError, match="must be one finite real number when rendering") as info:
        render(tmp_path / "in.wav", tmp_path / "out.wav", knob, cond=[np.zeros(100)], progress=False)
    assert len(str(info.value)) < 300
