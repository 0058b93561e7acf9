"""Alpha158, as Qlib defines it (``qlib/contrib/data/loader.py``, default config).

9 candlestick features, 4 price ratios and 29 rolling operators over windows 5, 10, 20,
30 and 60: 158 features with Qlib's names and formulas. Operators follow Qlib's semantics
(``qlib/data/ops.py``): rolling windows count exchange sessions with ``min_periods=1``,
so early rows use the days available; ``Corr`` is NaN where either side's rolling std is
~0; ``IdxMax``/``IdxMin`` are 1-based positions in the window; ``Slope``, ``Rsquare`` and
``Resi`` are least squares on the window's positions.

The edges, as Qlib stores and computes them (checked against Qlib's own output in
``tests/test_alpha158_qlib.py``):

- a symbol's series starts at its first bar (its listing): sessions before it are not in
  any window, so early windows are short;
- a session a listed symbol did not trade (a halt) is a NaN inside its windows: means and
  sums skip it, ``Ref`` that reaches it is NaN, ``IdxMax``/``IdxMin`` land on it (numpy's
  ``argmax`` of a window holding a NaN is the NaN's position), and ``$close > Ref($close,
  1)`` is false there (a comparison with NaN), so ``CNTP``/``CNTN`` count it as a 0;
- ±inf is missing, as in pandas' rolling: ``log(volume / Ref(volume, 1) + 1)`` the day
  after a zero-volume day leaves ``CORD`` windows, it does not poison them.

Deliberate difference: our bars carry no VWAP, so ``VWAP0`` uses the typical price
``(high + low + close) / 3`` in its place.

Everything runs on wide frames (rows: sessions, columns: symbols), one vectorized call per
operator for all symbols at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import pandas as pd

from alphaline.features.rolling import MomentSums, first_value, window_diff
from alphaline.features.window_order import extreme_position, order_stats

Wide = pd.DataFrame
WINDOWS = (5, 10, 20, 30, 60)
EPS = 1e-12

KBAR = {
    "KMID": "(close - open) / open",
    "KLEN": "(high - low) / open",
    "KMID2": "(close - open) / (high - low)",
    "KUP": "(high - max(open, close)) / open",
    "KUP2": "(high - max(open, close)) / (high - low)",
    "KLOW": "(min(open, close) - low) / open",
    "KLOW2": "(min(open, close) - low) / (high - low)",
    "KSFT": "(2 close - high - low) / open",
    "KSFT2": "(2 close - high - low) / (high - low)",
}
PRICE = {
    "OPEN0": "open / close",
    "HIGH0": "high / close",
    "LOW0": "low / close",
    "VWAP0": "typical price (h + l + c) / 3 over close (no VWAP in daily bars)",
}
ROLLING = {
    "ROC": ("close", "close d days ago over close"),
    "MA": ("close", "mean close over d days, over close"),
    "STD": ("close", "std of close over d days, over close"),
    "BETA": ("close", "slope of close on time over d days, over close"),
    "RSQR": ("close", "R² of close on time over d days"),
    "RESI": ("close", "residual of today's close from the d-day trend, over close"),
    "MAX": ("high", "highest high over d days, over close"),
    "MIN": ("low", "lowest low over d days, over close"),
    "QTLU": ("close", "80 % quantile of close over d days, over close"),
    "QTLD": ("close", "20 % quantile of close over d days, over close"),
    "RANK": ("close", "percentile rank of today's close within d days"),
    "RSV": ("close,high,low", "(close - min low) / (max high - min low) over d days"),
    "IMAX": ("high", "days since the d-day high (1-based position) over d"),
    "IMIN": ("low", "days since the d-day low (1-based position) over d"),
    "IMXD": ("high,low", "(IMAX position - IMIN position) over d"),
    "CORR": ("close,volume", "correlation of close and log volume over d days"),
    "CORD": ("close,volume", "correlation of close change and log volume change over d days"),
    "CNTP": ("close", "share of up days over d days"),
    "CNTN": ("close", "share of down days over d days"),
    "CNTD": ("close", "CNTP - CNTN"),
    "SUMP": ("close", "gains over total absolute change over d days (RSI-like)"),
    "SUMN": ("close", "losses over total absolute change over d days"),
    "SUMD": ("close", "SUMP - SUMN"),
    "VMA": ("volume", "mean volume over d days, over today's volume"),
    "VSTD": ("volume", "std of volume over d days, over today's volume"),
    "WVMA": ("close,volume", "coefficient of variation of |return| × volume over d days"),
    "VSUMP": ("volume", "volume increases over total absolute volume change over d days"),
    "VSUMN": ("volume", "volume decreases over total absolute volume change over d days"),
    "VSUMD": ("volume", "VSUMP - VSUMN"),
}


def names() -> list[str]:
    return [*KBAR, *PRICE, *(f"{op}{d}" for d in WINDOWS for op in ROLLING)]


# Qlib operators on (symbols x sessions) arrays -----------------------------------------
# Time runs along axis 1, contiguous in memory. Each keeps Qlib's ``rolling(d,
# min_periods=1)`` semantics: NaNs are skipped, early rows use the days they have.

Arr = np.ndarray


def _finite(frame: Wide) -> Arr:
    """(symbols x sessions) float64, contiguous along time, ±inf as NaN (missing); a new
    array (``to_numpy`` may hand out the frame's own memory, which is the caller's)."""
    x = frame.to_numpy(dtype="float64").T
    return np.ascontiguousarray(np.where(np.isinf(x), np.nan, x))


def _shift(x: Arr, k: int) -> Arr:
    out = np.full_like(x, np.nan)
    out[:, k:] = x[:, : x.shape[1] - k]
    return out


def _pandas(x: Arr, d: int, op: str) -> Arr:
    """Rolling max/min through pandas, columns end to end with ``d - 1`` NaNs between."""
    padded = np.full((x.shape[0], x.shape[1] + d - 1), np.nan)
    padded[:, d - 1:] = x
    rolled = getattr(pd.Series(padded.ravel()).rolling(d, min_periods=1), op)()
    return rolled.to_numpy().reshape(padded.shape)[:, d - 1:]


def _idx(x: Arr, d: int, largest: bool, listed: Arr) -> Arr:
    """Qlib IdxMax/IdxMin: 1-based position of the first extreme in the window.

    The window starts at the later of ``t - d + 1`` and the listing (``listed``: the row's
    first session); a missing value in it is where numpy's ``argmax``/``argmin`` stop (a
    NaN beats every number), and a window with no value at all is NaN.
    """
    return extreme_position(x, d, largest, listed.astype(np.int64))


def _sorted_window_stats(x: Arr, d: int, qs: tuple[float, ...]) -> tuple[list[Arr], Arr]:
    """Rolling quantiles (linear interpolation, as pandas) and the percentile rank of the
    last value (pandas ``rank(pct=True)``, average ties), from one sorted window per row."""
    quantiles, rank = order_stats(x, d, np.asarray(qs, dtype="float64"))
    return list(quantiles), rank


class _Regression:
    """Rolling least squares of ``y`` on time at any window length: (slope, R², residual
    of the last point), from cumulative sums computed once.

    Time is measured from each window's last row (``x = t - last``), so the fitted value
    at the last row is the intercept.
    """

    def __init__(self, y: Arr):
        valid = np.isfinite(y)
        self.rows = np.arange(y.shape[1], dtype="float64")[None, :]
        self.valid = valid
        self.yc = np.where(valid, y - first_value(y), 0.0)
        t = np.where(valid, self.rows, 0.0)
        self.moments = MomentSums(np.where(valid, y, np.nan))
        self.ct, self.ctt = np.cumsum(t, axis=1), np.cumsum(t * t, axis=1)
        self.cty = np.cumsum(t * self.yc, axis=1)
        self.cyy = np.cumsum(self.yc * self.yc, axis=1)
        self.cy = np.cumsum(self.yc, axis=1)

    def at(self, d: int) -> tuple[Arr, Arr, Arr]:
        rows = self.rows
        n = self.moments.count(d)
        st, sy = window_diff(self.ct, d), window_diff(self.cy, d)
        s1 = st - n * rows
        s2 = window_diff(self.ctt, d) - 2 * st * rows + n * rows**2
        sxy = window_diff(self.cty, d) - sy * rows
        syy = window_diff(self.cyy, d)
        denom_x = n * s2 - s1 * s1
        cov = n * sxy - s1 * sy
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = cov / denom_x
            r2 = cov * cov / (denom_x * (n * syy - sy * sy))
            resid = self.yc - (sy - slope * s1) / n
        bad = (n < 2) | ~self.valid
        return (np.where(bad, np.nan, slope), np.where(bad, np.nan, r2),
                np.where(bad, np.nan, resid))


def _regression(y: Arr, d: int) -> tuple[Arr, Arr, Arr]:
    """Rolling least squares of ``y`` on time over ``d`` sessions (see ``_Regression``)."""
    return _Regression(y).at(d)


class _Corr:
    """Rolling correlation over pairwise-complete finite rows at any window length; NaN
    where either side's own rolling std is ~0 (Qlib)."""

    def __init__(self, a: Arr, b: Arr):
        na, nb = ~np.isfinite(a), ~np.isfinite(b)
        self.same = np.array_equal(na, nb)
        both = ~na & ~nb
        self.a = MomentSums(a if self.same else np.where(both, a, np.nan))
        self.b = MomentSums(b if self.same else np.where(both, b, np.nan))
        self.cab = np.cumsum(self.a.xc * self.b.xc, axis=1)
        # Qlib masks on each side's own rolling std (the same as the pairs' when NaNs agree)
        self.own = None if self.same else (MomentSums(a), MomentSums(b))

    def at(self, d: int) -> Arr:
        ma, mb = self.a.at(d), self.b.at(d)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = window_diff(self.cab, d) - ma.s1 * mb.s1 / ma.n
            out = cov / np.sqrt((ma.s2 - ma.s1**2 / ma.n) * (mb.s2 - mb.s1**2 / mb.n))
        out = np.where(ma.n > 1, out, np.nan)
        sa, sb = (ma.std(), mb.std()) if self.own is None else \
            (self.own[0].at(d).std(), self.own[1].at(d).std())
        flat = np.isclose(sa, 0, atol=2e-5) | np.isclose(sb, 0, atol=2e-5)
        return np.where(flat, np.nan, out)


