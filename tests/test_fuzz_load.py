"""Fuzzing nbrnn.load (and a short process) with mutated files of every format.

Whatever a file holds, the only exceptions are NbrnnError subclasses (never a Numba
TypingError, KeyError, RecursionError ...), nothing is executed, and no load takes
more than a few seconds.  CI runs a few hundred cases; a dedicated run takes more:

    NBRNN_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_load.py -q
"""

import copy
import json
import os
import pickle
import random
import time
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbrnn
from conftest import GOLDEN, ROOT

EXAMPLES = int(os.environ.get("NBRNN_FUZZ_EXAMPLES", "150"))
LOAD_BOUND = 5.0  # seconds
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
PICKLES = ROOT / "tests" / "data" / "pickles"


def _keras_json() -> bytes:
    """A small RTNeural-Keras file built from a golden GRU (Keras layout: kernels transposed, z/r/h order)."""
    net = nbrnn.load(GOLDEN / "agm_gru_l1_i1_h12_skip1.json").network
    gru, dense = net.layers
    h = gru.hidden_size
    order = np.r_[h:2 * h, 0:h, 2 * h:3 * h]
    layers = [
        {"type": "time-distributed-dense", "activation": "tanh", "shape": [None, None, 1],
         "weights": [[[1.0]], [0.0]]},
        {"type": "gru", "activation": "tanh", "shape": [None, None, h],
         "weights": [gru.weight_ih[order].T.tolist(), gru.weight_hh[order].T.tolist(),
                     [gru.bias_ih[order].tolist(), gru.bias_hh[order].tolist()]]},
        {"type": "dense", "activation": "", "shape": [None, None, 1],
         "weights": [dense.weight.T.tolist(), dense.bias.tolist()]},
    ]
    return json.dumps({"in_shape": [None, None, 1], "in_skip": 1, "samplerate": "44100", "layers": layers}).encode()


_SEEDS = []


def _seeds(folder):
    """Valid files of every format, as (suffix, bytes) (built once; not a fixture, so failures print short)."""
    if _SEEDS:
        return _SEEDS
    out = [(".json", (GOLDEN / "agm_lstm_l2_i2_h6_skip0.json").read_bytes()),
           (".json", (GOLDEN / "torch_lstm8_gru6x2.json").read_bytes()),
           (".nam", (GOLDEN / "nam_lstm_l1_h3.nam").read_bytes()),
           (".json", _keras_json())]
    model = nbrnn.load(GOLDEN / "agm_rnn_l2_i1_h5_skip1.json")
    for suffix in (".npz", ".safetensors"):
        model.save(folder / f"m{suffix}")
        out.append((suffix, (folder / f"m{suffix}").read_bytes()))
    for name in ("lstm_zip.pt", "lstm_legacy.pt"):
        if (PICKLES / name).exists():
            out.append((".pt", (PICKLES / name).read_bytes()))
    _SEEDS.extend(out)
    return _SEEDS


def _try(path, marker=None):
    """Load and run; return the outcome. Anything but success or an NbrnnError fails the test.

    Only the load is timed, against a bound far above a normal load (milliseconds): it catches a file that
    makes the parser hang or blow up. The run is not timed: a mutated shape may need a kernel compiled for it
    (seconds, once), which says nothing about the file."""
    start = time.perf_counter()
    loaded = None
    try:
        model = nbrnn.load(path)
        loaded = time.perf_counter() - start
        x = np.linspace(-0.5, 0.5, 64)
        model.process(x, model.trained_rate * 1.5, cond=[0.5] * len(model.conditioning_names), method="lagrange")
        outcome = "ok"
    except nbrnn.NbrnnError as exc:
        assert str(exc), "an error without a message"
        outcome = type(exc).__name__
    elapsed = time.perf_counter() - start if loaded is None else loaded
    assert elapsed < LOAD_BOUND, f"a single load took {elapsed:.2f} s"
    if marker is not None:
        assert not marker.exists(), "code from the model file was executed"
    return outcome


BAD_VALUES = [None, "abc", "", -1, 0, 1, 10 ** 9, 10 ** 30, 1e308, -1e308, 0.5, True, [], {}, [[]], [None],
              [1, [2]], {"a": 1}, "NaN", [1e308] * 3]


def _paths(obj, prefix=()):
    yield prefix
    if len(prefix) > 12:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list) and obj:
        for i in {0, len(obj) - 1}:
            yield from _paths(obj[i], prefix + (i,))


