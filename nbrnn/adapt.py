"""Sample-rate adaptation: turn (trained rate, run rate, method) into a plan of plain arrays.

A model trained at ``fs`` that runs at ``fs' = R·fs`` feeds back, instead of
the state one sample old, an interpolated state ``R`` samples old
(``docs/methods.md``).  Every method here only decides *which* past states
are combined and with which weights; the kernels in :mod:`nbrnn._kernels` run
any plan.

Plans of the delay-line family (``naive``, ``integer``, ``linear``,
``lagrange``, ``minimax``, ``fir``) are FIR taps: ``ŝ_n = Σ_t w_t · s_{n-d_t}``.
``allpass`` is a first-order allpass on top of an integer delay, ``stn`` is the
state-trajectory (Euler) rescale.  Two wrapper strategies change the signal's
rate around the model instead: ``oversample`` (for R < 1: run at L·fs' with
L·R ≥ 1) and ``resample`` (the plain baseline: resample to the trained rate,
run the unchanged model, resample back).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np

from .errors import ArgumentError, shown

#: Method names and their aliases.
METHODS = ("naive", "integer", "linear", "lagrange", "allpass", "minimax", "fir", "stn", "oversample", "resample")
ALIASES = {"none": "naive", "nointerp": "integer", "lidl": "linear", "lin": "linear", "apdl": "allpass",
           "cidl": "lagrange", "cubic": "lagrange", "delay": "integer"}
PLACEMENTS = ("paper", "centred")
OUTPUTS = ("fresh", "delayed")
RESAMPLERS = ("polyphase", "fft")
#: What ``oversample`` may run at the oversampled rate: the methods that design their own taps for a ratio.
INNER_METHODS = tuple(m for m in METHODS if m not in ("oversample", "resample", "fir"))
#: The methods each option of :func:`make_plan` applies to (``output`` applies to all); an option given
#: for any other method is an error rather than silently ignored.
OPTION_METHODS = {"order": ("lagrange", "minimax"), "placement": ("lagrange",), "kernel": ("fir",),
                  "bandwidth": ("minimax",), "inner": ("oversample",), "inner_order": ("oversample",),
                  "factor": ("oversample",), "resampler": ("resample",)}

#: Sample rates accepted anywhere (Hz), and the largest ratio R or 1/R between the run's and the trained rate.
MIN_RATE, MAX_RATE = 1.0, 1e8
MAX_RATIO = 1024.0

#: Largest Lagrange / minimax order and delay-line depth accepted (a typo guard, not a kernel limit).
MAX_ORDER = 64
MAX_DEPTH = 1 << 16

KIND_FIR, KIND_ALLPASS, KIND_STN = 0, 1, 2


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """What the kernel runs for one (trained rate, run rate, method).

    Attributes
    ----------
    method : str
        Canonical method name.
    ratio : float
        R = run rate / trained rate that the delay line realises (for
        ``oversample`` the ratio at the oversampled rate).
    kind : int
        0 FIR taps, 1 allpass, 2 state-trajectory rescale.
    tap_delay : ndarray of int64
        Delays (>= 1 sample) of the taps; for ``allpass`` one entry, the integer part K.
    tap_weight : ndarray of float64
        Weights of the taps; for ``allpass`` the coefficient a; for ``stn`` the gain 1/R.
    depth : int
        Ring-buffer depth (states kept per layer).
    delayed_output : bool
        Pass the delayed interpolated state (article / RTNeural convention) to the
        next layer instead of the fresh one.
    oversample : int
        Integer factor the input is oversampled by around the model (1 = none).
    resample : str or None
        ``'polyphase'`` or ``'fft'`` for the resample baseline, else None.
    description : str
        One line for people.
    """

    method: str
    ratio: float
    kind: int
    tap_delay: np.ndarray
    tap_weight: np.ndarray
    depth: int
    delayed_output: bool = False
    oversample: int = 1
    resample: str | None = None
    description: str = ""

    def key(self) -> tuple:
        """A hashable identity: two plans with equal keys run identically."""
        return (self.kind, tuple(self.tap_delay.tolist()), tuple(self.tap_weight.tolist()), self.depth,
                self.delayed_output, self.oversample, self.resample)


def _means_cubic(method) -> bool:
    """Whether ``method`` is spelled as one of the names of cubic Lagrange (order 3 only)."""
    return str(method).strip().lower() in ("cubic", "cidl")


def lagrange_weights(delta: float, order: int) -> np.ndarray:
    """Lagrange interpolation weights ℓ_m(δ) = Π_{k≠m} (δ−k)/(m−k), m = 0..order (0 .. ``MAX_ORDER``).

    ``δ`` is the fractional position measured from the first tap; ``δ`` outside
    ``[0, order]`` extrapolates (used below the trained rate), at most ``MAX_RATIO`` taps away.
    """
    if not is_integer(order) or not 0 <= order <= MAX_ORDER:
        raise ArgumentError(f"Argument 'order' must be an integer from 0 to {MAX_ORDER}, not {shown(order)}")
    if not _is_number(delta) or not abs(real_float(delta)) <= MAX_RATIO:  # NaN too
        raise ArgumentError(f"Argument 'delta' must be a real number from {-MAX_RATIO:g} to {MAX_RATIO:g}, "
                            f"not {shown(delta)}")
    delta = real_float(delta)
    order = int(order)
    m = np.arange(order + 1, dtype=np.float64)
    w = np.ones(order + 1)
    for k in range(order + 1):
        others = m != k
        w[others] *= (delta - k) / (m[others] - k)
    return w


def allpass_coefficient(alpha: float) -> float:
    """First-order allpass coefficient a = (1 − α)/(1 + α) for a fractional delay α (a real number above −1;
    the allpass is stable for α > 0)."""
    if not _is_number(alpha) or not real_float(alpha) > -1.0:  # NaN too
        raise ArgumentError(f"Argument 'alpha' must be a real number above -1, not {shown(alpha)}")
    alpha = real_float(alpha)
    if math.isinf(alpha):
        return -1.0
    return (1.0 - alpha) / (1.0 + alpha)


def is_choice(value, choices) -> bool:
    """Whether ``value`` is one of the names ``choices`` (a string first: an array would make ``in`` ambiguous,
    a list unhashable)."""
    return isinstance(value, str) and value in choices


def is_real(value) -> bool:
    """Whether ``value`` is one real number (Python's or NumPy's; not a bool)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def is_integer(value) -> bool:
    """Whether ``value`` is one integer (Python's or NumPy's; not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _is_number(value) -> bool:
    """A real number or a ``Fraction`` (which the rate arguments take too)."""
    return is_real(value) or isinstance(value, Fraction)


def real_float(value) -> float:
    """``float(value)``, but a Python integer beyond float64's range gives ±Inf instead of raising OverflowError
    (so that the range checks after it refuse it with their own message)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_rate(value, name: str = "sample_rate") -> float:
    """A sample rate argument: a number of Hz from ``MIN_RATE`` to ``MAX_RATE``."""
    if not _is_number(value):
        raise ArgumentError(f"Argument '{name}' must be a number of Hz, not {type(value).__name__} ({shown(value)})")
    value = real_float(value)
    if not MIN_RATE <= value <= MAX_RATE:  # NaN too
        raise ArgumentError(f"Argument '{name}' must be from 1 Hz to 100 MHz, not {value:g}")
    return value


