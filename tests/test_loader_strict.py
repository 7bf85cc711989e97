"""What a model file holds is what runs, or the file is refused with one readable line.

Tensors a model would not use, half-written biases, duplicated archive records, a module order that gives
no audio model, numbers spelled as text, and archives that declare far more than any model holds; AIDA-X's
gains; what a loader may echo from a file into a message.  The numbers come from the PyTorch-made goldens
(tests/data/golden, tools/make_goldens.py).
"""

import io
import json
import time
import warnings
import zipfile

import numpy as np
import pytest

import nbrnn
from conftest import GOLDEN, run_golden
from nbrnn.formats.safetensors import write_safetensors

TORCH_JSON = GOLDEN / "torch_lstm8_gru6x2.json"  # lstm (1 -> 8), gru2 (8 -> 6, two layers), dense (6 -> 1)
AGM = GOLDEN / "agm_lstm_l1_i1_h8_skip1.json"


def _golden(name):
    return np.load(GOLDEN / name.replace(".json", ".npz"))


def _json(tmp_path, obj, name="m.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def _torch_sd():
    return json.loads(TORCH_JSON.read_text())


# --- the module order --------------------------------------------------------------------------------------

def test_linear_registered_before_its_rnn_runs_after_it(tmp_path):
    """state_dict() lists modules in the order they were registered; a Linear defined before the RNN it follows
    comes first.  The one order that gives an audio model is used: the golden output, not a 6-output network."""
    sd = _torch_sd()
    moved = {k: v for k, v in sd.items() if k.startswith("dense.")} | {k: v for k, v in sd.items()
                                                                       if not k.startswith("dense.")}
    assert list(moved)[0] == "dense.weight"
    model = nbrnn.load(_json(tmp_path, moved))
    assert [layer.describe() for layer in model.network.layers] == ["LSTM 1->8", "GRU 8->6", "GRU 6->6",
                                                                    "Dense 6->1"]
    data = _golden(TORCH_JSON.name)
    np.testing.assert_allclose(run_golden(model, data["x"], "float64"), data["y64"][:, 0], rtol=0, atol=1e-12)


def test_a_file_order_of_many_outputs_stays_when_no_other_order_fits(tmp_path):
    """An RNN followed by a Linear of three outputs is no audio effect, but it is what the file says and no other
    order chains: it runs as written."""
    sd = {"rnn.weight_ih_l0": [[1.0]], "rnn.weight_hh_l0": [[0.0]], "out.weight": [[1.0], [2.0], [3.0]]}
    net = nbrnn.load(_json(tmp_path, sd)).network
    assert [layer.describe() for layer in net.layers] == ["RNN(tanh) 1->1", "Dense 1->3"]


# --- tensors the model would not use ---------------------------------------------------------------------

@pytest.mark.parametrize("extra,match", [
    ({"pre.weight": [[1.0]]}, r"1 tensor\(s\) an AGM model \(rec, lin\) does not use: 'pre.weight'"),
    ({"rec.bias_ih_l7": [0.0] * 32}, r"recurrent layers of 'rec\.' are not numbered 0\.\.7: 0, 7"),
    ({"rec.weight_ih_l0_reverse": [[0.0]] * 32}, "does not use: 'rec.weight_ih_l0_reverse'"),
])
def test_agm_tensors_beside_the_model_are_refused(tmp_path, extra, match):
    obj = json.loads(AGM.read_text())
    obj["state_dict"].update(extra)
    with pytest.raises(nbrnn.ModelFormatError, match=match):
        nbrnn.load(_json(tmp_path, obj))


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd.update({"gru2.bias_ih_l7": [0.0]}), r"layers of 'gru2\.' are not numbered 0\.\.7: 0, 1, 7"),
    (lambda sd: sd.update({"gru2.weight_hh_l00": sd["gru2.weight_hh_l0"]}),
     r"'gru2\.weight_hh_l00' is not a PyTorch layer name \(layer numbers have no leading zeros\)"),
    (lambda sd: sd.update({"lstm.weight": [[1.0]]}), r"'lstm\.weight' names a Linear layer, but 'lstm\.' is an RNN"),
    (lambda sd: sd.pop("gru2.bias_hh_l1"), r"'gru2\.bias_ih_l1' has no partner 'gru2\.bias_hh_l1'"),
    (lambda sd: sd.pop("lstm.bias_ih_l0"), r"'lstm\.bias_hh_l0' has no partner 'lstm\.bias_ih_l0'"),
    (lambda sd: sd["gru2.bias_ih_l1"].pop(), r"'gru2\.bias_ih_l1' must have shape \(18,\) \(3\*H\), not \(17,\)"),
    (lambda sd: sd["dense.bias"].append(0.0), r"'dense\.bias' must have shape \(1,\)"),
])
def test_state_dict_tensors_must_make_whole_layers(tmp_path, change, match):
    """A stray layer number, a name PyTorch does not write, a Linear name on an RNN module or one bias of two:
    each would silently run another network than the file's.  Shape errors name the file and the tensor."""
    sd = _torch_sd()
    change(sd)
    path = _json(tmp_path, sd)
    with pytest.raises(nbrnn.ModelFormatError, match=match) as info:
        nbrnn.load(path)
    assert str(path) in str(info.value)