def _set(obj, path, value):
    if not path:
        return value
    target = obj
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, list) and path[-1] == "drop":
        target.pop()
    else:
        target[path[-1]] = value
    return obj


@FUZZ
@given(data=st.data())
def test_structured_json_mutations(tmp_path_factory, data):
    json_seeds = [(s, b) for s, b in _seeds(tmp_path_factory.mktemp("seeds")) if s in (".json", ".nam")]
    suffix, raw = data.draw(st.sampled_from(json_seeds))
    obj = json.loads(raw)
    paths = list(_paths(obj))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        kind = data.draw(st.sampled_from(["value", "deep", "drop", "dup"]))
        try:
            if kind == "value":
                obj = _set(obj, path, copy.deepcopy(data.draw(st.sampled_from(BAD_VALUES))))
            elif kind == "deep":  # spliced into the text below: json.dumps itself would recurse
                obj = _set(obj, path, "__DEEP_%d__" % data.draw(st.sampled_from([50, 5000])))
            elif kind == "drop" and path:
                parent = obj
                for key in path[:-1]:
                    parent = parent[key]
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
                elif isinstance(parent, list) and parent:
                    parent.pop()
            elif kind == "dup" and path:
                parent = obj
                for key in path[:-1]:
                    parent = parent[key]
                if isinstance(parent, list):
                    parent.append(parent[-1] if parent else 0.0)
        except (KeyError, IndexError, TypeError):
            continue
        paths = list(_paths(obj)) or [()]
    nan = data.draw(st.booleans())
    text = json.dumps(obj)
    for depth in (50, 5000):
        text = text.replace('"__DEEP_%d__"' % depth, "[" * depth + "1.0" + "]" * depth)
    text = text.replace('"NaN"', "NaN") if nan else text
    path = tmp_path_factory.mktemp("case") / f"model{suffix}"
    path.write_text(text)
    _try(path)


@FUZZ
@given(data=st.data())
def test_byte_mutations_of_every_format(tmp_path_factory, data):
    suffix, raw = data.draw(st.sampled_from(_seeds(tmp_path_factory.mktemp("seeds"))))
    raw = bytearray(raw)
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "random", "zero-run"]))
    if kind == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        rng = random.Random(data.draw(st.integers(0, 2 ** 32)))
        for _ in range(data.draw(st.integers(1, 20))):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif kind == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    elif kind == "random":
        raw = bytearray(data.draw(st.binary(max_size=2048)))
    else:
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at:at + 64] = bytes(min(64, len(raw) - at))
    path = tmp_path_factory.mktemp("case") / f"model{suffix}"
    path.write_bytes(bytes(raw))
    _try(path)


FORBIDDEN = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
             ("builtins", "__import__"), ("subprocess", "Popen"), ("subprocess", "call"), ("builtins", "open"),
             ("io", "open"), ("shutil", "rmtree"), ("webbrowser", "open"), ("runpy", "run_path"),
             ("torch", "load"), ("numpy", "load"), ("collections", "namedtuple")]


class _Evil:
    def __init__(self, module, name, marker):
        self.module, self.name, self.marker = module, name, marker

    def __reduce__(self):
        import importlib

        func = getattr(importlib.import_module(self.module), self.name) if self.module != "torch" else print
        if self.module == "torch":  # no torch here: name the global by hand below
            return (print, (f"touch {self.marker}",))
        return (func, (f"touch {self.marker}",))


def _evil_pickle(module, name, marker, protocol) -> bytes:
    raw = pickle.dumps({"rec.weight_ih_l0": _Evil(module, name, marker)}, protocol=protocol)
    if module == "torch":
        raw = raw.replace(b"builtins\nprint", b"torch\nload").replace(b"\x8c\x08builtins\x94\x8c\x05print",
                                                                      b"\x8c\x05torch\x94\x8c\x04load")
    return raw


@FUZZ
@given(target=st.sampled_from(FORBIDDEN), protocol=st.integers(2, 5), wrap=st.sampled_from(["bare", "zip"]))
def test_pickles_naming_dangerous_globals_execute_nothing(tmp_path_factory, target, protocol, wrap):
    folder = tmp_path_factory.mktemp("evil")
    marker = folder / "executed"
    raw = _evil_pickle(*target, marker, protocol)
    path = folder / "model.pt"
    if wrap == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", raw)
            zf.writestr("archive/version", "3\n")
    else:
        path.write_bytes(raw)
    outcome = _try(path, marker)
    assert outcome in ("UnsafeModelError", "ModelFormatError"), outcome