def _corr(a: Arr, b: Arr, d: int) -> Arr:
    """Rolling correlation of ``a`` and ``b`` over ``d`` sessions (see ``_Corr``)."""
    return _Corr(a, b).at(d)


# the feature set -----------------------------------------------------------------------
# One task per group of operators that share their intermediate work: each computes its
# cumulative sums (or sorted windows) once and then every window length from them. Every
# result is stored as float32 as soon as it exists; tasks run on threads (the array work
# and the compiled kernels release the GIL).

Out = dict[str, Arr]


def _f32(values: Arr) -> Arr:
    return values.astype("float32")


def _price_moments(x: dict[str, Arr]) -> Out:
    c, out = x["c"], {}
    sums = MomentSums(c)
    for d in WINDOWS:
        m = sums.at(d)
        out[f"ROC{d}"] = _f32(_shift(c, d) / c)
        out[f"MA{d}"] = _f32(m.mean() / c)
        out[f"STD{d}"] = _f32(m.std() / c)
    return out


def _trend(x: dict[str, Arr]) -> Out:
    c, out = x["c"], {}
    fit = _Regression(c)
    for d in WINDOWS:
        slope, r2, resid = fit.at(d)
        out[f"BETA{d}"], out[f"RSQR{d}"] = _f32(slope / c), _f32(r2)
        out[f"RESI{d}"] = _f32(resid / c)
    return out


