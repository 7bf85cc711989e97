"""safetensors: exact round trips, strict validation of hostile headers, fuzzing."""

import json
import os
import time

import numpy as np
import pytest
from mutations import mutate, mutation_strategy, read_or_none
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbrnn.errors import ArgumentError, ModelFormatError, OutputError
from nbrnn.formats import safetensors as st_module
from nbrnn.formats.safetensors import read_safetensors, write_safetensors

FUZZ_EXAMPLES = int(os.environ.get("NBRNN_FUZZ_EXAMPLES", "200"))


def _arrays():
    rng = np.random.default_rng(3)
    return {
        "rec.weight_ih_l0": rng.standard_normal((32, 2)).astype(np.float32),
        "rec.weight_hh_l0": rng.standard_normal((32, 8)).astype(np.float32),
        "rec.bias_ih_l0": rng.standard_normal(32),
        "lin.weight": rng.standard_normal((1, 8)),
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, np.finfo(np.float64).max]),
        "scalar": np.float32(0.25),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "steps": np.arange(-3, 3, dtype=np.int64),
        "half": np.linspace(-1, 1, 5).astype(np.float16),
        "flags": np.array([True, False]),
    }


METADATA = {"unit_type": "LSTM", "skip": "1", "sample_rate": "48000", "note": "ünïcode ✓"}


def _raw(header: dict, buffer: bytes = b"", pad: bool = True) -> bytes:
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + buffer


def _text(text: bytes, buffer: bytes = b"") -> bytes:
    return len(text).to_bytes(8, "little") + text + buffer


