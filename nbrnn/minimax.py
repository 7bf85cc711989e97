"""Minimax (L-infinity optimal) FIR fractional-delay kernels, designed on demand.

The kernel ``k_0 .. k_K`` of order ``K`` interpolates the fed-back recurrent state
from the states delayed by ``1 .. K + 1`` samples::

    ŝ_n = Σ_j k_j · s_{n-1-j}

Its frequency response relative to the first tap, ``H(ω) = Σ_j k_j e^{-iωj}``,
should approximate the fractional delay ``e^{-iωδ}`` with ``δ = R - 1``, so that
the total feedback delay is ``1 + δ = R`` samples.  :func:`minimax_kernel` returns
the taps that minimise the largest complex error ``max |H(ω) - e^{-iωδ}|`` over
a uniform grid of the band ``0 <= ω < bandwidth·π``, subject to ``Σ_j k_j = 1``.

References
----------
.. [1] A. Carson, A. Wright and S. Bilbao, "Interpolation filter design for
   sample rate independent audio effect RNNs", Proc. IEEE International
   Conference on Acoustics, Speech and Signal Processing (ICASSP), 2025.
.. [2] W. Putnam and J. O. Smith, "Design of fractional delay filters using
   convex optimization", Proc. IEEE Workshop on Applications of Signal
   Processing to Audio and Acoustics (WASPAA), New Paltz, NY, 1997.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from nbrnn.adapt import MAX_DEPTH, real_float
from nbrnn.errors import ArgumentError, shown

__all__ = ["minimax_kernel", "minimax_error", "MAX_ORDER", "DEFAULT_GRID"]

#: Largest kernel order accepted by :func:`minimax_kernel`.
MAX_ORDER = 64

#: Number of frequencies in the design grid by default (the grid of the published kernels).
DEFAULT_GRID = 1024

_MIN_GRID = 16
_MAX_GRID = 1 << 14

# Interior-point iterations: Mehrotra's method needs 15-25 on these problems.
_IPM_ITERATIONS = 80
# Relative duality gap at which the interior-point method stops; the Newton
# polish below then removes the remaining error in the taps.
_IPM_GAP = 1e-13
# Largest certified relative gap (max error over the grid versus a lower bound
# on the optimum) accepted for a returned kernel.  Designs that cannot reach it
# are too close to rounding level to be meaningful in double precision.
_ACCEPT_GAP = 1e-6
# ... or by this much in absolute terms: the target e^{-iωδ} has unit modulus,
# so this is a few hundred ulps, below which a gap cannot be resolved.
_ACCEPT_ABS = 1e-13
# Multiplier (the multipliers sum to one) above which a frequency is taken as
# extremal when the interior-point solution is polished.
_ACTIVE_WEIGHT = 1e-7
_NEWTON_ITERATIONS = 30


def _grid(bandwidth: float, grid: int) -> np.ndarray:
    # The band edge itself is left out, as in the published kernels: points
    # m·bandwidth·π/grid for m = 0 .. grid-1.
    return math.pi * bandwidth * np.arange(grid) / grid


def minimax_error(kernel, delta: float, bandwidth: float = 0.5, *, grid: int = DEFAULT_GRID) -> float:
    """Largest complex error of a fractional-delay kernel over the design grid.

    Parameters
    ----------
    kernel : array_like, shape (K + 1,)
        Taps applied to the states delayed by ``1 .. K + 1`` samples.
    delta : float
        Target delay relative to the first tap, in samples (``R - 1``).
    bandwidth : float, optional
        Upper end of the band as a fraction of the Nyquist frequency, in (0, 1).
    grid : int, optional
        Number of frequencies ``m·bandwidth·π/grid``, ``m = 0 .. grid-1``.

    Returns
    -------
    float
        ``max_m |Σ_j k_j e^{-iω_m j} - e^{-iω_m δ}|``, the quantity
        :func:`minimax_kernel` minimises.

    Raises
    ------
    ArgumentError
        If `kernel` is not a non-empty 1-D array of finite numbers or another
        argument is out of range.
    """
    delta, bandwidth, grid = _check_common(delta, bandwidth, grid)
    try:
        taps = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"Argument 'kernel' must be a non-empty 1-D array of finite numbers, not {shown(kernel)}"
        ) from None
    if taps.ndim != 1 or taps.size < 1 or not np.all(np.isfinite(taps)):
        raise ArgumentError(
            f"Argument 'kernel' must be a non-empty 1-D array of finite numbers, not one of shape {taps.shape}"
        )
    if taps.size > MAX_DEPTH:  # the longest kernel a plan takes (grid x taps complex values)
        raise ArgumentError(f"Argument 'kernel' may have at most {MAX_DEPTH} taps, not {taps.size}")
    w = _grid(bandwidth, grid)
    chunk = max(1, (1 << 22) // grid)  # taps per product: at most 4 Mi complex values (64 MiB) at once
    response = np.exp(-1j * np.outer(w, np.arange(min(chunk, taps.size)))) @ taps[:chunk]
    for start in range(chunk, taps.size, chunk):
        part = taps[start:start + chunk]
        response += np.exp(-1j * np.outer(w, np.arange(start, start + part.size))) @ part
    return float(np.max(np.abs(response - np.exp(-1j * delta * w))))


def minimax_kernel(
    delta: float, order: int, bandwidth: float = 0.5, *, grid: int = DEFAULT_GRID
) -> np.ndarray:
    """Design a minimax (L-infinity optimal) FIR fractional-delay kernel.

    The taps ``k_0 .. k_K`` (``K = order``) minimise the largest complex error

    .. math::

        \\max_m \\left| \\sum_{j=0}^{K} k_j e^{-i\\omega_m j} - e^{-i\\omega_m \\delta} \\right|,
        \\qquad \\omega_m = \\frac{m \\, b \\, \\pi}{G},\\ m = 0, \\dots, G-1,

    subject to ``Σ_j k_j = 1``, where ``b`` is `bandwidth` and ``G`` is `grid`.
    This is the complex Chebyshev criterion (the modulus of the complex error,
    not magnitude and phase separately) of the minimax kernels of Carson,
    Wright and Bilbao (ICASSP 2025), posed as in Putnam and Smith (1997) as a
    second-order cone program; the kernels published with that paper use this
    grid with 1024 points (band edge excluded) and half the Nyquist band,
    which are the defaults here.  The unity-sum constraint makes the DC gain
    exactly one, so a constant state is fed back unchanged and the fixed
    points of the recurrent model do not move when it runs at another rate.

    The cone program is solved by a primal-dual interior-point method
    (Nesterov-Todd scaling, Mehrotra predictor-corrector), whose multipliers
    identify the extremal frequencies; Newton's method on the optimality
    conditions restricted to those frequencies then polishes the taps to
    working precision.  A kernel is returned only with a certificate: its
    maximum error exceeds a proven lower bound on the optimum by at most a
    relative 1e-6 or an absolute 1e-13 (typically a relative 1e-10 or less).

    The published kernels (orders 1 to 10 for 44.1 -> 48 kHz and 48 -> 44.1
    kHz) have maximum errors within a relative 3.5e-6 above these optima.
    Because the optimum is flat (quadratic) along some directions, such a
    small excess still lets taps move: theirs differ from these by up to
    2.2e-4.

    Parameters
    ----------
    delta : float
        Delay relative to the first tap in samples, ``δ = R - 1`` where ``R`` is
        the ratio of the running to the training sample rate.  Must satisfy
        ``-1 < delta < order + 1``: the total delay ``1 + δ`` must be positive
        and lie within one sample of the span of the taps.  Negative values
        (``R < 1``) extrapolate.
    order : int
        Kernel order ``K``, ``1 <= K <= MAX_ORDER``; the kernel has ``K + 1`` taps.
    bandwidth : float, optional
        Upper end of the approximation band as a fraction of the Nyquist
        frequency, ``0 < bandwidth < 1``.  The default 0.5 is the band of the
        published kernels.
    grid : int, optional
        Number of frequencies in the design grid (band edge excluded),
        ``16 <= grid <= 16384`` and ``grid >= 4 * (order + 1)``.  The default
        1024 is the grid of the published kernels.

    Returns
    -------
    numpy.ndarray of float64, shape (order + 1,)
        The taps ``k_0 .. k_K``, a fresh array on every call.

    Raises
    ------
    ArgumentError
        If an argument is out of range, or if the design is beyond double
        precision: high orders with narrow bands drive the optimal error down
        to rounding level, where no kernel can be certified optimal.

    Notes
    -----
    When `delta` is an integer in ``0 .. order`` the exact delay is a single
    tap and the kernel is the corresponding unit impulse.  Designs are cached
    per argument tuple, so repeated calls are cheap and return identical values.

    Examples
    --------
    >>> k = minimax_kernel(48 / 44.1 - 1, 3)
    >>> k.shape
    (4,)
    >>> bool(abs(k.sum() - 1) < 1e-12)
    True
    """
    if isinstance(order, bool):
        raise ArgumentError(f"Argument 'order' must be an integer in 1..{MAX_ORDER}, not {shown(order)}")
    try:
        order = operator.index(order)
    except TypeError:
        raise ArgumentError(f"Argument 'order' must be an integer in 1..{MAX_ORDER}, not {shown(order)}") from None
    if not 1 <= order <= MAX_ORDER:
        raise ArgumentError(f"Argument 'order' must be an integer in 1..{MAX_ORDER}, not {order}")
    delta, bandwidth, grid = _check_common(delta, bandwidth, grid)
    if not -1.0 < delta < order + 1.0:
        raise ArgumentError(
            f"Argument 'delta' must satisfy -1 < delta < order + 1 = {order + 1} "
            f"(delay 1 + delta positive and within one sample of the taps), not {shown(delta)}"
        )
    if grid < 4 * (order + 1):
        raise ArgumentError(
            f"Argument 'grid' must be at least 4 * (order + 1) = {4 * (order + 1)} for order {order}, not {grid}"
        )
    return _design(delta, order, bandwidth, grid).copy()


def _check_common(delta, bandwidth, grid):
    """Validate and normalise the arguments shared by the public functions."""
    # Strings and booleans would convert silently; neither is a delay.
    if isinstance(delta, (bool, str, bytes)):
        raise ArgumentError(f"Argument 'delta' must be a finite real number, not {shown(delta)}")
    try:
        number = real_float(delta)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise ArgumentError(f"Argument 'delta' must be a finite real number, not {shown(delta)}")
    delta = number
    if isinstance(bandwidth, (bool, str, bytes)):
        raise ArgumentError(f"Argument 'bandwidth' must be a number in (0, 1), not {shown(bandwidth)}")
    try:
        number = real_float(bandwidth)
    except (TypeError, ValueError):
        raise ArgumentError(f"Argument 'bandwidth' must be a number in (0, 1), not {shown(bandwidth)}") from None
    if not 0.0 < number < 1.0:
        raise ArgumentError(
            f"Argument 'bandwidth' must be a number in (0, 1) (a fraction of the Nyquist frequency), not "
            f"{shown(bandwidth)}"
        )
    bandwidth = number
    if isinstance(grid, bool):
        raise ArgumentError(f"Argument 'grid' must be an integer in {_MIN_GRID}..{_MAX_GRID}, not {shown(grid)}")
    try:
        grid = operator.index(grid)
    except TypeError:
        raise ArgumentError(
            f"Argument 'grid' must be an integer in {_MIN_GRID}..{_MAX_GRID}, not {shown(grid)}") from None
    if not _MIN_GRID <= grid <= _MAX_GRID:
        raise ArgumentError(f"Argument 'grid' must be an integer in {_MIN_GRID}..{_MAX_GRID}, not {grid}")
    return delta, bandwidth, grid


@functools.lru_cache(maxsize=256)
def _design(delta: float, order: int, bandwidth: float, grid: int) -> np.ndarray:
    taps = np.zeros(order + 1)
    if delta == round(delta) and 0 <= delta <= order:
        taps[int(round(delta))] = 1.0
        taps.flags.writeable = False
        return taps

    # DC (m = 0) is left out: the unity-sum constraint makes its error zero.
    w = _grid(bandwidth, grid)[1:]
    # Eliminate the constraint: k_0 = 1 - Σ_{j>=1} v_j and k_j = v_j, so the
    # error E = c - B·v is an affine function of the unconstrained real v.
    c = np.exp(-1j * delta * w) - 1.0
    B = np.exp(-1j * np.outer(w, np.arange(1, order + 1))) - 1.0
    # An orthonormal basis of B's columns keeps every linear system well
    # conditioned; z are the coordinates in it (v = R⁻¹z).  Scaling c to unit
    # size makes the tolerances below relative.
    Q, Rf = np.linalg.qr(np.concatenate([B.real, B.imag]))
    P = Q[: w.size] + 1j * Q[w.size:]
    scale = float(np.max(np.abs(c)))
    c = c / scale

    # Failed steps show up as non-finite values, which the solvers check for;
    # floating-point warnings on the way would only be noise.
    with np.errstate(all="ignore"):
        z, level, bound, multipliers = _socp(c, P)
        polished = _polish(c, P, z, multipliers, level)
    # The polished taps are kept when they are no worse than the interior
    # point (up to rounding); the interior point's dual bound certifies both.
    if polished is not None and polished[1] <= level * (1.0 + 1e-12):
        z, level = polished[:2]
        bound = max(bound, polished[2])
    v = np.linalg.solve(Rf, z * scale)
    taps[1:] = v
    # Setting the first tap last makes the taps sum to one as exactly as floats allow.
    taps[0] = 1.0 - math.fsum(v)
    # The certificate is checked on the taps actually returned, so that
    # rounding in the change of basis cannot slip through.
    achieved = minimax_error(taps, delta, bandwidth, grid=grid) if np.all(np.isfinite(taps)) else math.inf
    bound *= scale
    if not (bound > 0 and achieved - bound <= max(_ACCEPT_GAP * achieved, _ACCEPT_ABS)):
        raise ArgumentError(
            f"order {order} with bandwidth {bandwidth} (delta {delta}) is beyond double precision: "
            f"the optimal error (about {level * scale:.1e}) is too close to the rounding level of "
            f"taps as large as {float(np.max(np.abs(taps))):.1e} to be certified; "
            "lower the order or widen the band"
        )
    taps.flags.writeable = False
    return taps


# --- second-order cones in R^3, stored one per row -------------------------------


def _det(u):
    """u0² - |u1|², computed as a product to avoid cancellation near the boundary."""
    r = np.hypot(u[:, 1], u[:, 2])
    return (u[:, 0] - r) * (u[:, 0] + r)


def _jordan(u, v):
    """Jordan product u∘v = (u·v, u0·v1 + v0·u1) of the second-order cone."""
    out = np.empty_like(u)
    out[:, 0] = np.sum(u * v, axis=1)
    out[:, 1:] = u[:, :1] * v[:, 1:] + v[:, :1] * u[:, 1:]
    return out


def _jordan_solve(u, r):
    """x with u∘x = r."""
    x = np.empty_like(r)
    x[:, 0] = (u[:, 0] * r[:, 0] - u[:, 1] * r[:, 1] - u[:, 2] * r[:, 2]) / _det(u)
    x[:, 1:] = (r[:, 1:] - x[:, :1] * u[:, 1:]) / u[:, :1]
    return x


def _max_step(u, d):
    """Largest α >= 0 keeping u + α·d in every cone (u strictly inside)."""
    a = d[:, 0] ** 2 - d[:, 1] ** 2 - d[:, 2] ** 2
    b = u[:, 0] * d[:, 0] - u[:, 1] * d[:, 1] - u[:, 2] * d[:, 2]
    c = _det(u)
    disc = b * b - a * c
    real = disc >= 0
    root = np.sqrt(np.where(real, disc, 0.0))
    # Both roots of a·α² + 2b·α + c without cancellation; the cone is left at
    # the smallest positive one (c > 0, so none means it is never left).
    q = -(b + np.where(b >= 0, root, -root))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = q / a
        r2 = c / q
    alpha = np.inf
    for r in (r1, r2):
        hit = real & np.isfinite(r) & (r > 0)
        if np.any(hit):
            alpha = min(alpha, float(np.min(r[hit])))
    return alpha


def _nt_scaling(s, y):
    """Nesterov-Todd scaling W = η(2vvᵀ - J) per cone, with W·y = W⁻¹·s."""
    ns = np.sqrt(_det(s))
    ny = np.sqrt(_det(y))
    sb = s / ns[:, None]
    yb = y / ny[:, None]
    gamma = np.sqrt((1.0 + np.sum(sb * yb, axis=1)) / 2.0)
    yb[:, 1:] *= -1.0
    wb = (sb + yb) / (2.0 * gamma[:, None])  # the scaling point, normalised
    v = wb.copy()
    v[:, 0] += 1.0
    v /= np.sqrt(2.0 * (wb[:, :1] + 1.0))  # its square root in the Jordan algebra
    return np.sqrt(ns / ny), v


def _scale(eta, v, u, inverse=False):
    """W·u, or W⁻¹·u = η⁻¹(2(Jv)(Jv)ᵀ - J)·u; u has shape (m, 3) or (m, 3, k)."""
    sign = np.array([1.0, -1.0, -1.0])
    vv = v * sign if inverse else v
    if u.ndim == 2:
        out = 2.0 * vv * np.sum(vv * u, axis=1)[:, None] - u * sign
    else:
        out = 2.0 * vv[:, :, None] * np.einsum("mi,mik->mk", vv, u)[:, None, :] - u * sign[:, None]
    factor = 1.0 / eta if inverse else eta
    return out * (factor[:, None] if u.ndim == 2 else factor[:, None, None])


def _socp(c, P):
    """Minimise t subject to |c_m - P_m·z| <= t for every m.

    Primal-dual interior-point method on the cones s_m = (t, Re E_m, Im E_m),
    E = c - P·z, with dual variables y_m; the multipliers y_m0 sum to one.
    Returns z, the maximum error at z, a lower bound on the optimum and the
    normalised multipliers y_m0.
    """
    m, n = P.shape
    Pr, Pi = P.real, P.imag
    h = np.zeros((m, 3))
    h[:, 1] = c.real
    h[:, 2] = c.imag
    # s = h - G·x with x = (z, t).
    G = np.zeros((m, 3, n + 1))
    G[:, 0, n] = -1.0
    G[:, 1, :n] = Pr
    G[:, 2, :n] = Pi
    Gf = G.reshape(3 * m, n + 1)
    f = np.zeros(n + 1)
    f[n] = 1.0

    # Least-squares start (P has orthonormal real columns), strictly inside
    # every cone; y = (1/m, 0, 0) is dual feasible.
    z = Pr.T @ c.real + Pi.T @ c.imag
    err = np.abs(c - P @ z)
    x = np.concatenate([z, [1.1 * float(np.max(err)) + 1e-3]])
    s = h - (Gf @ x).reshape(m, 3)
    y = np.zeros((m, 3))
    y[:, 0] = 1.0 / m
    e = np.zeros((m, 3))
    e[:, 0] = 1.0
    best = (x, y)
    smallest = math.inf
    stalled = 0
    for _ in range(_IPM_ITERATIONS):
        rx = Gf.T @ y.reshape(-1) + f
        rs = s + (Gf @ x).reshape(m, 3) - h
        gap = float(np.sum(s * y))
        if not (math.isfinite(gap) and np.all(_det(s) > 0) and np.all(_det(y) > 0)):
            break
        best = (x, y)
        if gap <= _IPM_GAP * x[n]:
            break
        # Near the rounding floor the gap stops shrinking; further steps only
        # risk leaving the cones.
        if gap < 0.5 * smallest:
            smallest = gap
            stalled = 0
        else:
            stalled += 1
            if stalled >= 4:
                break
        mu = gap / m
        eta, v = _nt_scaling(s, y)
        lam = _scale(eta, v, y)
        WG = _scale(eta, v, G, inverse=True).reshape(3 * m, n + 1)
        try:
            L = np.linalg.cholesky(WG.T @ WG)
        except np.linalg.LinAlgError:
            break
        Wrs = _scale(eta, v, rs, inverse=True)

        def direction(rhs):
            # Solve Gᵀdy = -rx, ds + G·dx = -rs, λ∘(W⁻¹ds + W·dy) = rhs by
            # eliminating ds and dy (normal equations in dx).
            u = Wrs + _jordan_solve(lam, rhs)
            r = -rx - WG.T @ u.reshape(-1)
            dx = np.linalg.solve(L.T, np.linalg.solve(L, r))
            dy = _scale(eta, v, (WG @ dx).reshape(m, 3) + u, inverse=True)
            ds = -rs - (Gf @ dx).reshape(m, 3)
            return dx, ds, dy

        ll = _jordan(lam, lam)
        dx, ds, dy = direction(-ll)
        a = min(1.0, _max_step(s, ds), _max_step(y, dy))
        sigma = (float(np.sum((s + a * ds) * (y + a * dy))) / m / mu) ** 3
        corr = _jordan(_scale(eta, v, ds, inverse=True), _scale(eta, v, dy))
        dx, ds, dy = direction(-ll - corr + sigma * mu * e)
        a = min(1.0, 0.99 * _max_step(s, ds), 0.99 * _max_step(y, dy))
        x = x + a * dx
        s = s + a * ds
        y = y + a * dy
    x, y = best
    z = x[:n]
    level = float(np.max(np.abs(c - P @ z)))
    y = y / float(np.sum(y[:, 0]))
    return z, level, _lower_bound(c, P, -(y[:, 1] + 1j * y[:, 2]), z), y[:, 0]


def _lower_bound(c, P, weights, z):
    """Lower bound on min_z' max_m |E_m(z')| from weights with Σ|w_m| <= 1.

    For any z', max_m |E_m(z')| >= Re Σ conj(w_m)·E_m(z') = A - g·(z' - z) with
    A = Re Σ conj(w_m)·E_m(z) and g = Re Σ conj(w_m)·P_m.  The real columns of
    P are orthonormal, so ||E(z')||₂ >= ||z' - z||₂ - ||E(z)||₂: an optimum lies
    within ρ = √m·max|E(z)| + ||E(z)||₂ of z, and A - ||g||₂·ρ is a bound.
    Optimal weights make g vanish; only its rounding residue is charged.
    """
    E = c - P @ z
    A = float(np.real(np.conj(weights) @ E))
    g = np.real(np.conj(weights) @ P)
    rho = math.sqrt(c.size) * float(np.max(np.abs(E))) + float(np.linalg.norm(E))
    return A - float(np.linalg.norm(g)) * rho


def _polish(c, P, z, multipliers, level):
    """Newton's method on the optimality conditions at the extremal frequencies.

    With active set S and multipliers λ (Σ λ_i = 1, λ >= 0) the optimum
    satisfies Σ_i λ_i ∇|E_i|² = 0 and |E_i|² = t² on S; Newton's method on
    these equations from the interior point converges quadratically.
    Returns (z, maximum error at z, lower bound from λ), or None when the
    polish does not apply (degenerate active set, no convergence, or a
    negative multiplier).
    """
    S = np.flatnonzero(multipliers > _ACTIVE_WEIGHT)
    n = P.shape[1]
    r = S.size
    if r == 0 or r > n + 1:
        return None
    lam = multipliers[S] / multipliers[S].sum()
    BS = P[S]
    cS = c[S]
    t2 = level * level
    size = n + 1 + r
    best = None
    for _ in range(_NEWTON_ITERATIONS):
        ES = cS - BS @ z
        grad = -2.0 * np.real(np.conj(BS) * ES[:, None]).T  # ∇|E_i|², n x r
        F = np.concatenate([grad @ lam, np.abs(ES) ** 2 - t2, [lam.sum() - 1.0]])
        residual = float(np.max(np.abs(F)))
        if not math.isfinite(residual):
            break
        if best is not None and residual >= best[0]:
            break  # quadratic convergence has reached the rounding floor
        best = (residual, z, t2, lam)
        J = np.zeros((size, size))
        J[:n, :n] = 2.0 * np.real(np.conj(BS).T @ (BS * lam[:, None]))
        J[:n, n + 1:] = grad
        J[n:n + r, :n] = grad.T
        J[n:n + r, n] = -1.0
        J[n + r, n + 1:] = 1.0
        try:
            d = np.linalg.solve(J, -F)
        except np.linalg.LinAlgError:
            break
        z = z + d[:n]
        t2 = t2 + d[n]
        lam = lam + d[n + 1:]
    if best is None:
        return None
    residual, z, t2, lam = best
    if not (residual < 1e-10 and t2 > 0 and np.all(lam >= 0) and np.all(np.isfinite(z))):
        return None
    E = c - P @ z
    weights = np.zeros(c.size, dtype=complex)
    weights[S] = (lam / lam.sum()) * E[S] / np.abs(E[S])
    return z, float(np.max(np.abs(E))), _lower_bound(c, P, weights, z)