def _range(x: dict[str, Arr]) -> Out:
    c, out = x["c"], {}
    for d in WINDOWS:
        hh, ll = _pandas(x["h"], d, "max"), _pandas(x["lo"], d, "min")
        out[f"MAX{d}"], out[f"MIN{d}"] = _f32(hh / c), _f32(ll / c)
        out[f"RSV{d}"] = _f32((c - ll) / (hh - ll + EPS))
    return out


def _order(x: dict[str, Arr]) -> Out:
    c, out = x["c"], {}
    for d in WINDOWS:
        (qtlu, qtld), rank = _sorted_window_stats(c, d, (0.8, 0.2))
        out[f"QTLU{d}"], out[f"QTLD{d}"] = _f32(qtlu / c), _f32(qtld / c)
        out[f"RANK{d}"] = _f32(rank)
    return out


def _extremes(x: dict[str, Arr]) -> Out:
    out = {}
    for d in WINDOWS:
        imax = _idx(x["h"], d, largest=True, listed=x["listed"])
        imin = _idx(x["lo"], d, largest=False, listed=x["listed"])
        out[f"IMAX{d}"], out[f"IMIN{d}"] = _f32(imax / d), _f32(imin / d)
        out[f"IMXD{d}"] = _f32((imax - imin) / d)
    return out


def _correlations(name: str, a: str, b: str):
    def task(x: dict[str, Arr]) -> Out:
        corr = _Corr(x[a], x[b])
        return {f"{name}{d}": _f32(corr.at(d)) for d in WINDOWS}
    return task


def _counts(x: dict[str, Arr]) -> Out:
    up, down, out = MomentSums(x["up"]), MomentSums(x["down"]), {}
    for d in WINDOWS:
        cntp, cntn = up.at(d).mean(), down.at(d).mean()
        out[f"CNTP{d}"], out[f"CNTN{d}"] = _f32(cntp), _f32(cntn)
        out[f"CNTD{d}"] = _f32(cntp - cntn)
    return out


