"""GARCH(1,1) fits for many symbols in one compiled call.

The model is ``arch``'s zero-mean GARCH(1,1) with normal errors, on the same likelihood:
the first variance comes from ``arch``'s backcast (an exponentially weighted mean of the
first 75 squared returns, weights 0.94^i), then ``s2[t] = omega + alpha r[t-1]^2 +
beta s2[t-1]``. The maximum is found by BHHH (Newton steps with the outer product of the
per-day scores as the Hessian, the classic GARCH estimator), projected onto ``alpha, beta
>= 0``, ``alpha + beta < 1``, with step halving that keeps ``omega > 0`` and never lowers
the likelihood.
Each symbol is its own problem; the loop over symbols is compiled, so one call replaces a
per-symbol optimizer started from Python (``tests/test_garch.py`` checks it against
``arch``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

Arr = np.ndarray
BACKCAST_DAYS, BACKCAST_DECAY = 75, 0.94
LOG_2PI = float(np.log(2 * np.pi))


@njit(cache=True, nogil=True)
def _loglik(r2: Arr, n: int, backcast: float, theta: Arr, grad: Arr, opg: Arr) -> float:
    """Log-likelihood of one series; its gradient and the scores' outer product in place."""
    omega, alpha, beta = theta[0], theta[1], theta[2]
    s2 = omega + (alpha + beta) * backcast
    d0, d1, d2 = 1.0, backcast, backcast
    ll = 0.0
    grad[:] = 0.0
    opg[:, :] = 0.0
    for t in range(n):
        if t > 0:
            d0 = 1.0 + beta * d0
            d1 = r2[t - 1] + beta * d1
            d2 = s2 + beta * d2
            s2 = omega + alpha * r2[t - 1] + beta * s2
        if s2 <= 0.0:
            return -np.inf
        ll += -0.5 * (LOG_2PI + np.log(s2) + r2[t] / s2)
        w = 0.5 * (r2[t] / s2 - 1.0) / s2
        g0, g1, g2 = w * d0, w * d1, w * d2
        grad[0] += g0
        grad[1] += g1
        grad[2] += g2
        opg[0, 0] += g0 * g0
        opg[0, 1] += g0 * g1
        opg[0, 2] += g0 * g2
        opg[1, 1] += g1 * g1
        opg[1, 2] += g1 * g2
        opg[2, 2] += g2 * g2
    opg[1, 0], opg[2, 0], opg[2, 1] = opg[0, 1], opg[0, 2], opg[1, 2]
    return ll


@njit(cache=True, nogil=True)
def _solve3(a: Arr, b: Arr) -> Arr:
    """``a x = b`` for a symmetric positive definite 3 × 3 ``a`` (Cholesky by hand: no
    LAPACK binding to compile)."""
    l00 = np.sqrt(a[0, 0])
    l10 = a[1, 0] / l00
    l20 = a[2, 0] / l00
    l11 = np.sqrt(max(a[1, 1] - l10 * l10, 1e-300))
    l21 = (a[2, 1] - l20 * l10) / l11
    l22 = np.sqrt(max(a[2, 2] - l20 * l20 - l21 * l21, 1e-300))
    y0 = b[0] / l00
    y1 = (b[1] - l10 * y0) / l11
    y2 = (b[2] - l20 * y0 - l21 * y1) / l22
    x = np.empty(3)
    x[2] = y2 / l22
    x[1] = (y1 - l21 * x[2]) / l11
    x[0] = (y0 - l10 * x[1] - l20 * x[2]) / l00
    return x


@njit(cache=True, nogil=True)
def _project(theta: Arr) -> Arr:
    """The nearest point with ``alpha, beta >= 0`` and ``alpha + beta <= 1 - 1e-6``: steps
    slide along a bound instead of stopping at it."""
    out = theta.copy()
    out[1] = max(out[1], 0.0)
    out[2] = max(out[2], 0.0)
    excess = out[1] + out[2] - (1.0 - 1e-6)
    if excess > 0.0:
        out[1] = max(out[1] - excess / 2, 0.0)
        out[2] = 1.0 - 1e-6 - out[1]
    return out


