"""Byte-level mutations shared by the format fuzz tests."""

import time

from hypothesis import strategies as st

from nbrnn.errors import NbrnnError


def mutation_strategy(set_values):
    """One edit: truncate, flip, insert, delete or set a byte at a relative position in [0, 1]."""
    return st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
        st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 16)),
        st.tuples(st.just("set"), st.floats(0, 1), st.sampled_from(list(set_values))),
    )


def mutate(data: bytes, mutations, span=None) -> bytes:
    """Apply ``mutations``; positions are fractions of ``span`` bytes (default: the whole buffer)."""
    buf = bytearray(data)
    for mutation in mutations:
        kind, where = mutation[0], mutation[1]
        pos = min(int(where * (len(buf) if span is None else span)), max(len(buf) - 1, 0))
        if kind == "truncate":
            del buf[pos:]
        elif kind == "flip" and buf:
            buf[pos] ^= mutation[2]
        elif kind == "insert":
            buf[pos:pos] = mutation[2]
        elif kind == "delete":
            del buf[pos:pos + mutation[2]]
        elif kind == "set" and buf:
            buf[pos] = mutation[2]
    return bytes(buf)


def read_or_none(read, path):
    """``read(path)``, or None when it raises an NbrnnError; any other exception fails, as does taking 1 s or more."""
    start = time.perf_counter()
    try:
        result = read(path)
    except NbrnnError:
        result = None
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"reading took {elapsed:.2f} s"
    return result