def test_no_biases_at_all_is_bias_false(tmp_path):
    """nn.LSTM(bias=False) writes neither bias: zeros, the same as writing both as zeros."""
    sd = _torch_sd()
    without = {k: v for k, v in sd.items() if "bias_" not in k}
    zeros = {k: (np.zeros(len(v)).tolist() if "bias_" in k else v) for k, v in sd.items()}
    x = _golden(TORCH_JSON.name)["x"][:200, 0]
    a = nbrnn.load(_json(tmp_path, without, "a.json")).process(x, 44100)
    b = nbrnn.load(_json(tmp_path, zeros, "b.json")).process(x, 44100)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("bias_fl,drop,match", [
    (False, True, None),
    (0, True, None),
    (False, False, "bias_fl is false but the state_dict holds tensor 'lin.bias'"),
    (True, True, "bias_fl is true but the state_dict lacks tensor 'lin.bias'"),
    ("no", True, "bias_fl must be true or false, not 'no'"),
])
def test_agm_output_layer_without_bias(tmp_path, bias_fl, drop, match):
    """CoreAudioML's SimpleRNN(bias_fl=False) saves no 'lin.bias': a zero bias, as when it is saved as zeros."""
    obj = json.loads(AGM.read_text())
    obj["model_data"]["bias_fl"] = bias_fl
    zeros = json.loads(AGM.read_text())
    zeros["state_dict"]["lin.bias"] = [0.0]
    if drop:
        del obj["state_dict"]["lin.bias"]
    path = _json(tmp_path, obj)
    if match:
        with pytest.raises(nbrnn.ModelFormatError, match=match):
            nbrnn.load(path)
        return
    x = _golden(AGM.name)["x"][:200, 0]
    assert np.array_equal(nbrnn.load(path).process(x, 44100),
                          nbrnn.load(_json(tmp_path, zeros, "z.json")).process(x, 44100))


@pytest.mark.parametrize("value", [True, [True, 0.5], "0.5", [["0.5"]], [0.5, None], [[0.5], "x"]])
def test_json_weights_hold_numbers_only(tmp_path, value):
    """numpy reads true as 1.0 and "0.5" as 0.5; a model file that spells a weight so is malformed."""
    sd = _torch_sd()
    sd["dense.bias"] = value
    with pytest.raises(nbrnn.ModelShapeError, match="'dense.bias' (must hold numbers only|must be a|holds .*null)"):
        nbrnn.load(_json(tmp_path, sd))


# --- rnn_nonlinearity ------------------------------------------------------------------------------------

RELU_NET = {"rnn.weight_ih_l0": [[1.0], [-1.0]], "rnn.weight_hh_l0": [[0.0, 0.0], [0.0, 0.0]],
            "rnn.bias_ih_l0": [0.0, 0.0], "rnn.bias_hh_l0": [0.0, 0.0], "lin.weight": [[1.0, 1.0]], "lin.bias": [0.0]}


@pytest.mark.parametrize("suffix", [".json", ".npz", ".safetensors"])
def test_rnn_nonlinearity_applies_to_every_file_of_pytorch_names(tmp_path, suffix):
    """relu(x) + relu(-x) = |x|, tanh(x) + tanh(-x) = 0: the argument reaches every container of PyTorch names."""
    arrays = {k: np.array(v) for k, v in RELU_NET.items()}
    path = tmp_path / f"rnn{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(RELU_NET))
    elif suffix == ".npz":
        np.savez(path, **arrays)
    else:  # safetensors sorts the names: two orders of lin (2 -> 1) and rnn (1 -> 2) would chain
        write_safetensors(path, arrays, {"module_order": '["rnn.", "lin."]'})
    x = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(nbrnn.load(path).process(x, 44100), 0.0, atol=1e-15)
    np.testing.assert_allclose(nbrnn.load(path, rnn_nonlinearity="relu").process(x, 44100), np.abs(x), atol=1e-15)


