"""The checks a stream makes on every block, compiled: NaN/Inf in the input and output, a diverged state.

In NumPy each check (``np.isfinite(a).all()``, ``(np.abs(a) <= limit).all()``) costs one to three
microseconds of calls and temporary arrays whatever the block's size; a stream fed blocks of a few hundred
samples spent more time in them than in the recurrent kernel.  Here one call counts the values, allocating
nothing.  Apart from the kernels' module, so that editing one does not invalidate the other's cache.
"""

import numba

from ._kernels import _CACHE


# No fastmath: under it the compiler may assume that no value is NaN or infinite and drop the comparison.
@numba.njit(cache=_CACHE, nogil=True)
def count_beyond(a, limit):
    """How many values of the 1-D array ``a`` are NaN or larger than ``limit`` in magnitude."""
    bad = 0
    for i in range(a.size):
        if not abs(a[i]) <= limit:
            bad += 1
    return bad
