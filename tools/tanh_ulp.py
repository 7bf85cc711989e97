"""The kernels' tanh against the true value: how many ulp (accurate path) and how far (fast path).

    python tools/tanh_ulp.py                 # every float32 in [0, 9.2], 60 M float64 samples: ~30 s
    python tools/tanh_ulp.py --f64 300       # more float64 samples (millions)

float32: every representable input from 0 to 9.2 (above it both paths return the rounded value of 1 or
the clamp's value; tanh is odd and both paths take |x|), against numpy's float64 tanh rounded to nothing
(its error, ≤ 1 float64 ulp, is 2^-29 of a float32 ulp).  float64: log-uniform magnitudes from 1e-9 to 21
and uniform ones on [0, 21] and on [0, 0.4] (where k = 0 or 1 in the range reduction and the error is
largest), against the 64-bit-mantissa long double tanh.  The ulp of a result is the spacing of the
reference rounded to the dtype.  Prints the largest error, where, and a histogram.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nbrnn import _kernels  # noqa: E402

BINS = [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, np.inf]


def _run(x, fast):
    out = np.empty_like(x)
    _kernels.tanh_many(x, out, _kernels.constants(x.dtype), fast)
    return out


class _Tally:
    """The largest error seen, where, and a histogram of every error."""

    def __init__(self):
        self.worst, self.where, self.hist = 0.0, 0.0, np.zeros(len(BINS) - 1, np.int64)

    def add(self, err, x):
        i = int(np.argmax(err))
        if err[i] > self.worst:
            self.worst, self.where = float(err[i]), float(x[i])
        self.hist += np.histogram(err, BINS)[0]


def float32_scan():
    """(max ulp, its x, histogram) of the accurate path and the fast path's max absolute error."""
    top = int(np.array(9.2, np.float32).view(np.int32))
    step = 1 << 24
    tally, abs_fast = _Tally(), 0.0
    for start in range(0, top, step):
        x = np.arange(start, min(start + step, top), dtype=np.int32).view(np.float32)
        ref = np.tanh(x.astype(np.float64))
        ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
        tally.add(np.abs(_run(x, 0) - ref) / ulp, x)
        abs_fast = max(abs_fast, float(np.max(np.abs(_run(x, 1) - ref))))
    return tally.worst, tally.where, tally.hist, abs_fast


def float64_samples(millions, seed=1):
    rng = np.random.default_rng(seed)
    tally = _Tally()
    for _ in range(max(1, millions // 6)):
        x = np.concatenate([10 ** rng.uniform(-9, np.log10(21), 2_000_000), rng.uniform(0, 21, 2_000_000),
                            rng.uniform(0, 0.4, 2_000_000)])
        ref = np.tanh(x.astype(np.longdouble))
        ulp = np.spacing(ref.astype(np.float64)).astype(np.longdouble)
        tally.add((np.abs(_run(x, 0).astype(np.longdouble) - ref) / ulp).astype(np.float64), x)
    return tally.worst, tally.where, tally.hist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--f64", type=int, default=60, help="float64 samples, millions (default 60)")
    args = parser.parse_args(argv)
    labels = " ".join(f"[{lo:g},{hi:g})" for lo, hi in zip(BINS[:-1], BINS[1:]))
    worst, where, hist, abs_fast = float32_scan()
    print(f"float32 accurate, every input: max {worst:.3f} ulp at x = {where!r}")
    print(f"  ulp histogram {labels}: {hist.tolist()}")
    print(f"float32 fast, every input: max |error| {abs_fast:.3g}")
    worst, where, hist = float64_samples(args.f64)
    print(f"float64 accurate, {hist.sum() / 1e6:.0f} M samples: max {worst:.3f} ulp at x = {where!r}")
    print(f"  ulp histogram {labels}: {hist.tolist()}")


if __name__ == "__main__":
    main()