def _moves(prefix: str, gain: str, loss: str, move: str):
    def task(x: dict[str, Arr]) -> Out:
        sums = {k: MomentSums(x[k]) for k in (gain, loss, move)}
        out = {}
        for d in WINDOWS:
            total = sums[move].at(d).sum() + EPS
            up, down = sums[gain].at(d).sum() / total, sums[loss].at(d).sum() / total
            out[f"{prefix}SUMP{d}"], out[f"{prefix}SUMN{d}"] = _f32(up), _f32(down)
            out[f"{prefix}SUMD{d}"] = _f32(up - down)
        return out
    return task


def _volume(x: dict[str, Arr]) -> Out:
    v, out = x["v"], {}
    volume, weighted = MomentSums(v), MomentSums(x["wv"])
    for d in WINDOWS:
        mv, mwv = volume.at(d), weighted.at(d)
        out[f"VMA{d}"], out[f"VSTD{d}"] = _f32(mv.mean() / (v + EPS)), _f32(mv.std() / (v + EPS))
        out[f"WVMA{d}"] = _f32(mwv.std() / (mwv.mean() + EPS))
    return out


# Costliest first, so the threads stay busy to the end.
TASKS = (
    _correlations("CORD", "ret", "dlog_v"), _correlations("CORR", "c", "log_v"), _trend,
    _order, _range, _moves("", "gain", "loss", "move"), _moves("V", "vgain", "vloss", "vmove"),
    _volume, _price_moments, _counts, _extremes,
)


def alpha158(panel: dict[str, Wide], n_threads: int = 2, wanted: set[str] | None = None):
    """Yield ``(name, wide frame)`` for the 158 features, a group of operators at a time
    (in the order groups finish: consumers place features by name).

    The groups run on ``n_threads`` threads: the array work releases the GIL.
    """
    index, columns = panel["close"].index, panel["close"].columns
    o, h, lo, c, v = (_finite(panel[k]) for k in ("open", "high", "low", "close", "volume"))
    traded = np.isfinite(o) | np.isfinite(h) | np.isfinite(lo) | np.isfinite(c) | np.isfinite(v)
    listed = np.where(traded.any(axis=1), traded.argmax(axis=1), traded.shape[1])
    before = np.arange(traded.shape[1])[None, :] < listed[:, None]

    def wide(values: Arr) -> Wide:
        return pd.DataFrame(values.T, index=index, columns=columns)

    with np.errstate(invalid="ignore", divide="ignore"):
        rng = h - lo + EPS
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        for name, values in (
            ("KMID", (c - o) / o), ("KLEN", (h - lo) / o), ("KMID2", (c - o) / rng),
            ("KUP", (h - top) / o), ("KUP2", (h - top) / rng),
            ("KLOW", (bottom - lo) / o), ("KLOW2", (bottom - lo) / rng),
            ("KSFT", (2 * c - h - lo) / o), ("KSFT2", (2 * c - h - lo) / rng),
            ("OPEN0", o / c), ("HIGH0", h / c), ("LOW0", lo / c),
            ("VWAP0", (h + lo + c) / 3 / c),
        ):
            yield name, wide(values)
        prev_c, prev_v = _shift(c, 1), _shift(v, 1)
        inputs = {
            "c": c, "h": h, "lo": lo, "v": v,
            # a comparison with a NaN (a halt) is a 0; before the listing there is no row
            "up": np.where(before, np.nan, c > prev_c),
            "down": np.where(before, np.nan, c < prev_c),
            "listed": listed,
            "gain": np.maximum(c - prev_c, 0), "loss": np.maximum(prev_c - c, 0),
            "move": np.abs(c - prev_c),
            "vgain": np.maximum(v - prev_v, 0), "vloss": np.maximum(prev_v - v, 0),
            "vmove": np.abs(v - prev_v),
            "log_v": np.log(v + 1), "ret": c / prev_c, "dlog_v": np.log(v / prev_v + 1),
            "wv": np.abs(c / prev_c - 1) * v,
        }
    with ThreadPoolExecutor(max_workers=max(n_threads, 1)) as pool, \
            np.errstate(invalid="ignore", divide="ignore"):
        # Each group is handed on as soon as it is done, so finished results do not wait
        # in memory.
        futures = [pool.submit(task, inputs) for task in TASKS]
        for future in as_completed(futures):
            block = future.result()
            while block:
                name, values = block.popitem()
                yield name, wide(values)