def _write(tmp_path, data: bytes, name="x.safetensors"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_round_trip_is_exact(tmp_path):
    arrays = _arrays()
    path = tmp_path / "model.safetensors"
    write_safetensors(path, arrays, METADATA)
    got, meta = read_safetensors(path)
    assert meta == METADATA
    assert set(got) == set(arrays)
    for name, want in arrays.items():
        want = np.asarray(want)
        assert got[name].dtype == want.dtype, name
        assert got[name].shape == want.shape, name
        assert got[name].flags.c_contiguous
        assert got[name].tobytes() == want.tobytes(), name  # bit-exact, NaN payloads and -0.0 included


def test_file_layout(tmp_path):
    path = tmp_path / "m.safetensors"
    write_safetensors(path, {"b": np.ones(3, np.float32), "a": np.arange(2.0), "c": np.arange(3, dtype=np.int8)},
                      {"k": "v"})
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    text = data[8 : 8 + n].decode()
    assert text.rstrip(" ") == text.rstrip()  # padded with spaces only
    header = json.loads(text)
    assert list(header) == ["__metadata__", "a", "b", "c"]  # sorted names
    # larger items first in the buffer, so every tensor is aligned to its item size
    assert header["a"]["data_offsets"] == [0, 16]
    assert header["b"]["data_offsets"] == [16, 28]
    assert header["c"]["data_offsets"] == [28, 31]
    assert len(data) == 8 + n + 31
    # deterministic
    write_safetensors(tmp_path / "again.safetensors", {"c": np.arange(3, dtype=np.int8), "a": np.arange(2.0),
                                                       "b": np.ones(3, np.float32)}, {"k": "v"})
    assert (tmp_path / "again.safetensors").read_bytes() == data


def test_big_endian_and_non_contiguous_input(tmp_path):
    base = np.arange(12, dtype=">f8").reshape(3, 4)
    write_safetensors(tmp_path / "m.safetensors", {"t": base.T, "s": base[:, ::2]})
    got, meta = read_safetensors(tmp_path / "m.safetensors")
    assert meta == {}
    np.testing.assert_array_equal(got["t"], base.T)
    np.testing.assert_array_equal(got["s"], base[:, ::2])
    assert got["t"].dtype == np.float64 and got["t"].dtype.isnative


def test_bf16_is_widened(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    data = _raw({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bits.tobytes())
    got, _ = read_safetensors(_write(tmp_path, data))
    np.testing.assert_array_equal(got["x"], values)
    assert got["x"].dtype == np.float32


def test_unpadded_header_and_no_metadata(tmp_path):
    data = _raw({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, np.ones(2, "<f4").tobytes(), pad=False)
    got, meta = read_safetensors(_write(tmp_path, data))
    assert meta == {} and got["x"].tolist() == [1.0, 1.0]
    data = _raw({"__metadata__": None, "x": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, b"\0\0\0\0")
    assert read_safetensors(_write(tmp_path, data))[1] == {}


def test_atomic_write_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    write_safetensors(path, {"a": np.ones(2)}, {"v": "1"})
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st_module.os, "replace", broken)
    with pytest.raises(OutputError, match="No space left"):
        write_safetensors(path, {"a": np.zeros(5)}, {"v": "2"})
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left behind


def test_writer_errors(tmp_path):
    with pytest.raises(ArgumentError, match="dtype"):
        write_safetensors(tmp_path / "a.safetensors", {"s": np.array(["text"])})
    with pytest.raises(ArgumentError, match="dtype"):
        write_safetensors(tmp_path / "a.safetensors", {"o": np.array([object()])})
    with pytest.raises(ArgumentError, match="__metadata__"):
        write_safetensors(tmp_path / "a.safetensors", {"__metadata__": np.ones(1)})
    with pytest.raises(ArgumentError, match="string names"):
        write_safetensors(tmp_path / "a.safetensors", {1: np.ones(1)})
    with pytest.raises(ArgumentError, match="metadata"):
        write_safetensors(tmp_path / "a.safetensors", {"a": np.ones(1)}, {"rate": 48000})
    with pytest.raises(OutputError):
        write_safetensors(tmp_path / "missing" / "a.safetensors", {"a": np.ones(1)})
    assert list(tmp_path.iterdir()) == []


ONE = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BUF = np.ones(2, "<f4").tobytes()


@pytest.mark.parametrize(
    "data,match",
    [
        pytest.param(b"", "8-byte", id="empty"),
        pytest.param(b"\x10\x00\x00", "8-byte", id="short"),
        pytest.param((1 << 63).to_bytes(8, "little") + b"{}", "limit", id="huge-n"),
        pytest.param((9_999_999).to_bytes(8, "little") + b"{}", "truncated", id="n-beyond-file"),
        pytest.param((4).to_bytes(8, "little") + b"[1] ", "JSON object", id="not-object"),
        pytest.param((4).to_bytes(8, "little") + b"{\"a\"", "not valid JSON", id="bad-json"),
        pytest.param((4).to_bytes(8, "little") + b"{\xff\xfe}", "UTF-8", id="not-utf8"),
        pytest.param(_text(b'{"__metadata__":{"a":NaN}}'), "not valid JSON", id="nan-literal"),
        pytest.param(_text(b'{"x":1,"x":2}   '), "twice", id="duplicate-name"),
        pytest.param(_text(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "too deeply", id="deep-json"),
        pytest.param(_text(b'{"a":[[[[1]]]]}'), "deeper", id="deep-but-parseable-json"),
        pytest.param(_text(b'{"x":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,8]}}', BUF),
                     "not valid JSON", id="int-with-5000-digits"),
        pytest.param(_raw({"x": {"dtype": "F32", "shape": [[2]], "data_offsets": [0, 8]}}, BUF), "deeper",
                     id="nested-shape"),
        pytest.param(_raw({"x": dict(ONE, dtype="F99")}, BUF), "dtype", id="unknown-dtype"),
        pytest.param(_raw({"x": dict(ONE, dtype="F8_E4M3")}, BUF), "does not read", id="fp8"),
        pytest.param(_raw({"x": dict(ONE, dtype=["F32"])}, BUF), "dtype", id="dtype-list"),
        pytest.param(_raw({"x": dict(ONE, shape=[3])}, BUF), "span", id="wrong-shape"),
        pytest.param(_raw({"x": dict(ONE, shape=[-2])}, BUF), "shape", id="negative-dim"),
        pytest.param(_raw({"x": dict(ONE, shape=[2.0])}, BUF), "shape", id="float-dim"),
        pytest.param(_raw({"x": dict(ONE, shape=[True, True])}, BUF), "shape", id="bool-dims"),
        pytest.param(_raw({"x": dict(ONE, shape=[1 << 62, 1 << 62])}, BUF), "multiply to at most",
                     id="overflowing-shape"),
        pytest.param(_raw({"x": dict(ONE, shape=[0, 10 ** 30], data_offsets=[0, 0])}),
                     r"shape \[0, 10{30}\]; its non-zero dimensions may multiply to at most 268435456",
                     id="empty-with-huge-dim"),
        pytest.param(_raw({"x": dict(ONE, shape=[0, 1 << 62, 1 << 62], data_offsets=[0, 0])}),
                     "multiply to at most", id="empty-with-huge-dims"),
        pytest.param(_raw({"x": dict(ONE, shape=[1 << 15, 0, 1 << 14], data_offsets=[0, 0])}),
                     "multiply to at most", id="empty-with-dims-beyond-the-limit"),
        pytest.param(_raw({"x": dict(ONE, shape=[1] * 40)}, BUF), "shape", id="too-many-dims"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[0, 16])}, BUF), "outside", id="beyond-buffer"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[8, 0])}, BUF), "outside", id="reversed"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[-8, 0])}, BUF), "outside", id="negative-offset"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[0])}, BUF), "data_offsets", id="one-offset"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[0, 8.0])}, BUF), "data_offsets", id="float-offset"),
        pytest.param(_raw({"x": ONE, "y": ONE}, BUF), "overlaps", id="overlap"),
        pytest.param(_raw({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "y": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, BUF), "overlaps",
                     id="partial-overlap"),
        pytest.param(_raw({"x": dict(ONE, data_offsets=[4, 12])}, BUF + BUF), "gap", id="gap"),
        pytest.param(_raw({"x": ONE}, BUF + b"junk"), "trailing", id="trailing-bytes"),
        pytest.param(_raw({"x": ONE}, BUF)[:-1], "outside", id="truncated-buffer"),
        pytest.param(_raw({"x": dict(ONE, extra=1)}, BUF), "exactly", id="unknown-field"),
        pytest.param(_raw({"x": {"dtype": "F32", "shape": [2]}}, BUF), "exactly", id="missing-field"),
        pytest.param(_raw({"x": [1, 2]}, BUF), "JSON object", id="entry-not-object"),
        pytest.param(_raw({"__metadata__": {"rate": 48000}, "x": ONE}, BUF), "string", id="metadata-int"),
        pytest.param(_raw({"__metadata__": {"a": None}, "x": ONE}, BUF), "string", id="metadata-null"),
        pytest.param(_raw({"__metadata__": {"a": {"b": "c"}}, "x": ONE}, BUF), "string", id="metadata-nested"),
        pytest.param(_raw({"__metadata__": ["a"], "x": ONE}, BUF), "__metadata__", id="metadata-list"),
        pytest.param(_raw({"__metadata__": "a", "x": ONE}, BUF), "__metadata__", id="metadata-string"),
        pytest.param((2).to_bytes(8, "little") + b"  ", "JSON object", id="blank-header"),
    ],
)
def test_malformed_files(tmp_path, data, match):
    path = _write(tmp_path, data)
    start = time.perf_counter()
    with pytest.raises(ModelFormatError, match=match) as info:
        read_safetensors(path)
    assert time.perf_counter() - start < 1.0
    assert str(path) in str(info.value)