def test_rnn_nonlinearity_that_a_file_contradicts_is_an_error(tmp_path):
    arrays = {k: np.array(v) for k, v in RELU_NET.items()}
    tagged = tmp_path / "tagged.safetensors"
    write_safetensors(tagged, arrays, {"rnn_nonlinearity": "tanh", "module_order": '["rnn.", "lin."]'})
    with pytest.raises(nbrnn.ArgumentError, match="'rnn_nonlinearity' is 'relu', but .* records its RNN layers as "
                                                  "tanh"):
        nbrnn.load(tagged, rnn_nonlinearity="relu")
    agm = GOLDEN / "agm_rnn_l1_i1_h16_skip0.json"  # CoreAudioML's RNN is tanh
    with pytest.raises(nbrnn.ArgumentError, match="records its RNN layers as tanh"):
        nbrnn.load(agm, rnn_nonlinearity="relu")
    assert nbrnn.load(agm, rnn_nonlinearity="tanh").network.layers[0].cell == "rnn_tanh"
    assert nbrnn.load(AGM, rnn_nonlinearity="relu").network.layers[0].cell == "lstm"  # no RNN layer: nothing to say


# --- archives ------------------------------------------------------------------------------------------------

def _npy(shape, dtype="<f8", body=b""):
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


def _zip(tmp_path, members, name="m.npz", compression=zipfile.ZIP_STORED):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names, which some of these hold on purpose
        for member, data in members:
            zf.writestr(member, data)
    return path


def test_npz_arrays_declaring_more_than_a_model_are_refused_unread(tmp_path):
    """A header that declares 2**25 + 1 values is refused before a byte of it is unpacked (a small file that
    inflates to gigabytes used to be read whole first)."""
    small = _npy((2, 1), body=np.zeros(2).tobytes())
    path = _zip(tmp_path, [("lin.bias.npy", small), ("rnn.weight_ih_l0.npy", _npy(((1 << 25) + 1,)) + b"\0" * 64)])
    start = time.perf_counter()
    with pytest.raises(nbrnn.ModelFormatError, match=r"arrays declare more than 33554432 values \(at "
                                                     r"'rnn.weight_ih_l0.npy', shape \(33554433,\)\)"):
        nbrnn.load(path)
    assert time.perf_counter() - start < 10  # not a timing assertion on speed: a bound on reading 256 MiB


@pytest.mark.parametrize("name", ["lin.bias.npy", "__metadata__.npy"])
def test_npz_with_a_member_twice_is_refused(tmp_path, name):
    """Zip tools disagree on which of two records of one name counts."""
    arrays = {k: np.array(v) for k, v in RELU_NET.items()}
    buf = io.BytesIO()
    np.savez(buf, __metadata__=np.array("{}"), **arrays)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    members.append((name, dict(members)[name]))
    with pytest.raises(nbrnn.ModelFormatError, match=f"holds '{name}' twice"):
        nbrnn.load(_zip(tmp_path, members))


def test_torch_zip_with_a_record_twice_is_refused(tmp_path):
    """torch.load reads the first copy of a record, zipfile the last: checking a file with torch would prove
    nothing about what nbrnn runs."""
    src = GOLDEN.parent / "pickles" / "lstm_zip.pt"
    with zipfile.ZipFile(src) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    data = next(m for m in members if "/data/" in m[0])
    members.append((data[0], bytes(len(data[1]))))
    path = _zip(tmp_path, members, "twice.pt")
    with pytest.raises(nbrnn.ModelFormatError, match="holds record '.*/data/.*' twice"):
        nbrnn.load(path)


def test_archives_listing_more_arrays_than_a_model_are_refused_at_once(tmp_path):
    from nbrnn.formats._common import MAX_ENTRIES

    many = _zip(tmp_path, [(f"a{i}.npy", b"") for i in range(MAX_ENTRIES + 1)])
    with pytest.raises(nbrnn.ModelFormatError, match=f"lists {MAX_ENTRIES + 1} arrays; a model has at most"):
        nbrnn.load(many)
    arrays = {f"t{i}": np.zeros(1) for i in range(MAX_ENTRIES + 1)}
    write_safetensors(tmp_path / "many.safetensors", arrays, {})
    with pytest.raises(nbrnn.ModelFormatError, match=f"lists {MAX_ENTRIES + 1} tensors; a model has at most"):
        nbrnn.load(tmp_path / "many.safetensors")


