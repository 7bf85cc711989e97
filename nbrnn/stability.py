"""Will the adapted model ring or blow up? Linear stability of the interpolated feedback loop.

Following ``docs/methods.md``: find the model's fixed point on silence, take the
Jacobian J of one step (fed-back state → fresh state, all layers, fresh-state
convention) there, and build the loop the delay-line plan closes around it:

* FIR taps k_d on delays d = 1..D: the block companion matrix with first block
  row [k_1·J, …, k_D·J] and an identity shift below;
* allpass: the states s_n … s_{n−K} and the allpass state v_n, with
  v_{n+1} = a·(s_{n+1−K} − v_n) + s_{n−K} and s_{n+1} = J·v_{n+1};
* state-trajectory rescale: (1 − g)·I + g·J.

The loop is locally stable when every eigenvalue has magnitude below one; the
spectral radius says by how much.
"""

from __future__ import annotations

import numpy as np

from . import reference
from .adapt import KIND_ALLPASS, KIND_STN, Plan, is_integer
from .errors import ArgumentError, UnstableError, shown
from .model import Model
from .network import is_real

#: Most rows of a loop matrix built here (the state size times the plan's depth): 128 MiB of float64, and about a
#: minute for its eigenvalues; larger loops are refused before anything is allocated.
MAX_LOOP_SIZE = 4096
#: Newton steps :func:`loop_fixed_point` takes at most.
NEWTON_STEPS = 50


def _check_model(model) -> None:
    if not isinstance(model, Model):
        raise ArgumentError(f"Argument 'model' must be an nbrnn Model (nbrnn.load, nbrnn.Model), not "
                            f"{type(model).__name__}")


def _positive(value, name: str, top: float) -> float:
    if not is_real(value) or not 0 < value <= top:  # NaN too
        raise ArgumentError(f"Argument '{name}' must be a number above 0 and at most {top:g}, not {shown(value)}")
    return float(value)


def _state_size(network) -> int:
    """Every recurrent layer's state, concatenated: the size of a fixed point and of the loop's Jacobian."""
    return sum(layer.state_size for layer in network.recurrent_layers)


def fixed_point(model: Model, cond=None, seconds: float = 0.25) -> np.ndarray:
    """The state the plain model settles to on silence (all recurrent layers, concatenated); ``seconds`` of
    silence (at least 1000 samples), up to 60."""
    _check_model(model)
    n = max(1000, int(_positive(seconds, "seconds", 60.0) * model.trained_rate))
    stream = model.stream(model.trained_rate, method="naive")
    inp = model.inputs(np.zeros(n), cond)
    stream.feed(inp)
    return stream.state[0].astype(np.float64)


def _split(network, flat):
    out, pos = [], 0
    for layer in network.recurrent_layers:
        out.append(flat[pos:pos + layer.state_size])
        pos += layer.state_size
    return out


def _silence(model: Model, cond) -> np.ndarray:
    """One step's input on silence: zero audio, the conditioning inputs at ``cond`` (checked as
    :meth:`Model.inputs` checks it: an unconditioned model refuses values)."""
    return model.inputs(np.zeros(1), cond)[0, 0].astype(np.float64)


def _step(model: Model, x: np.ndarray, state: np.ndarray) -> np.ndarray:
    net = model.network
    return np.concatenate(reference._step(net, x, _split(net, state))[0])  # x and state checked by the callers


def loop_gain(plan) -> float:
    """What the plan's delay line passes at DC: the sum of its FIR taps (1 up to rounding for every
    interpolator; any number for a ``fir`` kernel), 1 for the allpass and the state-trajectory rescale."""
    _check_plan(plan)
    if plan.kind in (KIND_ALLPASS, KIND_STN):
        return 1.0
    return float(np.sum(plan.tap_weight))


def loop_fixed_point(model: Model, plan, cond=None, seconds: float = 0.25) -> np.ndarray:
    """The fresh state s the adapted loop of ``plan`` holds on silence (it feeds back g·s, g =
    :func:`loop_gain`): the plain model's (:func:`fixed_point`) when the delay line passes DC unchanged (g = 1
    within 1e-9), else the solution of s = F(g·s) (F: one step of the model from the fed-back state) that
    Newton's method reaches from the plain model's."""
    state = fixed_point(model, cond, seconds)
    gain = loop_gain(plan)
    if abs(gain - 1.0) <= 1e-9 or state.size == 0:
        return state
    x = _silence(model, cond)
    eye = np.eye(state.size)
    for _ in range(NEWTON_STEPS):
        residual = state - _step(model, x, gain * state)
        jac = jacobian(model, gain * state, cond)
        try:
            step = np.linalg.solve(eye - gain * jac, residual)
        except np.linalg.LinAlgError:
            break
        state = state - step
        if not np.isfinite(state).all():
            break
        if np.max(np.abs(step)) <= 1e-13 * (1.0 + np.max(np.abs(state))):
            return state
    raise UnstableError(f"the loop of {plan.description or plan.method} (its taps sum to {gain:.6g}, not 1) has no "
                        f"fixed point on silence near the plain model's: there is no state to linearise around")


