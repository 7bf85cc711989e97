"""Adapted model against reference: the SNR measurements every figure is made of.

One evaluation takes an input prepared at the model's trained rate ``fs``
(:func:`~nbrnn.figures.sources.prepare_input`), resamples it ideally (one FFT
over the whole signal, :func:`scipy.signal.resample`) to the run rate ``fs'``,
runs the adapted model there, and compares with the plain model at ``fs``.
The two outputs are brought to one rate with the same ideal resampler:

- ``compare_at='trained'``: the adapted output is resampled back to ``fs``
  (the DAFx-24 protocol);
- ``compare_at='run'``: the reference is resampled to ``fs'`` (ICASSP-25);
- ``compare_at='lower'``: whichever of the two rates is lower, so that neither
  side is judged on a band the other cannot represent (the sweeps).

The padded input length is a whole multiple of the rate ratio's denominator,
so the resampled signals have exact lengths and no rate error.

SNR(y, ref) = 10 log10(sum ref^2 / sum (y - ref)^2), from energies returned
per signal so that several signals can be pooled.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np

from ..errors import ArgumentError, UnstableError, shown

COMPARE_AT = ("trained", "run", "lower")

#: Statuses of a run besides 'ok': 'diverged' (the engine raised UnstableError or the output is not finite: the
#: only one the figures mark as unstable), 'negative' (SNR below 0 dB: a stable run that is mostly error, as the
#: unadapted model far from its rate is) and 'n/a'.
DIVERGED = "diverged"


def status_counts(rows) -> dict:
    """How many of ``rows`` (with a 'status') diverged, and how many stayed stable below 0 dB."""
    return {"diverged": sum(r["status"] == DIVERGED for r in rows),
            "negative": sum(r["status"] == "negative" for r in rows)}

#: Methods that refuse R < 1 (no causal interpolation below the trained rate).
NEEDS_R_AT_LEAST_1 = ("linear", "allpass")


@dataclasses.dataclass(frozen=True)
class Method:
    """One adaptation method as the figures name it, with its engine options.

    Attributes
    ----------
    label : str
        Name in tables and legends (e.g. ``'lagrange3'``).
    method : str
        Engine method passed to ``Model.process``.
    options : tuple of (str, value)
        Engine options, as sorted pairs so the spec stays hashable.
    """

    label: str
    method: str
    options: tuple = ()

    @property
    def kwargs(self) -> dict:
        return dict(self.options)

    def applies(self, ratio: float) -> bool:
        return not (self.method in NEEDS_R_AT_LEAST_1 and ratio < 1.0)


def method(label: str, name: str, **options) -> Method:
    return Method(label, name, tuple(sorted(options.items())))


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Energies of one adapted run against its reference over the compared region.

    ``error`` is ``inf`` when the run diverged; ``status`` is 'ok', 'diverged'
    (``UnstableError`` or non-finite output), 'negative' (SNR < 0 dB) or 'n/a'
    (the method does not apply at this ratio).
    """

    signal: float
    error: float
    status: str


def snr_db(signal: float, error: float) -> float:
    """10 log10(signal / error) in dB; inf for a perfect match, nan when undefined."""
    if not (math.isfinite(signal) and signal > 0) or math.isnan(error):
        return math.nan
    if error == 0.0:
        return math.inf
    if math.isinf(error):
        return -math.inf
    return 10.0 * math.log10(signal / error)


def pooled(outcomes) -> Outcome:
    """Several signals' outcomes as one: energies summed; diverged if any run diverged."""
    outcomes = list(outcomes)
    statuses = {o.status for o in outcomes}
    if "n/a" in statuses:
        return Outcome(math.nan, math.nan, "n/a")
    signal = math.fsum(o.signal for o in outcomes)
    error = math.fsum(o.error for o in outcomes)
    return Outcome(signal, error, "diverged" if "diverged" in statuses else _status(signal, error))


def _status(signal: float, error: float) -> str:
    if not math.isfinite(error):
        return "diverged"
    return "ok" if snr_db(signal, error) >= 0.0 else "negative"


def ideal_resample(x: np.ndarray, n: int) -> np.ndarray:
    """Resample to ``n`` samples with one FFT over the whole (periodic) signal."""
    if n == x.shape[0]:
        return np.array(x, dtype=np.float64)
    from scipy.signal import resample

    return resample(np.asarray(x, dtype=np.float64), n)


def run_length(n: int, trained_rate: float, run_rate) -> int:
    """Samples at ``run_rate`` of ``n`` samples at ``trained_rate`` (must be whole)."""
    ratio = Fraction(run_rate) / Fraction(trained_rate)
    m = n * ratio
    if m.denominator != 1:
        raise ArgumentError(f"a signal of {n} samples at {trained_rate:g} Hz is not a whole number of samples at "
                            f"{float(run_rate):g} Hz; pad it to a multiple of {ratio.denominator}")
    return int(m)