def test_json_beyond_its_limit_is_refused(tmp_path, monkeypatch):
    from nbrnn.formats import _common

    monkeypatch.setattr(_common, "MAX_JSON_BYTES", 1000)
    with pytest.raises(nbrnn.ModelFormatError, match="bytes of JSON; the limit for a JSON model is 1000 bytes"):
        nbrnn.load(TORCH_JSON)


@pytest.mark.parametrize("value,match", [("nan", "nan"), ("-1", "-1"), ("61", "61"), ("soon", "soon")])
def test_stored_prewarm_must_be_seconds(tmp_path, value, match):
    path = tmp_path / "nam.safetensors"
    nbrnn.load(GOLDEN / "nam_lstm_l1_h3.nam").save(path)
    from nbrnn.formats.safetensors import read_safetensors

    arrays, meta = read_safetensors(path)
    write_safetensors(path, arrays, dict(meta, **{"nbrnn.prewarm_seconds": value}))
    with pytest.raises(nbrnn.ModelFormatError, match=f"'nbrnn.prewarm_seconds' must be a number from 0 to 60 "
                                                     f"seconds, not '{match}'"):
        nbrnn.load(path)


def test_a_path_given_as_bytes(tmp_path):
    assert nbrnn.load(bytes(TORCH_JSON)).network.source == str(TORCH_JSON)


# --- what reaches a message ----------------------------------------------------------------------------------

def test_messages_escape_and_shorten_what_a_file_says(tmp_path):
    """A file's names can hold terminal escape codes, line breaks or megabytes: a message stays one short line."""
    sd = _torch_sd()
    sd["\x1b[31mx\nnbrnn: all good\x1b[0m"] = [0.0]
    with pytest.raises(nbrnn.ModelFormatError) as info:
        nbrnn.load(_json(tmp_path, sd))
    text = str(info.value)
    assert "\x1b" not in text and "\n" not in text and "\\x1b[31mx\\nnbrnn" in text
    sd = _torch_sd()
    sd["dense.bias_" + "y" * 5_000_000] = [0.0]
    with pytest.raises(nbrnn.ModelFormatError) as info:
        nbrnn.load(_json(tmp_path, sd))
    assert len(str(info.value)) < 400
    keras = {"in_shape": [None, None, 1], "layers": [{"type": "conv1d" * 500_000}]}
    with pytest.raises(nbrnn.ModelFormatError, match=r"has type 'conv1dconv1d.*\.\.\.; nbrnn runs") as info:
        nbrnn.load(_json(tmp_path, keras))
    assert len(str(info.value)) < 400


def test_a_quoted_value_is_escaped_once(tmp_path):
    """A value shown as Python writes it (repr) had its escapes escaped again: two backslashes before x1b."""
    agm = json.loads(AGM.read_text())
    agm["model_data"]["unit_type"] = "\x1b[31mEVIL\n" + "x" * 500
    with pytest.raises(nbrnn.ModelFormatError) as info:
        nbrnn.load(_json(tmp_path, agm))
    text = str(info.value)
    assert "\x1b" not in text and "\n" not in text and len(text) < 400, text
    assert "'\\x1b[31mEVIL\\nxxx" in text and "\\\\" not in text, text


def test_info_escapes_input_names(tmp_path):
    arrays = {k: np.array(v) for k, v in RELU_NET.items()}
    write_safetensors(tmp_path / "n.safetensors", arrays, {"input_names": json.dumps(["a\x1b[2Jb"]),
                                                           "module_order": '["rnn.", "lin."]'})
    text = nbrnn.load(tmp_path / "n.safetensors").info()
    assert "\x1b" not in text and "a\\x1b[2Jb" in text


# --- AIDA-X gains ----------------------------------------------------------------------------------------------