def test_empty_tensor_with_huge_dimensions_is_a_format_error(tmp_path):
    import nbrnn

    for shape in ([0, 10 ** 30], [0, 1 << 62, 1 << 62]):
        path = _write(tmp_path, _raw({"w.weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}))
        with pytest.raises(ModelFormatError, match="non-zero dimensions may multiply to at most"):
            nbrnn.load(path)
    empty = read_safetensors(_write(tmp_path, _raw({"w": {"dtype": "F32", "shape": [0, 1 << 14, 1 << 14],
                                                          "data_offsets": [0, 0]}})))[0]["w"]
    assert empty.shape == (0, 1 << 14, 1 << 14) and empty.dtype == np.float32


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        read_safetensors(tmp_path / "nope.safetensors")


def test_truncations_and_random_bytes(tmp_path):
    path = tmp_path / "m.safetensors"
    write_safetensors(path, _arrays(), METADATA)
    data = path.read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 97)):
        with pytest.raises(ModelFormatError):
            read_safetensors(_write(tmp_path, data[:cut], "cut.safetensors"))
    rng = np.random.default_rng(11)
    for _ in range(50):
        blob = rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes()
        with pytest.raises(ModelFormatError):
            read_safetensors(_write(tmp_path, blob, "r.safetensors"))


_mutation = mutation_strategy(b"0123456789[]{}\",:- e")


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(_mutation, min_size=1, max_size=4), header_bias=st.booleans())
def test_fuzzed_files(tmp_path_factory, mutations, header_bias):
    folder = tmp_path_factory.getbasetemp() / "fuzz-safetensors"
    valid = folder / "valid.safetensors"
    if not valid.exists():
        folder.mkdir(exist_ok=True)
        write_safetensors(valid, _arrays(), METADATA)
    path = folder / "f.safetensors"
    data = valid.read_bytes()
    # most interesting bytes are in the header
    span = 8 + int.from_bytes(data[:8], "little") if header_bias else None
    path.write_bytes(mutate(data, mutations, span))
    result = read_or_none(read_safetensors, path)
    if result is not None:
        arrays, meta = result
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