def plain_output(model, x: np.ndarray, dtype: str = "float64", activations: str = "accurate") -> np.ndarray:
    """The unchanged model at its trained rate: the reference."""
    return np.asarray(model.process(x, model.trained_rate, method="naive", dtype=dtype, activations=activations),
                      dtype=np.float64)


def evaluate(model, x: np.ndarray, begin: int, end: int, run_rate, methods, *, reference: np.ndarray,
             compare_at: str = "trained", skip: int = 0, dtype: str = "float64",
             activations: str = "accurate", x_run: np.ndarray | None = None,
             outputs: dict | None = None) -> list[Outcome]:
    """Run ``methods`` at ``run_rate`` and measure each against ``reference``.

    Parameters
    ----------
    model : nbrnn.Model
    x : ndarray
        Input at the model's trained rate (padded, see :func:`~nbrnn.figures.sources.prepare_input`).
    begin, end : int
        Where the signal itself sits in ``x`` (the compared region, before ``skip``).
    run_rate : float or Fraction
        The rate the adapted model runs at.
    methods : sequence of Method
    reference : ndarray
        The plain model's output for ``x`` at the trained rate.
    compare_at : {'trained', 'run', 'lower'}
        The rate both outputs are compared at.
    skip : int
        Samples skipped after ``begin``, counted at the comparison rate (start-up transient).
    dtype, activations : str
        Passed to ``Model.process``.
    x_run : ndarray, optional
        The input at ``run_rate`` when it is not the ideal resampling of ``x``
        (e.g. a continuous-time test signal sampled at both rates).
    outputs : dict, optional
        Filled with each method's output at ``run_rate`` by label (None when it
        diverged or does not apply), for further comparisons.

    Returns
    -------
    list of Outcome
        One per method, in order.
    """
    if compare_at not in COMPARE_AT:
        raise ArgumentError(f"Argument 'compare_at' must be one of {COMPARE_AT}, not {shown(compare_at)}")
    fs = model.trained_rate
    n = x.shape[0]
    m = run_length(n, fs, run_rate)
    ratio = Fraction(run_rate) / Fraction(fs)
    if x_run is None:
        x_run = ideal_resample(x, m)
    elif x_run.shape[0] != m:
        raise ArgumentError(f"Argument 'x_run' must hold {m} samples, not {x_run.shape[0]}")
    at_run = compare_at == "run" or (compare_at == "lower" and ratio < 1)
    if at_run:
        ref = ideal_resample(reference, m)
        first = math.ceil(begin * ratio) + skip
        last = math.floor(end * ratio)
    else:
        ref = reference
        first, last = begin + skip, end
    if not 0 <= first < last:
        raise ArgumentError(f"the compared region is empty: skip = {skip} samples leaves nothing of the signal")
    ref = ref[first:last]
    signal = math.fsum(np.square(ref))
    done = {}
    outcomes = []
    rate = float(run_rate)
    for meth in methods:
        if not meth.applies(float(ratio)):
            outcomes.append(Outcome(math.nan, math.nan, "n/a"))
            if outputs is not None:
                outputs[meth.label] = None
            continue
        # Plans with equal keys run identically (e.g. 'oversample' above the trained rate, where its
        # factor is 1, is its inner method): run each distinct plan once.
        key = model.plan(rate, meth.method, **meth.kwargs).key()
        if key not in done:
            y = adapted_output(model, x_run, rate, meth, dtype, activations)
            done[key] = (compare(y if y is None or at_run else ideal_resample(y, n), ref, first, last, signal), y)
        outcomes.append(done[key][0])
        if outputs is not None:
            outputs[meth.label] = done[key][1]
    return outcomes


def adapted_output(model, x_run, rate, meth: Method, dtype="float64", activations="accurate"):
    """The adapted model's output at ``rate`` as float64, or None when the loop diverged."""
    try:
        y = model.process(x_run, rate, method=meth.method, dtype=dtype, activations=activations, **meth.kwargs)
    except UnstableError:
        return None
    y = np.asarray(y, dtype=np.float64)
    return y if np.all(np.isfinite(y)) else None


def compare(y, ref, first: int, last: int, signal: float | None = None) -> Outcome:
    """Energies of ``y[first:last] - ref`` (``ref`` already cut to the region); ``y`` None = diverged."""
    if signal is None:
        signal = math.fsum(np.square(ref))
    error = math.inf if y is None else math.fsum(np.square(y[first:last] - ref))
    if not math.isfinite(error):
        return Outcome(signal, math.inf, "diverged")
    return Outcome(signal, error, _status(signal, error))