def _keras(**extra):
    dense = {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [[[0.5], [-0.25]], [0.1]]}
    rng = np.random.default_rng(5)
    lstm = {"type": "lstm", "activation": "tanh", "shape": [None, None, 2],
            "weights": [rng.normal(0, 0.5, (1, 8)).tolist(), rng.normal(0, 0.5, (2, 8)).tolist(),
                        rng.normal(0, 0.1, 8).tolist()]}
    return dict({"in_shape": [None, None, 1], "in_skip": 1, "layers": [lstm, dense]}, **extra)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_aidax_gains_apply_as_the_aidax_runtime_does(tmp_path, dtype):
    """AIDA-X's runtime multiplies the audio by in_gain, adds the network's output to it (in_skip) and multiplies
    the sum by out_gain: y = G·(net(g·x) + g·x).  The same file without the gains gives net."""
    gained = nbrnn.load(_json(tmp_path, _keras(in_gain=12.0, out_gain=-6.0), "g.json"))
    bare = nbrnn.load(_json(tmp_path, _keras(in_skip=0), "p.json"))
    ungained = nbrnn.load(_json(tmp_path, _keras(), "u.json"))
    g, G = 10 ** (12 / 20), 10 ** (-6 / 20)
    assert (gained.network.input_gain, gained.network.output_gain) == pytest.approx((g, G), rel=1e-15)
    x = 0.3 * np.sin(np.arange(600) * 0.05)
    tol = 1e-14 if dtype == "float64" else 2e-6
    for method in ("naive", "lagrange"):
        want = G * (bare.process(g * x, 96000, method=method, dtype=dtype) + g * x)
        np.testing.assert_allclose(gained.process(x, 96000, method=method, dtype=dtype), want, rtol=0, atol=tol)
    # resampled, the skip runs at the trained rate too, inside the resamplers: the gains wrap the whole model
    want = G * ungained.process(g * x, 96000, method="resample", dtype=dtype)
    np.testing.assert_allclose(gained.process(x, 96000, method="resample", dtype=dtype), want, rtol=0, atol=tol)
    from nbrnn import reference

    plan = gained.plan(96000, "lagrange")
    np.testing.assert_allclose(reference.run(gained.network, x[:, None], plan)[:, 0],
                               gained.process(x, 96000), rtol=0, atol=1e-13)
    assert "input gain:   +12 dB (×3.981) on the audio input" in gained.info()
    assert "output gain:  -6 dB (×0.5012) on the output" in gained.info()


def test_aidax_gains_survive_export(tmp_path):
    model = nbrnn.load(_json(tmp_path, _keras(in_gain=-3.5, out_gain=20.0)))
    x = 0.2 * np.cos(np.arange(300) * 0.1)
    for suffix in (".npz", ".safetensors"):
        model.save(tmp_path / f"m{suffix}")
        back = nbrnn.load(tmp_path / f"m{suffix}")
        assert (back.network.input_gain, back.network.output_gain) == (model.network.input_gain,
                                                                       model.network.output_gain)
        assert np.array_equal(back.process(x, 48000), model.process(x, 48000))


@pytest.mark.parametrize("extra,match", [
    ({"in_gain": "6"}, "'in_gain' must be a gain in dB from -120 to \\+120, not '6'"),
    ({"out_gain": 121}, "'out_gain' must be a gain in dB from -120 to \\+120, not 121"),
    ({"in_gain": True}, "'in_gain' must be a gain in dB"),
])
def test_aidax_gains_out_of_range(tmp_path, extra, match):
    with pytest.raises(nbrnn.ModelFormatError, match=match):
        nbrnn.load(_json(tmp_path, _keras(**extra)))


@pytest.mark.parametrize("value,match", [(0.0, "from 1e-06 to 1e\\+06"), (float("nan"), "not nan"),
                                         ("2", "must be a number"), (True, "must be a number")])
def test_network_gains_are_checked(value, match):
    with pytest.raises(nbrnn.ArgumentError, match=f"'input_gain' {match}|'input_gain'.*{match}"):
        nbrnn.Network((nbrnn.Dense([[1.0]], [0.0]),), input_gain=value)


# --- what a format leaves unsaid, and what it says once too often ------------------------------------------

def test_agm_file_without_skip_gets_coreaudioml_default(tmp_path):
    """CoreAudioML's load_model builds SimpleRNN(**model_data), whose skip defaults to 1: a file without the key
    runs with the dry signal added, as the PyTorch golden of the same weights (made with skip 1) says."""
    obj = json.loads(AGM.read_text())
    del obj["model_data"]["skip"]
    model = nbrnn.load(_json(tmp_path, obj))
    assert model.network.skip == 1
    data = _golden(AGM.name)
    np.testing.assert_allclose(run_golden(model, data["x"], "float64"), data["y64"][:, 0], rtol=0, atol=1e-12)


