"""Byte-level mutations shared by the format fuzz tests."""

from hypothesis import strategies as st


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
