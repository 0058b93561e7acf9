"""Order statistics over rolling windows, compiled (numba): quantiles, percentile rank and
the position of the window's extreme, on (symbols × sessions) arrays, time along axis 1.

Each row keeps its window's finite values sorted as it moves (one binary search and one
shift per value in and out), instead of sorting every window from scratch: the cost per
session is a few dozen moves rather than a sort. Non-finite values are missing (pandas'
rule). The functions release the GIL, so windows computed on threads run in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

Arr = np.ndarray


@njit(cache=True, nogil=True)
def _bisect(buf: Arr, n: int, value: float, right: bool) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if buf[mid] < value or (right and buf[mid] == value):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def order_stats(x: Arr, d: int, qs: Arr) -> tuple[Arr, Arr]:
    """Rolling quantiles ``qs`` (linear interpolation, as pandas' ``rolling.quantile``) and
    the percentile rank of each session's value in its window (pandas' ``rolling.rank(
    pct=True)``, ties averaged), over the finite values of the last ``d`` sessions.

    Returns (quantiles: (len(qs), rows, sessions), rank: (rows, sessions)); NaN where the
    window holds no value (the rank also where the session's own value is missing).
    """
    rows, sessions = x.shape
    quantiles = np.full((len(qs), rows, sessions), np.nan)
    rank = np.full((rows, sessions), np.nan)
    buf = np.empty(d)
    for r in range(rows):
        n = 0
        for t in range(sessions):
            if t >= d:
                old = x[r, t - d]
                if np.isfinite(old):
                    i = _bisect(buf, n, old, False)
                    for j in range(i, n - 1):
                        buf[j] = buf[j + 1]
                    n -= 1
            v = x[r, t]
            if np.isfinite(v):
                i = _bisect(buf, n, v, False)
                for j in range(n, i, -1):
                    buf[j] = buf[j - 1]
                buf[i] = v
                n += 1
            if n == 0:
                continue
            for k in range(len(qs)):
                pos = qs[k] * (n - 1)
                lo = int(np.floor(pos))
                hi = int(np.ceil(pos))
                quantiles[k, r, t] = buf[lo] + (buf[hi] - buf[lo]) * (pos - lo)
            if np.isfinite(v):
                less = _bisect(buf, n, v, False)
                equal = _bisect(buf, n, v, True) - less
                rank[r, t] = (less + (equal + 1) / 2) / n
    return quantiles, rank


@njit(cache=True, nogil=True)
def extreme_position(x: Arr, d: int, largest: bool, listed: Arr) -> Arr:
    """Qlib's ``IdxMax``/``IdxMin``: 1-based position of the first extreme in the window.

    The window runs from the later of ``t - d + 1`` and the row's listing (``listed[r]``,
    its first session) to ``t``. A missing value in it is where numpy's ``argmax`` (which
    Qlib calls) stops: a NaN beats every number. NaN where the window holds no value.

    Two queues per row: the missing sessions in the window, and the candidates for its
    extreme (values strictly decreasing for the maximum, so the first of equal values
    stays in front); each session enters and leaves each queue once.
    """
    rows, sessions = x.shape
    out = np.full((rows, sessions), np.nan)
    best = np.empty(sessions, dtype=np.int64)
    gaps = np.empty(sessions, dtype=np.int64)
    sign = 1.0 if largest else -1.0
    for r in range(rows):
        b_head = b_tail = g_head = g_tail = 0
        first = max(listed[r], 0)
        for t in range(first, sessions):
            v = x[r, t]
            if np.isfinite(v):
                while b_tail > b_head and sign * x[r, best[b_tail - 1]] < sign * v:
                    b_tail -= 1
                best[b_tail] = t
                b_tail += 1
            else:
                gaps[g_tail] = t
                g_tail += 1
            start = max(t - d + 1, first)
            while b_head < b_tail and best[b_head] < start:
                b_head += 1
            while g_head < g_tail and gaps[g_head] < start:
                g_head += 1
            if b_head == b_tail:
                continue  # no value in the window
            at = gaps[g_head] if g_head < g_tail else best[b_head]
            out[r, t] = at - start + 1
    return out