def _order(order, method: str, name: str = "order") -> int:
    if not is_integer(order) or not 1 <= order <= MAX_ORDER:
        raise ArgumentError(
            f"Argument '{name}' of method '{method}' must be an integer from 1 to {MAX_ORDER}, not {shown(order)}")
    return int(order)


def canonical_method(method: str, argument: str = "method", choices: tuple = METHODS) -> str:
    """Resolve aliases (``'cubic'`` → ``'lagrange'``) and check the name against ``choices`` (what
    ``argument``, the name in the message, may be)."""
    if not isinstance(method, str):
        raise ArgumentError(f"Argument '{argument}' must be a string such as 'lagrange', not {shown(method)}")
    name = method.strip().lower()
    name = ALIASES.get(name, name)
    if name not in choices:
        raise ArgumentError(
            f"Argument '{argument}' must be one of {', '.join(choices)} (or an alias: "
            f"{', '.join(sorted(ALIASES))}), not {shown(method)}")
    return name


def number_text(value: float) -> str:
    """``value`` in six significant digits, or in full when those would show another number (R = 0.99999999
    must not read as 1 in a message that refuses it for being below 1)."""
    short = f"{value:.6g}"
    return short if float(short) == value else repr(float(value))


def _fir_plan(method, ratio, delays, weights, delayed, description, **extra) -> Plan:
    delays = np.asarray(delays, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    depth = int(delays.max())
    if depth > MAX_DEPTH:
        raise ArgumentError(f"the delay line for R = {ratio:g} would need {depth} states per layer "
                            f"(more than {MAX_DEPTH}); check the sample rates")
    return Plan(method, ratio, KIND_FIR, delays, weights, depth, delayed, description=description, **extra)


def _oversampled_rate(fs: float, fs_run: float, factor: int) -> float:
    """``factor · fs_run``, the rate ``oversample`` runs the model at; when ``factor · R`` is an integer up to
    rounding (within 1e-12), a rate at which R is exactly that integer (so that ``44100/41`` Hz ×41 runs the
    integer-delay plan at R = 1, not an extrapolation at R = 1 − 2e-16)."""
    rate = fs_run * factor
    nearest = round(rate / fs)
    if nearest >= 1 and abs(rate / fs - nearest) <= 1e-12 * nearest:
        rate = fs * nearest
        for _ in range(4):  # the product rounds: step to the neighbouring float until rate / fs is exact
            if rate / fs == nearest:
                break
            rate = math.nextafter(rate, math.inf if rate / fs < nearest else -math.inf)
    return rate


def lagrange_placement(ratio: float, order: int, placement: str) -> int:
    """First tap delay d0 of an order-N interpolator for ratio R (taps d0 .. d0+N)."""
    if placement == "paper":
        if ratio < 2.0:
            return 1
        return int(math.floor(ratio)) - 1
    return max(1, int(math.floor(ratio - (order - 1) / 2.0)))


def make_plan(trained_rate: float, sample_rate: float, method: str = "lagrange", *, order: int | None = None,
              placement: str | None = None, kernel=None, bandwidth: float | None = None, output: str = "fresh",
              inner: str | None = None, inner_order: int | None = None, factor: int | None = None,
              resampler: str | None = None) -> Plan:
    """Design the plan that runs a model trained at ``trained_rate`` at ``sample_rate``.

    Parameters
    ----------
    trained_rate, sample_rate : float
        Rates in Hz; R = sample_rate / trained_rate.
    method : str
        ``naive``, ``integer``, ``linear``, ``lagrange`` (alias ``cubic`` sets order 3),
        ``allpass``, ``minimax``, ``fir``, ``stn``, ``oversample`` or ``resample``.
    order : int, optional
        Interpolation order for ``lagrange`` (default 3) and ``minimax`` (default 3).
    placement : {'paper', 'centred'}, optional
        Where the N+1 Lagrange taps sit: ``'paper'`` = delays 1..N+1 for R < 2 and
        K−1..K+N−1 for R ≥ 2 (DAFx-24); ``'centred'`` = around R for every R.
    kernel : array_like, optional
        FIR taps k_0..k_M for ``method='fir'``, applied to delays 1..M+1.
    bandwidth : float, optional
        Design band of ``minimax`` kernels as a fraction of Nyquist (default 0.5).
    output : {'fresh', 'delayed'}
        Which state the next layer sees: the fresh s_n (no added latency) or the
        delayed interpolated one (the article's / RTNeural's convention).
    inner, inner_order : str, int, optional
        The delay-line method ``oversample`` runs at the oversampled rate (default ``'lagrange'``,
        order 3) and its order (``lagrange`` and ``minimax`` only).
    factor : int, optional
        Oversampling factor; default the smallest L with L·R ≥ 1.
    resampler : {'polyphase', 'fft'}, optional
        Resampler of the ``resample`` baseline (default polyphase; ``oversample``'s filters are always
        polyphase).

    Each option applies to the methods in :data:`OPTION_METHODS`; given for another method it is an
    :class:`ArgumentError`, not ignored.

    Returns
    -------
    Plan
    """
    fs = check_rate(trained_rate, "trained_rate")
    fs_run = check_rate(sample_rate, "sample_rate")
    name = canonical_method(method)
    if name == "lagrange" and _means_cubic(method):
        if order is not None:
            _order(order, method)
        if order not in (None, 3):
            raise ArgumentError(f"method {method!r} means Lagrange order 3; got order={order!r} (use 'lagrange')")
        order = 3
    if not is_choice(output, OUTPUTS):
        raise ArgumentError(f"Argument 'output' must be one of {OUTPUTS}, not {shown(output)}")
    given = {"order": order, "placement": placement, "kernel": kernel, "bandwidth": bandwidth, "inner": inner,
             "inner_order": inner_order, "factor": factor, "resampler": resampler}
    for option, value in given.items():
        owners = OPTION_METHODS[option]
        if value is not None and name not in owners:
            raise ArgumentError(f"Argument '{option}' applies to method{'s' * (len(owners) > 1)} "
                                f"{' and '.join(map(repr, owners))}, not to '{name}'")
    placement = "paper" if placement is None else placement
    if not is_choice(placement, PLACEMENTS):
        raise ArgumentError(f"Argument 'placement' must be one of {PLACEMENTS}, not {shown(placement)}")
    ratio = fs_run / fs
    if not 1.0 / MAX_RATIO <= ratio <= MAX_RATIO:
        raise ArgumentError(f"R = sample_rate/trained_rate = {fs_run:g}/{fs:g} Hz = {ratio:.6g} is beyond what any "
                            f"method is meant for (1/{MAX_RATIO:g} .. {MAX_RATIO:g}); check the sample rates")
    delayed = output == "delayed"
    below = ratio < 1.0

    if name == "naive":
        return _fir_plan(name, ratio, [1], [1.0], delayed, "naive: the model unchanged (state delayed by 1 sample)")
    if name == "integer":
        d = max(1, int(math.floor(ratio + 0.5)))
        return _fir_plan(name, ratio, [d], [1.0], delayed, f"integer delay of {d} sample(s) (R = {ratio:.6g})")
    if name == "linear":
        if below:
            raise ArgumentError(
                f"method 'linear' needs R = sample_rate/trained_rate >= 1, not {number_text(ratio)} "
                f"({number_text(fs_run)}/{number_text(fs)} Hz): "
                f"below the trained rate use method='lagrange' (extrapolation), 'oversample' or 'resample'")
        k = int(math.floor(ratio))
        alpha = ratio - k
        return _fir_plan(name, ratio, [k, k + 1], [1.0 - alpha, alpha], delayed,
                         f"linear interpolation between delays {k} and {k + 1} (alpha = {alpha:.6g})")
    if name == "lagrange":
        n = _order(3 if order is None else order, name)
        d0 = lagrange_placement(ratio, n, placement)
        delta = ratio - d0
        w = lagrange_weights(delta, n)
        if placement == "centred":
            w = w / w.sum()
        kind = "extrapolation" if below else "interpolation"
        return _fir_plan(name, ratio, np.arange(d0, d0 + n + 1), w, delayed,
                         f"Lagrange order {n} {kind} on delays {d0}..{d0 + n} (delta = {delta:.6g})")
    if name == "minimax":
        from .minimax import minimax_kernel

        n = _order(3 if order is None else order, name)
        d0 = lagrange_placement(ratio, n, "centred")
        delta = ratio - d0
        bandwidth = 0.5 if bandwidth is None else bandwidth
        w = minimax_kernel(delta, n, bandwidth)
        return _fir_plan(name, ratio, np.arange(d0, d0 + n + 1), w, delayed,
                         f"minimax FIR order {n} on delays {d0}..{d0 + n} (delta = {delta:.6g}, band "
                         f"{float(bandwidth):g})")
    if name == "fir":
        if kernel is None:
            raise ArgumentError("method 'fir' needs Argument 'kernel': the taps k_0..k_M applied to delays 1..M+1")
        try:
            k = np.asarray(kernel)
            if k.dtype.kind not in "iuf":
                raise TypeError
            k = k.astype(np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"Argument 'kernel' must be a 1-D array of real numbers, not {shown(kernel)}") from None
        if k.ndim != 1 or k.size == 0:
            raise ArgumentError(f"Argument 'kernel' must be a non-empty 1-D array of numbers, not shape {k.shape}")
        if not np.all(np.isfinite(k)):
            raise ArgumentError(f"Argument 'kernel' must hold finite numbers, not {k.tolist()[:8]}")
        if k.size > MAX_DEPTH:
            raise ArgumentError(f"Argument 'kernel' may have at most {MAX_DEPTH} taps, not {k.size}")
        return _fir_plan(name, ratio, np.arange(1, k.size + 1), k, delayed, f"FIR kernel of {k.size} taps")
    if name == "allpass":
        if below:
            raise ArgumentError(
                f"method 'allpass' needs R = sample_rate/trained_rate >= 1, not {number_text(ratio)} "
                f"({number_text(fs_run)}/{number_text(fs)} Hz): "
                f"below the trained rate use method='lagrange' (extrapolation), 'oversample' or 'resample'")
        k = int(math.floor(ratio))
        alpha = ratio - k
        if alpha == 0.0:
            # a = 1 puts the allpass pole on the unit circle; the exact answer is the integer delay.
            return _fir_plan(name, ratio, [k], [1.0], delayed, f"allpass at integer R: integer delay of {k}")
        a = allpass_coefficient(alpha)
        return Plan(name, ratio, KIND_ALLPASS, np.array([k], dtype=np.int64), np.array([a]), k + 1, delayed,
                    description=f"first-order allpass a = {a:.6g} after an integer delay of {k}")
    if name == "stn":
        return Plan(name, ratio, KIND_STN, np.array([1], dtype=np.int64), np.array([1.0 / ratio]), 1, delayed,
                    description=f"state-trajectory rescale with gain 1/R = {1.0 / ratio:.6g}")
    if name == "oversample":
        inner_name = canonical_method("lagrange" if inner is None else inner, "inner", INNER_METHODS)
        chosen = factor is None
        if chosen:
            factor = max(1, math.ceil(1.0 / ratio - 1e-12))
            if factor > 64:
                raise ArgumentError(
                    f"R = sample_rate/trained_rate = {fs_run:g}/{fs:g} Hz = {ratio:.6g} would need oversampling by "
                    f"{factor}, more than 64: use method 'resample'")
        if not is_integer(factor) or not 1 <= factor <= 64:
            raise ArgumentError(f"Argument 'factor' must be an integer from 1 to 64, not {shown(factor)}")
        factor = int(factor)
        inner_rate = _oversampled_rate(fs, fs_run, factor)
        by = f"oversampling by {factor}" + ("" if chosen else " (Argument 'factor')")
        if inner_rate < fs:
            raise ArgumentError(f"Argument 'factor' = {factor} leaves L*R = {number_text(factor * ratio)} < 1; "
                                f"use factor >= {math.ceil(1.0 / ratio - 1e-12)}")
        if inner_rate > MAX_RATE:
            raise ArgumentError(f"{by} would run the model at {inner_rate:g} Hz, beyond {MAX_RATE:g} Hz: use method "
                                f"'resample'" + ("" if chosen else " or a smaller factor"))
        if inner_rate / fs > MAX_RATIO:
            raise ArgumentError(f"{by} makes L*R = {inner_rate / fs:.6g}, beyond {MAX_RATIO:g}: use a smaller factor")
        if inner_order is not None and inner_name not in OPTION_METHODS["order"]:
            raise ArgumentError(f"Argument 'inner_order' applies to inner methods 'lagrange' and 'minimax', "
                                f"not to {inner!r}")
        if inner_order is not None:
            _order(inner_order, inner_name, "inner_order")
        if inner is not None and _means_cubic(inner) and inner_order not in (None, 3):
            raise ArgumentError(f"inner={inner!r} means Lagrange order 3; got inner_order={inner_order!r} "
                                f"(use inner='lagrange')")
        core = make_plan(fs, inner_rate, inner_name, output=output, order=inner_order)
        return dataclasses.replace(
            core, method=name, oversample=int(factor),
            description=f"oversample x{factor}, then {core.description}, then filter and decimate")
    # resample baseline
    resampler = "polyphase" if resampler is None else resampler
    if not is_choice(resampler, RESAMPLERS):
        raise ArgumentError(f"Argument 'resampler' must be one of {RESAMPLERS}, not {shown(resampler)}")
    return _fir_plan(name, 1.0, [1], [1.0], delayed,
                     f"resample to the trained rate ({resampler}), run the unchanged model, resample back",
                     resample=resampler)
