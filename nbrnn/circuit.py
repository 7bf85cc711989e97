"""A diode clipper simulated accurately at any sample rate.

The circuit is the classic first-order diode clipper of guitar distortion
pedals: the input voltage ``u`` drives a resistor ``R`` into a capacitor ``C``
to ground, and a pair of antiparallel diodes sits across ``C``.  The output is
the capacitor voltage ``v``, which obeys

.. math::

    \\frac{dv}{dt} = \\frac{u - v}{R C} - \\frac{2 I_s}{C}
                     \\sinh\\left(\\frac{v}{n V_t}\\right)

(Shockley diodes, identical in both directions).  For small signals the diodes
barely conduct and the circuit is the RC lowpass with cutoff
``1 / (2 pi R C)``; for large signals the diodes clamp ``v`` near
+/- 0.5-0.7 V, and because ``C`` still has to be charged through ``R`` the
clipping is rate limited: the circuit has memory, which is what makes it a
useful target for a recurrent model.

:func:`simulate_diode_clipper` integrates the equation with the trapezoidal
rule at a high internal rate (at least 768 kHz and at least 8x the audio
rate), solving the implicit step with a safeguarded Newton iteration to
~1e-13 V, between a band-limited interpolation of the input and a band-limited
decimation of the output.  The result at a sample rate ``fs`` is therefore the
continuous-time circuit's response to the band-limited input, lowpass filtered
at ``fs / 2`` and sampled at ``fs``: the same analog system whatever ``fs`` is,
which is the reference a sample-rate-adapted model should reproduce.

:func:`test_signal` makes a matching deterministic input: a continuous-time
formula (a strummed chord, single notes at two levels and a sine sweep)
sampled at any rate.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numba
import numpy as np
from scipy import signal as sps
from scipy.special import erf

from nbrnn._kernels import _CACHE
from nbrnn.adapt import MAX_RATE, real_float
from nbrnn.errors import ArgumentError, AudioError, shown

__all__ = [
    "DIODE_CLIPPER",
    "DiodeClipper",
    "MIN_INTERNAL_RATE",
    "MIN_OVERSAMPLE",
    "internal_oversample",
    "simulate_diode_clipper",
    "test_signal",
]


@dataclass(frozen=True)
class DiodeClipper:
    """Component values of the diode clipper.

    Parameters
    ----------
    resistance : float
        Series resistor ``R`` in ohms.
    capacitance : float
        Capacitor ``C`` in farads, in parallel with the diodes.
    saturation_current : float
        Diode saturation current ``Is`` in amperes.
    ideality_thermal_voltage : float
        Product ``n * Vt`` of the diode ideality factor and the thermal
        voltage, in volts.
    drive : float
        Input gain in volts per unit of digital full scale: the voltage
        ``u = drive * x`` applied to the resistor for an input sample ``x``.

    Notes
    -----
    The default instance :data:`DIODE_CLIPPER` uses

    * ``R = 2.2 kOhm`` and ``C = 22 nF``: ``fc = 1 / (2 pi R C) = 3.29 kHz``.
      A cutoff inside the audio band makes the circuit's memory audible (it
      rounds the clipped edges and darkens the tone, the way a real pedal
      does), while guitar fundamentals (82 Hz - 1.3 kHz) and their first
      harmonics pass.  A cutoff near 7 kHz (``C = 10 nF``) would leave the
      circuit almost memoryless within the range a guitar excites.
    * ``Is = 2.52 nA`` and ``n Vt = 1.752 * 25.85 mV = 45.3 mV``: the
      1N4148 small-signal silicon diode at room temperature, whose knee is
      at ~0.5-0.6 V for the currents this resistor delivers.
    * ``drive = 4 V`` per full scale: a guitar-level input of amplitude 0.5
      becomes 2 V, far above the diode knee, so it clips clearly, while an
      input of 0.05 (0.2 V) stays nearly linear.  Training data spanning
      these levels exercises both regimes.
    """

    resistance: float = 2.2e3
    capacitance: float = 22e-9
    saturation_current: float = 2.52e-9
    ideality_thermal_voltage: float = 45.3e-3
    drive: float = 4.0

    def __post_init__(self):
        for name in ("resistance", "capacitance", "saturation_current", "ideality_thermal_voltage", "drive"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    math.isfinite(real_float(value)) and value > 0):
                raise ArgumentError(f"Argument '{name}' of DiodeClipper must be a finite number > 0, not "
                                    f"{shown(value)}")

    @property
    def cutoff_hz(self) -> float:
        """Small-signal cutoff frequency ``1 / (2 pi R C)`` in Hz."""
        return 1.0 / (2.0 * math.pi * self.resistance * self.capacitance)

    @property
    def time_constant(self) -> float:
        """``R * C`` in seconds."""
        return self.resistance * self.capacitance

    def as_dict(self) -> dict:
        """Component values as a plain dictionary (for provenance records)."""
        return {
            "circuit": "diode clipper: series R into C to ground, antiparallel diode pair across C",
            "resistance_ohm": self.resistance,
            "capacitance_farad": self.capacitance,
            "saturation_current_ampere": self.saturation_current,
            "ideality_thermal_voltage_volt": self.ideality_thermal_voltage,
            "drive_volt_per_full_scale": self.drive,
            "cutoff_hz": self.cutoff_hz,
        }


DIODE_CLIPPER = DiodeClipper()
"""The default circuit (see :class:`DiodeClipper` for the choice of values)."""

MIN_INTERNAL_RATE = 768_000.0
"""Lowest rate, in Hz, at which the differential equation is integrated."""

MIN_OVERSAMPLE = 8
"""Lowest internal oversampling factor chosen automatically."""

# Below this the automatic oversampling factor (and its filter) grows without
# bound, and no audio effect runs there anyway.
_MIN_SAMPLE_RATE = 1000.0
#: Largest oversampling factor (the automatic one is at most 768, at 1 kHz) and internal length, in samples
#: (2**31 float64 values: 16 GiB), taken before any memory is allocated.
_MAX_OVERSAMPLE = 1024
_MAX_INTERNAL_SAMPLES = 2 ** 31
#: Largest |drive * x| in volts: a thousand times any level the model is trained on, and far inside the range
#: where the solver's sinh and Newton steps stay meaningful (at 1e100 V it returned 1e280 V, at 1e306 NaN).
_MAX_VOLTS = 1e6

# Resampling filter: a Kaiser-windowed sinc with this many zero crossings on
# each side, cut off at the audio Nyquist.  beta = 9 gives ~90 dB stopband;
# with 32 zero crossings the transition band is 0.455-0.545 fs, so the audio
# band below 0.45 fs (21.6 kHz at 48 kHz) passes flat to ~1e-4 dB.
_FILTER_ZERO_CROSSINGS = 32
_FILTER_KAISER_BETA = 9.0

# Newton stops when the step is below this (volts, on a signal of ~1 V), a
# little above the float64 resolution so rounding noise cannot stall it.
_NEWTON_TOLERANCE = 1e-13
# Bisection halves the bracket at worst; 200 halvings exhaust any float64 bracket.
_NEWTON_MAX_ITERATIONS = 200
# Largest |v / (n Vt)| passed to exp: beyond it exp overflows float64.
_SINH_ARGUMENT_LIMIT = 700.0


@numba.njit(cache=_CACHE)
def _trapezoidal_diode_clipper(u, dt, time_constant, diode_gain, vt, tolerance, max_iterations, arg_limit):
    """Integrate the clipper with the trapezoidal rule, one Newton solve per step.

    Parameters
    ----------
    u : ndarray of float64
        Input voltage at the internal rate.
    dt : float
        Step in seconds.
    time_constant : float
        ``R * C``.
    diode_gain : float
        ``2 * Is / C``.
    vt : float
        ``n * Vt``.
    tolerance : float
        Newton stops when its step is smaller than this (volts).
    max_iterations : int
        Safety bound on iterations per sample.
    arg_limit : float
        Largest magnitude of ``v / vt`` handed to ``exp``.

    Returns
    -------
    v : ndarray of float64
        Capacitor voltage after each step; the circuit starts at rest
        (``u = v = 0``) before the first sample.
    """
    n = u.shape[0]
    v_out = np.empty(n)
    half = 0.5 * dt
    a = half / time_constant
    b = half * diode_gain
    one_plus_a = 1.0 + a
    v_prev = 0.0
    f_prev = 0.0
    for i in range(n):
        u_now = u[i]
        # v_new solves g(v) = (1 + a) v + b sinh(v / vt) - c = 0, with c from
        # the known half of the trapezoid.  g is odd-plus-constant and strictly
        # increasing, so the root lies between 0 and c / (1 + a): a bracket that
        # keeps Newton safe where sinh is steep.
        c = v_prev + half * f_prev + a * u_now
        bound = c / one_plus_a
        lo = min(0.0, bound)
        hi = max(0.0, bound)
        v = min(max(v_prev, lo), hi)
        previous_step = hi - lo
        for _ in range(max_iterations):
            arg = v / vt
            clamped = abs(arg) > arg_limit
            arg = min(max(arg, -arg_limit), arg_limit)
            e = math.exp(arg)
            inv_e = 1.0 / e
            g = one_plus_a * v + b * 0.5 * (e - inv_e) - c
            if g > 0.0:
                hi = v
            else:
                lo = v
            slope = one_plus_a + (b / vt) * 0.5 * (e + inv_e)
            newton_step = g / slope
            v_next = v - newton_step
            # Bisect instead when Newton would leave the bracket, when sinh had
            # to be clamped (g is then wrong), or when Newton is not at least
            # halving its steps: far out on the exponential it creeps by ~vt
            # per iteration, while bisection halves the bracket.
            if clamped or not (lo <= v_next <= hi) or abs(2.0 * newton_step) > previous_step:
                v_next = 0.5 * (lo + hi)
            step = abs(v_next - v)
            previous_step = step
            v = v_next
            if step <= tolerance or hi - lo <= tolerance:
                break
        arg = min(max(v / vt, -arg_limit), arg_limit)
        # f is recomputed from the solution rather than from the trapezoid
        # identity f_new = 2 (v_new - v_prev) / dt - f_prev, which would let
        # rounding errors accumulate into the classic trapezoidal ringing.
        f_prev = (u_now - v) / time_constant - diode_gain * math.sinh(arg)
        v_prev = v
        v_out[i] = v
    return v_out


def internal_oversample(sample_rate: float) -> int:
    """Oversampling factor chosen automatically for a sample rate.

    Parameters
    ----------
    sample_rate : float
        Audio rate in Hz.

    Returns
    -------
    int
        The smallest integer ``L >= MIN_OVERSAMPLE`` with
        ``L * sample_rate >= MIN_INTERNAL_RATE`` (16 at 48 kHz, 8 at 96 kHz,
        18 at 44.1 kHz).
    """
    rate = _check_sample_rate(sample_rate, "sample_rate")
    return max(MIN_OVERSAMPLE, int(math.ceil(MIN_INTERNAL_RATE / rate - 1e-9)))


@functools.lru_cache(maxsize=32)
def _resampling_filter(factor: int) -> np.ndarray:
    # Designed at the internal rate with the cutoff at the audio Nyquist, and
    # used both to interpolate the input and to decimate the output.
    taps = 2 * _FILTER_ZERO_CROSSINGS * factor + 1
    h = sps.firwin(taps, 1.0 / factor, window=("kaiser", _FILTER_KAISER_BETA))
    h.setflags(write=False)
    return h


def simulate_diode_clipper(
    x,
    sample_rate: float,
    *,
    drive: float | None = None,
    oversample: int | None = None,
    circuit: DiodeClipper = DIODE_CLIPPER,
) -> np.ndarray:
    """Output voltage of the diode clipper for an input signal.

    Parameters
    ----------
    x : array_like of float
        1-D input in digital full scale (float32 or float64, finite).
    sample_rate : float
        Rate of ``x`` in Hz (at least 1000).
    drive : float, optional
        Input gain in volts per full scale (> 0); defaults to
        ``circuit.drive``.
    oversample : int, optional
        Internal oversampling factor (>= 1); defaults to
        :func:`internal_oversample` of ``sample_rate``.  Small factors are
        allowed for experiments but alias and integrate less accurately.
    circuit : DiodeClipper, optional
        Component values; defaults to :data:`DIODE_CLIPPER`.

    Returns
    -------
    ndarray of float64
        Capacitor voltage in volts, same length as ``x``, time-aligned with
        it (the resampling filters are zero-phase).  The circuit starts at
        rest and the input is taken as zero before its first sample.

    Raises
    ------
    AudioError
        If ``x`` is not a 1-D array of finite floats.
    ArgumentError
        If ``sample_rate``, ``drive`` or ``oversample`` is out of range.

    Notes
    -----
    The input is interpolated by ``L = oversample`` with a band-limited
    (Kaiser-windowed sinc, ~90 dB) filter, the equation is integrated with
    the trapezoidal rule at ``L * sample_rate`` (each implicit step solved by
    Newton's method with a bisection safeguard to ~1e-13 V), and the result is
    lowpass filtered at ``sample_rate / 2`` and decimated by ``L``.
    """
    samples = _check_audio(x, "x")
    rate = _check_sample_rate(sample_rate, "sample_rate")
    if not isinstance(circuit, DiodeClipper):
        raise ArgumentError(f"Argument 'circuit' must be a DiodeClipper, not {type(circuit).__name__}")
    gain = circuit.drive if drive is None else _check_positive(drive, "drive")
    factor = internal_oversample(rate) if oversample is None else _check_oversample(oversample)
    if samples.size * factor > _MAX_INTERNAL_SAMPLES:
        raise ArgumentError(f"Argument 'x' of {samples.size} samples, oversampled {factor} times, is more than "
                            f"{_MAX_INTERNAL_SAMPLES} samples to integrate: simulate it in parts")
    constants = (circuit.time_constant, 2.0 * circuit.saturation_current / circuit.capacitance)
    if not all(math.isfinite(c) and c > 0 for c in constants):
        raise ArgumentError(f"Argument 'circuit' has component values whose products leave float64's range: "
                            f"R*C = {constants[0]!r}, 2*Is/C = {constants[1]!r}")
    if samples.size == 0:
        return np.zeros(0)
    with np.errstate(over="ignore"):
        u = gain * samples
    volts = np.abs(u)
    if not np.all(volts <= _MAX_VOLTS):  # beyond it (inf too) the solver's output is meaningless, then NaN
        bad = int(np.flatnonzero(~(volts <= _MAX_VOLTS))[0])
        raise AudioError(f"Argument 'x' times the drive ({gain:g} V) must stay within {_MAX_VOLTS:g} V, but "
                         f"sample {bad} is {samples[bad]!r}")
    if factor > 1:
        h = _resampling_filter(factor)
        u = sps.resample_poly(u, factor, 1, window=h)
    v = _trapezoidal_diode_clipper(
        np.ascontiguousarray(u, dtype=np.float64),
        1.0 / (factor * rate),
        circuit.time_constant,
        2.0 * circuit.saturation_current / circuit.capacitance,
        circuit.ideality_thermal_voltage,
        _NEWTON_TOLERANCE,
        _NEWTON_MAX_ITERATIONS,
        _SINH_ARGUMENT_LIMIT,
    )
    if factor > 1:
        v = sps.resample_poly(v, 1, factor, window=_resampling_filter(factor))
    return np.ascontiguousarray(v, dtype=np.float64)


# ---------------------------------------------------------------------------
# Built-in test signal

_TEST_PERIOD = 2.0
_MAX_TEST_SAMPLES = 2 ** 28  # 2 GiB of float64: 93 min at 48 kHz
# Highest partial frequency: with the onset smoothing below, the signal has no
# energy above ~6 kHz, so any rate from 16 kHz up samples it without aliasing.
_TEST_MAX_PARTIAL_HZ = 5000.0
_TEST_MIN_SAMPLE_RATE = 16000.0
# Width (s) of the erf edges that switch events on and off.  The edge
# spectrum falls as exp(-(pi f sigma)^2), i.e. below 1e-15 at 1.9 kHz from a
# partial for 1 ms: smooth enough to count as band-limited.
_ONSET_SIGMA = 1.0e-3
_SWEEP_EDGE_SIGMA = 5.0e-3
_GATE_REACH = 7.0  # erf is 1 to float64 precision beyond 6 sigma

# Strummed E major chord (E2 B2 E3 G#3 B3 E4), 12 ms between strings.
_CHORD_HZ = (82.41, 123.47, 164.81, 207.65, 246.94, 329.63)
# (start s, end s, level, content): the events of one period.
_TEST_EVENTS = (
    (0.02, 0.96, 0.80, "chord"),
    (1.00, 1.30, 0.06, "note 220.0"),
    (1.32, 1.62, 0.60, "note 110.0"),
    (1.65, 1.97, 0.50, "sweep 80.0 4000.0"),
)


def _gate(t, start, end, sigma):
    return 0.5 * (erf((t - start) / sigma) - erf((t - end) / sigma))


def _plucked(t, f0, sigma):
    # A plucked string: stiff-string partials k f0 sqrt(1 + B k^2), amplitudes
    # shaped by a pluck at 1/7 of the string length, higher partials dying
    # faster.  Returns the note and the sum of its partial amplitudes (a bound
    # on its peak).
    inharmonicity = 1.0e-4
    pluck_position = 1.0 / 7.0
    y = np.zeros_like(t)
    total = 0.0
    onset = 0.5 * (1.0 + erf(t / sigma))
    # The decaying exponentials are evaluated only after the onset edge has
    # risen, where they are bounded; before it the note is exactly silent.
    live = t > -_GATE_REACH * sigma
    tl = np.maximum(t, -_GATE_REACH * sigma)
    for k in range(1, 41):
        fk = k * f0 * math.sqrt(1.0 + inharmonicity * k * k)
        if fk > _TEST_MAX_PARTIAL_HZ:
            break
        amplitude = abs(math.sin(math.pi * k * pluck_position)) / k
        decay = 1.5 + 0.004 * fk
        y += amplitude * np.exp(-decay * tl) * np.sin(2.0 * math.pi * fk * tl)
        total += amplitude
    return np.where(live, onset * y, 0.0), total


def _test_event(t, start, end, level, content):
    mask = (t > start - _GATE_REACH * _SWEEP_EDGE_SIGMA) & (t < end + _GATE_REACH * _SWEEP_EDGE_SIGMA)
    out = np.zeros_like(t)
    if not mask.any():
        return out
    tm = t[mask]
    kind, *values = content.split()
    if kind == "sweep":
        f_lo, f_hi = (float(v) for v in values)
        span = end - start
        rate = math.log(f_hi / f_lo) / span
        tau = tm - start
        phase = 2.0 * math.pi * f_lo * np.expm1(rate * tau) / rate
        # Past the end of the sweep the phase is frozen at its final slope so
        # the instantaneous frequency never exceeds f_hi under the fading edge.
        tau_end = span
        phase_end = 2.0 * math.pi * f_lo * math.expm1(rate * tau_end) / rate
        phase = np.where(tau > span, phase_end + 2.0 * math.pi * f_hi * (tau - span), phase)
        phase = np.where(tau < 0.0, 2.0 * math.pi * f_lo * tau, phase)
        out[mask] = level * _gate(tm, start, end, _SWEEP_EDGE_SIGMA) * np.sin(phase)
        return out
    if kind == "chord":
        notes = [(_CHORD_HZ[j], start + 0.012 * j) for j in range(len(_CHORD_HZ))]
    else:
        notes = [(float(values[0]), start)]
    y = np.zeros_like(tm)
    bound = 0.0
    for f0, onset in notes:
        note, total = _plucked(tm - onset, f0, _ONSET_SIGMA)
        y += note
        bound += total
    # The release edge damps the ringing strings before the next event.
    release = 0.5 * (1.0 - erf((tm - end) / _ONSET_SIGMA))
    out[mask] = (level / bound) * release * y
    return out


def test_signal(sample_rate: float, seconds: float = 2.0) -> np.ndarray:
    """Deterministic guitar-like test signal, identical at every sample rate.

    Parameters
    ----------
    sample_rate : float
        Rate in Hz (at least 16 kHz, so the ~6 kHz wide signal does not alias).
    seconds : float, optional
        Duration (> 0).  The 2-second pattern repeats for longer durations.

    Returns
    -------
    ndarray of float64
        ``round(seconds * sample_rate)`` samples of a continuous-time formula
        evaluated at ``n / sample_rate``: a strummed E major chord (level
        0.8), a quiet A3 note (0.06, nearly linear through the clipper), a
        loud A2 note (0.6) and a logarithmic sine sweep 80 Hz - 4 kHz (0.5).
        Notes are plucked-string-like sums of decaying, slightly inharmonic
        partials below 5 kHz, whose peaks stay well below their levels (about
        0.34, 0.04 and 0.31); events switch on and off with erf edges, so the
        signal is band-limited to about 6 kHz, and its peak is the sweep's:
        ``|x| <= 0.5``.

    Raises
    ------
    ArgumentError
        If ``sample_rate`` or ``seconds`` is out of range.
    """
    rate = _check_sample_rate(sample_rate, "sample_rate")
    if rate < _TEST_MIN_SAMPLE_RATE:
        raise ArgumentError(
            f"Argument 'sample_rate' must be >= {_TEST_MIN_SAMPLE_RATE:g} Hz for the test signal "
            f"(its content reaches ~6 kHz and would alias), not {shown(sample_rate)}"
        )
    duration = _check_positive(seconds, "seconds")
    n = int(round(duration * rate))
    if n > _MAX_TEST_SAMPLES:
        raise ArgumentError(f"Argument 'seconds' gives {n} samples at {rate:g} Hz, more than {_MAX_TEST_SAMPLES}: "
                            f"not {shown(seconds)}")
    t = np.arange(n) / rate
    local = np.mod(t, _TEST_PERIOD)
    x = np.zeros(n)
    for start, end, level, content in _TEST_EVENTS:
        x += _test_event(local, start, end, level, content)
    return x


# ---------------------------------------------------------------------------
# Argument checks


def _check_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"Argument '{name}' must be a real number, not {shown(value)}")
    number = real_float(value)
    if not math.isfinite(number):
        raise ArgumentError(f"Argument '{name}' must be finite, not {shown(value)}")
    return number


def _check_positive(value, name: str) -> float:
    number = _check_real(value, name)
    if number <= 0.0:
        raise ArgumentError(f"Argument '{name}' must be > 0, not {shown(value)}")
    return number


def _check_sample_rate(value, name: str) -> float:
    rate = _check_positive(value, name)
    if not _MIN_SAMPLE_RATE <= rate <= MAX_RATE:
        raise ArgumentError(f"Argument '{name}' must be from {_MIN_SAMPLE_RATE:g} Hz to {MAX_RATE:g} Hz, "
                            f"not {shown(value)}")
    return rate


def _check_oversample(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= _MAX_OVERSAMPLE:
        raise ArgumentError(f"Argument 'oversample' must be an integer from 1 to {_MAX_OVERSAMPLE}, "
                            f"not {shown(value)}")
    return int(value)


def _check_audio(x, name: str) -> np.ndarray:
    if isinstance(x, np.ma.MaskedArray):
        raise AudioError(f"Argument '{name}' is a masked array; every sample is simulated, masked or not: "
                         f"pass {name}.filled(0.0) (or another fill value)")
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise AudioError(f"Argument '{name}' must hold floating-point samples, not dtype {array.dtype}")
    if array.ndim != 1:
        raise AudioError(f"Argument '{name}' must be 1-D (one channel), not shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise AudioError(f"Argument '{name}' must be finite, but sample {bad} is {array[bad]!r}")
    return array.astype(np.float64, copy=False)
