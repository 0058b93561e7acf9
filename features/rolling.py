"""Rolling-window kernels on (symbols × sessions) arrays, time along axis 1.

They keep pandas' ``rolling(d, min_periods=1)`` semantics (NaNs skipped, early rows use
the days they have) at the cost of one cumulative sum per quantity. Like pandas, they treat
±inf as missing: one infinite input (a ratio over a zero volume) inside a cumulative sum
would otherwise turn every later window of its row into NaN.
"""

from __future__ import annotations

import numpy as np

Arr = np.ndarray


def window_diff(cs: Arr, d: int) -> Arr:
    """Window sums from cumulative sums along axis 1 (the first ``d`` rows: the sums so far)."""
    if d >= cs.shape[1]:
        return cs.copy()
    out = np.empty_like(cs)
    out[:, :d] = cs[:, :d]
    np.subtract(cs[:, d:], cs[:, :-d], out=out[:, d:])
    return out


def window_sum(x: Arr, d: int) -> Arr:
    """Rolling sum of a NaN-free array through one cumulative sum per symbol."""
    return window_diff(np.cumsum(x, axis=1), d)


def first_value(x: Arr) -> Arr:
    """Each row's first finite value (0 if none), shape (rows, 1).

    Centring on it keeps sums of squares precise and depends only on the past: values at
    ``t`` stay bit-identical when later data changes.
    """
    finite = np.isfinite(x)
    first = np.argmax(finite, axis=1)
    out = x[np.arange(x.shape[0]), first]
    return np.where(finite.any(axis=1), out, 0.0)[:, None]


def _closed_count(valid: Arr, d: int) -> Arr:
    """Rolling count when only the first column may be missing."""
    full = np.minimum(np.arange(1, valid.shape[1] + 1), d)[None, :].astype("float64")
    early = (np.arange(valid.shape[1]) < d)[None, :]
    return full - (~valid[:, :1] & early)


def window_count(valid: Arr, d: int) -> Arr:
    """Rolling count of valid values; closed form when only the first column may be NaN."""
    if valid[:, 1:].all():
        return _closed_count(valid, d)
    return window_sum(valid.astype("float64"), d)


class MomentSums:
    """Cumulative count, centred sum and centred sum of squares of one array: computed once,
    they give the rolling moments at every window length (one subtraction each).

    Values are centred on each row's first finite value so sums of squares keep their
    precision; non-finite values are missing.
    """

    def __init__(self, x: Arr):
        valid = np.isfinite(x)
        self.centre = first_value(x)
        self.valid = valid
        self.xc = np.where(valid, x - self.centre, 0.0)
        self._simple = bool(valid[:, 1:].all())
        self._cn = None if self._simple else np.cumsum(valid, axis=1, dtype="float64")
        self.c1 = np.cumsum(self.xc, axis=1)
        self._c2: Arr | None = None

    @property
    def c2(self) -> Arr:
        if self._c2 is None:  # only where a variance is asked for
            self._c2 = np.cumsum(self.xc * self.xc, axis=1)
        return self._c2

    def count(self, d: int) -> Arr:
        return _closed_count(self.valid, d) if self._simple else window_diff(self._cn, d)

    def at(self, d: int) -> Moments:
        return Moments(None, d, sums=self)


class Moments:
    """Rolling count, mean, std (ddof=1) of one array over ``d`` sessions, centred on each
    row's first value so sums of squares keep their precision. ``sums``: the array's
    :class:`MomentSums`, when several windows share them (``x`` is then unused)."""

    def __init__(self, x: Arr | None, d: int, sums: MomentSums | None = None):
        sums = sums if sums is not None else MomentSums(x)
        self._sums = sums
        self.valid, self.xc, self.centre, self.d = sums.valid, sums.xc, sums.centre, d
        self.n = sums.count(d)
        self.s1 = window_diff(sums.c1, d)
        self._s2: Arr | None = None

    @property
    def s2(self) -> Arr:
        if self._s2 is None:  # only where a variance is asked for
            self._s2 = window_diff(self._sums.c2, self.d)
        return self._s2

    def sum(self) -> Arr:
        with np.errstate(invalid="ignore"):
            return np.where(self.n > 0, self.s1 + self.n * self.centre, np.nan)

    def mean(self) -> Arr:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.s1 / self.n + self.centre

    def var(self) -> Arr:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (self.s2 - self.s1 * self.s1 / self.n) / (self.n - 1)
        v = np.where(self.n > 1, np.maximum(v, 0.0), np.nan)
        return v

    def std(self) -> Arr:
        return np.sqrt(self.var())


def rolling_sum(x: Arr, d: int) -> Arr:
    return Moments(x, d).sum()


def rolling_mean(x: Arr, d: int) -> Arr:
    return Moments(x, d).mean()


def rolling_std(x: Arr, d: int) -> Arr:
    return Moments(x, d).std()
