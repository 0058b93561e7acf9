"""Rolling-window kernels on (symbols × sessions) arrays, time along axis 1.

They keep pandas' ``rolling(d, min_periods=1)`` semantics (NaNs skipped, early rows use
the days they have) at the cost of one cumulative sum per quantity. Like pandas, they treat
±inf as missing: one infinite input (a ratio over a zero volume) inside a cumulative sum
would otherwise turn every later window of its row into NaN.
"""

from __future__ import annotations

import numpy as np

Arr = np.ndarray


def window_sum(x: Arr, d: int) -> Arr:
    """Rolling sum of a NaN-free array through one cumulative sum per symbol."""
    cs = np.cumsum(x, axis=1)
    if d >= cs.shape[1]:
        return cs
    out = np.empty_like(cs)
    out[:, :d] = cs[:, :d]
    np.subtract(cs[:, d:], cs[:, :-d], out=out[:, d:])
    return out


def first_value(x: Arr) -> Arr:
    """Each row's first finite value (0 if none), shape (rows, 1).

    Centring on it keeps sums of squares precise and depends only on the past: values at
    ``t`` stay bit-identical when later data changes.
    """
    finite = np.isfinite(x)
    first = np.argmax(finite, axis=1)
    out = x[np.arange(x.shape[0]), first]
    return np.where(finite.any(axis=1), out, 0.0)[:, None]


def window_count(valid: Arr, d: int) -> Arr:
    """Rolling count of valid values; closed form when only the first column may be NaN."""
    if valid[:, 1:].all():
        full = np.minimum(np.arange(1, valid.shape[1] + 1), d)[None, :].astype("float64")
        early = (np.arange(valid.shape[1]) < d)[None, :]
        return full - (~valid[:, :1] & early)
    return window_sum(valid.astype("float64"), d)


class Moments:
    """Rolling count, mean, std (ddof=1) of one array, centred on each row's first value
    so sums of squares keep their precision."""

    def __init__(self, x: Arr, d: int):
        valid = np.isfinite(x)
        self.centre = first_value(x)
        xc = np.where(valid, x - self.centre, 0.0)
        self.valid, self.xc, self.d = valid, xc, d
        self.n = window_count(valid, d)
        self.s1 = window_sum(xc, d)
        self._s2: Arr | None = None

    @property
    def s2(self) -> Arr:
        if self._s2 is None:  # only where a variance is asked for
            self._s2 = window_sum(self.xc * self.xc, self.d)
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