def jacobian(model: Model, state: np.ndarray, cond=None, eps: float = 1e-6) -> np.ndarray:
    """d(fresh state)/d(fed-back state) of one step with silent audio, by central differences of step ``eps``
    (at most 1) around ``state``, every recurrent layer's state concatenated."""
    _check_model(model)
    net = model.network
    size = _state_size(net)
    if not isinstance(state, np.ndarray) or state.shape != (size,) or state.dtype.kind not in "fiu":
        what = f"{state.dtype} array of shape {state.shape}" if isinstance(state, np.ndarray) else type(state).__name__
        raise ArgumentError(f"Argument 'state' must be a real array of shape ({size},) (every recurrent layer's "
                            f"state), not a {what}")
    if not np.isfinite(state).all():
        raise ArgumentError("Argument 'state' holds NaN/Inf values")
    state = state.astype(np.float64)
    eps = _positive(eps, "eps", 1.0)
    x = _silence(model, cond)
    jac = np.empty((size, size))
    for j in range(size):
        plus, minus = state.copy(), state.copy()
        plus[j] += eps
        minus[j] -= eps
        jac[:, j] = (_step(model, x, plus) - _step(model, x, minus)) / (2 * eps)
    if not np.isfinite(jac).all():
        raise ArgumentError(f"Argument 'state' is too far out for a step of the model (largest |value| "
                            f"{np.max(np.abs(state)):.3g}): the differences are not finite")
    return jac


def loop_size(state_size: int, plan) -> int:
    """Rows of the loop matrix of ``plan`` around a step with ``state_size`` state values."""
    _check_plan(plan)
    if not is_integer(state_size) or state_size < 0:
        raise ArgumentError(f"Argument 'state_size' must be a non-negative integer, not {shown(state_size)}")
    if plan.kind == KIND_STN:
        return state_size
    if plan.kind == KIND_ALLPASS:
        return (int(plan.tap_delay[0]) + 2) * state_size
    return int(plan.depth) * state_size


def _check_loop_size(state_size: int, plan) -> None:
    rows = loop_size(state_size, plan)
    if rows > MAX_LOOP_SIZE:
        raise ArgumentError(
            f"the loop of {plan.description or plan.method} around {state_size} state values is a {rows} x {rows} "
            f"matrix; the stability analysis takes at most {MAX_LOOP_SIZE} rows (a shorter kernel, a lower order "
            f"or a rate nearer the trained one)")


def _check_plan(plan):
    if not isinstance(plan, Plan):
        raise ArgumentError(f"Argument 'plan' must be a Plan (nbrnn.make_plan, Model.plan), not "
                            f"{type(plan).__name__}")
    return plan


def loop_matrix(jac: np.ndarray, plan) -> np.ndarray:
    """The linearised closed loop of ``plan`` around a step with Jacobian ``jac`` (a square real matrix; at most
    :data:`MAX_LOOP_SIZE` rows in all)."""
    _check_plan(plan)
    try:
        jac = np.asarray(jac)
    except (TypeError, ValueError):  # ragged nested lists
        jac = np.asarray(None)
    if jac.dtype.kind not in "fiu" or jac.ndim != 2 or jac.shape[0] != jac.shape[1]:
        raise ArgumentError(f"Argument 'jac' must be a square 2-D array of real numbers, not a {jac.dtype} array "
                            f"of shape {jac.shape}")
    if not np.isfinite(jac).all():
        raise ArgumentError("Argument 'jac' holds NaN/Inf values")
    jac = jac.astype(np.float64)
    s = jac.shape[0]
    _check_loop_size(s, plan)
    if plan.kind == KIND_STN:
        g = float(plan.tap_weight[0])
        return (1.0 - g) * np.eye(s) + g * jac
    if plan.kind == KIND_ALLPASS:
        k, a = int(plan.tap_delay[0]), float(plan.tap_weight[0])
        # z_n = [s_n, s_{n-1}, ..., s_{n-K}, v_n]
        blocks = k + 2
        m = np.zeros((blocks * s, blocks * s))
        v_row = np.zeros((s, blocks * s))
        v_row[:, (k - 1) * s:k * s] += a * np.eye(s)       # a * s_{n+1-K}
        v_row[:, k * s:(k + 1) * s] += np.eye(s)           # + s_{n-K}
        v_row[:, (k + 1) * s:] -= a * np.eye(s)            # - a * v_n
        m[:s] = jac @ v_row                                # s_{n+1} = J v_{n+1}
        m[s:(k + 1) * s, :k * s] = np.eye(k * s)           # shift the history
        m[(k + 1) * s:] = v_row
        return m
    depth = int(plan.depth)
    weights = np.zeros(depth)
    for d, w in zip(plan.tap_delay, plan.tap_weight):
        weights[int(d) - 1] += w
    m = np.zeros((depth * s, depth * s))
    for d in range(depth):
        m[:s, d * s:(d + 1) * s] = weights[d] * jac
    m[s:, :-s] = np.eye((depth - 1) * s)
    return m


def spectral_radius(model: Model, sample_rate: float, method: str = "lagrange", *, cond=None, **options) -> float:
    """Largest |eigenvalue| of the adapted loop at the fixed point on silence (< 1: locally stable; 0 without state).

    Parameters
    ----------
    model : Model
    sample_rate : float
        The run rate; for ``oversample`` plans the loop runs at the oversampled rate.
    method, **options
        As for :meth:`Model.process`.
    cond : optional
        Conditioning values (constants) for conditioned models.

    Raises
    ------
    ArgumentError
        The loop matrix would have more than :data:`MAX_LOOP_SIZE` rows (state size times the plan's depth).
    UnstableError
        A ``fir`` kernel whose taps do not sum to 1 leaves the loop no fixed point near the plain model's
        (:func:`loop_fixed_point`).
    """
    _check_model(model)
    plan = model.plan(sample_rate, method, **options)
    _check_loop_size(_state_size(model.network), plan)
    state = loop_fixed_point(model, plan, cond)
    jac = jacobian(model, loop_gain(plan) * state, cond)  # at the state fed back: the taps' sum times the state
    return float(np.max(np.abs(np.linalg.eigvals(loop_matrix(jac, plan))), initial=0.0))  # no state: no loop