@njit(cache=True, nogil=True)
def _feasible(theta: Arr) -> bool:
    return theta[0] > 0.0 and theta[1] >= 0.0 and theta[2] >= 0.0 and theta[1] + theta[2] < 1.0


@njit(cache=True, nogil=True)
def fit_many(r: Arr, lengths: Arr, start: Arr, max_iter: int, tol: float
             ) -> tuple[Arr, Arr]:
    """BHHH fits of ``r[i, :lengths[i]]`` (returns, finite) from ``start[i]``.

    Returns (params: (symbols, 3) omega, alpha, beta, NaN where no fit; log-likelihoods).
    """
    symbols = r.shape[0]
    params = np.full((symbols, 3), np.nan)
    lls = np.full(symbols, np.nan)
    grad, opg = np.empty(3), np.empty((3, 3))
    g_new, o_new = np.empty(3), np.empty((3, 3))
    for i in range(symbols):
        n = lengths[i]
        if n < 2:
            continue
        r2 = r[i, :n] * r[i, :n]
        tau = min(BACKCAST_DAYS, n)
        wsum, backcast = 0.0, 0.0
        for j in range(tau):
            w = BACKCAST_DECAY ** j
            wsum += w
            backcast += w * r2[j]
        backcast /= wsum
        theta = start[i].copy()
        if not _feasible(theta):
            theta[:] = (0.05 * r2.mean(), 0.05, 0.90)
        ll = _loglik(r2, n, backcast, theta, grad, opg)
        for _ in range(max_iter):
            for k in range(3):
                opg[k, k] += 1e-12 * (1.0 + opg[k, k])  # keep the solve well posed
            step = _solve3(opg, grad)
            for k in (1, 2):  # a coefficient at 0 pushed below it stays there: solve the rest
                if theta[k] <= 0.0 and step[k] < 0.0:
                    opg[k, :] = 0.0
                    opg[:, k] = 0.0
                    opg[k, k] = 1.0
                    grad[k] = 0.0
                    step = _solve3(opg, grad)
            size, moved = 1.0, False
            for _ in range(40):
                trial = _project(theta + size * step)
                if _feasible(trial):
                    ll_new = _loglik(r2, n, backcast, trial, g_new, o_new)
                    if ll_new >= ll:
                        moved = True
                        break
                size *= 0.5
            if not moved:
                break
            gain = ll_new - ll
            theta, ll = trial, ll_new
            grad[:], opg[:, :] = g_new, o_new
            if gain <= tol * (1.0 + abs(ll)):
                break
        params[i] = theta
        lls[i] = ll
    return params, lls


def fit(returns: Arr, start: Arr | None = None, max_iter: int = 200, tol: float = 1e-11
        ) -> tuple[Arr, Arr]:
    """GARCH(1,1) of each row's finite returns (percent; NaN and ±inf are skipped, as
    ``arch`` is given only the finite ones), warm-started from ``start`` where it is
    feasible. Returns ((rows, 3) omega, alpha, beta; (rows,) log-likelihoods)."""
    returns = np.atleast_2d(np.asarray(returns, dtype="float64"))
    finite = np.isfinite(returns)
    lengths = finite.sum(axis=1)
    packed = np.zeros(returns.shape)
    for i in range(len(returns)):  # each row's finite returns, left-aligned
        packed[i, : lengths[i]] = returns[i, finite[i]]
    first = np.full((len(returns), 3), np.nan) if start is None else \
        np.asarray(start, dtype="float64").reshape(len(returns), 3)
    return fit_many(packed, lengths.astype(np.int64), np.nan_to_num(first, nan=-1.0),
                    max_iter, tol)