def test_agm_skip_that_coreaudioml_broadcasts_is_refused(tmp_path):
    """lin(x) + x[..., :skip]: with skip 1 and two outputs, input 0 goes to both outputs (broadcast)."""
    obj = json.loads(AGM.read_text())
    lin = obj["state_dict"]["lin.weight"]
    obj["state_dict"]["lin.weight"] = lin + lin
    obj["state_dict"]["lin.bias"] = obj["state_dict"]["lin.bias"] * 2
    obj["model_data"]["output_size"] = 2
    with pytest.raises(nbrnn.ModelFormatError, match=r"skip = 1 with output_size = 2: CoreAudioML adds"):
        nbrnn.load(_json(tmp_path, obj))
    obj["model_data"]["skip"] = 0
    assert nbrnn.load(_json(tmp_path, obj)).network.output_size == 2


def test_a_model_loads_by_its_full_path_from_a_folder_that_is_gone(tmp_path, monkeypatch):
    """Keeping the source from the root asked for the current folder even for a full path: FileNotFoundError."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert nbrnn.load(AGM).network.source == str(AGM)


@pytest.mark.parametrize("path", [AGM, TORCH_JSON])
def test_a_caller_skip_the_model_cannot_take_names_the_argument(path):
    """It was a ModelShapeError about the network, as if the file were at fault."""
    assert nbrnn.load(path, skip=1).network.skip == 1
    with pytest.raises(nbrnn.ArgumentError, match=r"Argument 'skip' must be from 0 to 1 for '.*' \(1 input\(s\), "
                                                  r"1 output\(s\)\), not 5"):
        nbrnn.load(path, skip=5)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_nbrnn_layout_arrays_no_layer_uses_are_refused(tmp_path, suffix):
    """A cut 'nbrnn.layers' list ran a shorter network; a stray array was ignored."""
    from nbrnn.formats.containers import to_arrays

    arrays, meta = to_arrays(nbrnn.load(TORCH_JSON).network)

    def write(arrays, meta):
        path = tmp_path / f"m{suffix}"
        path.unlink(missing_ok=True)
        if suffix == ".npz":
            np.savez(path, __metadata__=np.array(json.dumps(meta)), **arrays)
        else:
            write_safetensors(path, arrays, meta)
        return path

    assert len(nbrnn.load(write(arrays, meta)).network.layers) == 4
    cut = dict(meta, **{"nbrnn.layers": json.dumps(json.loads(meta["nbrnn.layers"])[:3])})
    with pytest.raises(nbrnn.ModelFormatError, match=r"holds 2 array\(s\) the 3 layer\(s\) of 'nbrnn.layers' do "
                                                     r"not use: 'layers.3.(weight|bias)', 'layers.3.(weight|bias)'"):
        nbrnn.load(write(arrays, cut))
    with pytest.raises(nbrnn.ModelFormatError, match=r"do not use: 'layers.3.h0'"):
        nbrnn.load(write(dict(arrays, **{"layers.3.h0": np.zeros(1)}), meta))


def test_pytorch_names_of_more_modules_than_layers_are_refused_before_building(tmp_path):
    """Each RNN module was looked up by scanning every name: 16000 modules took 51 s to reach the layer limit."""
    sd = {f"m{i}.weight_ih_l0": [[0.0]] for i in range(300)} | {f"m{i}.weight_hh_l0": [[0.0]] for i in range(300)}
    with pytest.raises(nbrnn.ModelFormatError, match="the tensors name 300 modules; a network has at most 256"):
        nbrnn.load(_json(tmp_path, sd))


def test_keras_linear_activation_layers_change_nothing(tmp_path):
    """An activation layer of 'linear' is the identity: it adds no layer (after a recurrent layer it added an
    identity dense layer, and each one after a linear dense layer copied that layer anew)."""
    golden = GOLDEN / "keras_selu_lstm8_softplus_gelu.json"
    obj = json.loads(golden.read_text())
    identity = [{"type": "activation", "activation": "linear"}, {"type": "activation"}] * 300
    obj["layers"] = obj["layers"][:2] + identity + obj["layers"][2:3] + identity + obj["layers"][3:]
    model = nbrnn.load(_json(tmp_path, obj))
    assert len(model.network.layers) == 5
    data = _golden(golden.name)
    np.testing.assert_allclose(run_golden(model, data["x"], "float64"), data["y64"][:, 0], rtol=0, atol=1e-12)


def test_nam_architecture_in_a_message_is_cut(tmp_path):
    obj = {"architecture": "\x1b[2J" + "W" * 200_000, "config": {}, "weights": []}
    with pytest.raises(nbrnn.ModelFormatError, match=r"NAM architecture '\\x1b\[2JWWW.*\.\.\. is not") as info:
        nbrnn.load(_json(tmp_path, obj))
    assert len(str(info.value)) < 400
