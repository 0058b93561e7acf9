"""Alpha158 transcribed literally from Qlib's expressions, one symbol at a time.

Slow on purpose: it is the oracle the fast ``features.alpha158`` is checked against in
tests, and the straightforward pandas groupby-rolling baseline in ``benches/features.py``.
Each helper is one Qlib operator with Qlib's semantics.

Windows count exchange sessions, as Qlib's storage lays a symbol out: each symbol's series
runs over every session (every date in ``bars``) from its first bar to its last, with a NaN
row where it did not trade (a halt). Values are returned for the rows of ``bars`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.features.alpha158 import WINDOWS


def Ref(x, d):
    return x.shift(d)


def Mean(x, d):
    return x.rolling(d, min_periods=1).mean()


def Std(x, d):
    return x.rolling(d, min_periods=1).std()


def Sum(x, d):
    return x.rolling(d, min_periods=1).sum()


def Max(x, d):
    return x.rolling(d, min_periods=1).max()


def Min(x, d):
    return x.rolling(d, min_periods=1).min()


def Quantile(x, d, q):
    return x.rolling(d, min_periods=1).quantile(q)


def Rank(x, d):
    return x.rolling(d, min_periods=1).rank(pct=True)


def IdxMax(x, d):
    return x.rolling(d, min_periods=1).apply(lambda a: a.argmax() + 1, raw=True)


def IdxMin(x, d):
    return x.rolling(d, min_periods=1).apply(lambda a: a.argmin() + 1, raw=True)


def _ols(a: np.ndarray) -> tuple[float, float, float]:
    y = a[~np.isnan(a)]
    x = np.arange(1, len(a) + 1, dtype="float64")[~np.isnan(a)]
    if len(y) < 2:
        return np.nan, np.nan, np.nan
    slope, intercept = np.polyfit(x, y, 1)
    r = np.corrcoef(x, y)[0, 1] if y.std() > 0 else np.nan
    return slope, r * r, a[-1] - (slope * len(a) + intercept)


def Slope(x, d):
    return x.rolling(d, min_periods=1).apply(lambda a: _ols(a)[0], raw=True)


def Rsquare(x, d):
    return x.rolling(d, min_periods=1).apply(lambda a: _ols(a)[1], raw=True)


def Resi(x, d):
    return x.rolling(d, min_periods=1).apply(lambda a: _ols(a)[2], raw=True)


def Corr(a, b, d):
    res = a.rolling(d, min_periods=1).corr(b)
    res.loc[np.isclose(a.rolling(d, min_periods=1).std(), 0, atol=2e-05)] = np.nan
    res.loc[np.isclose(b.rolling(d, min_periods=1).std(), 0, atol=2e-05)] = np.nan
    return res


Greater, Less, Abs, Log = np.maximum, np.minimum, np.abs, np.log


def one_symbol(bars: pd.DataFrame) -> pd.DataFrame:
    """All 158 features for one symbol's bars sorted by date."""
    o, h, lo, c, v = (bars[k].astype("float64") for k in ("open", "high", "low", "close",
                                                          "volume"))
    vwap = (h + lo + c) / 3
    f = {
        "KMID": (c - o) / o, "KLEN": (h - lo) / o, "KMID2": (c - o) / (h - lo + 1e-12),
        "KUP": (h - Greater(o, c)) / o, "KUP2": (h - Greater(o, c)) / (h - lo + 1e-12),
        "KLOW": (Less(o, c) - lo) / o, "KLOW2": (Less(o, c) - lo) / (h - lo + 1e-12),
        "KSFT": (2 * c - h - lo) / o, "KSFT2": (2 * c - h - lo) / (h - lo + 1e-12),
        "OPEN0": o / c, "HIGH0": h / c, "LOW0": lo / c, "VWAP0": vwap / c,
    }
    for d in WINDOWS:
        f[f"ROC{d}"] = Ref(c, d) / c
        f[f"MA{d}"] = Mean(c, d) / c
        f[f"STD{d}"] = Std(c, d) / c
        f[f"BETA{d}"] = Slope(c, d) / c
        f[f"RSQR{d}"] = Rsquare(c, d)
        f[f"RESI{d}"] = Resi(c, d) / c
        f[f"MAX{d}"] = Max(h, d) / c
        f[f"MIN{d}"] = Min(lo, d) / c
        f[f"QTLU{d}"] = Quantile(c, d, 0.8) / c
        f[f"QTLD{d}"] = Quantile(c, d, 0.2) / c
        f[f"RANK{d}"] = Rank(c, d)
        f[f"RSV{d}"] = (c - Min(lo, d)) / (Max(h, d) - Min(lo, d) + 1e-12)
        f[f"IMAX{d}"] = IdxMax(h, d) / d
        f[f"IMIN{d}"] = IdxMin(lo, d) / d
        f[f"IMXD{d}"] = (IdxMax(h, d) - IdxMin(lo, d)) / d
        f[f"CORR{d}"] = Corr(c, Log(v + 1), d)
        f[f"CORD{d}"] = Corr(c / Ref(c, 1), Log(v / Ref(v, 1) + 1), d)
        f[f"CNTP{d}"] = Mean((c > Ref(c, 1)).astype(float), d)
        f[f"CNTN{d}"] = Mean((c < Ref(c, 1)).astype(float), d)
        f[f"CNTD{d}"] = f[f"CNTP{d}"] - f[f"CNTN{d}"]
        total = Sum(Abs(c - Ref(c, 1)), d) + 1e-12
        f[f"SUMP{d}"] = Sum(Greater(c - Ref(c, 1), 0), d) / total
        f[f"SUMN{d}"] = Sum(Greater(Ref(c, 1) - c, 0), d) / total
        f[f"SUMD{d}"] = (Sum(Greater(c - Ref(c, 1), 0), d)
                         - Sum(Greater(Ref(c, 1) - c, 0), d)) / total
        f[f"VMA{d}"] = Mean(v, d) / (v + 1e-12)
        f[f"VSTD{d}"] = Std(v, d) / (v + 1e-12)
        wv = Abs(c / Ref(c, 1) - 1) * v
        f[f"WVMA{d}"] = Std(wv, d) / (Mean(wv, d) + 1e-12)
        vtotal = Sum(Abs(v - Ref(v, 1)), d) + 1e-12
        f[f"VSUMP{d}"] = Sum(Greater(v - Ref(v, 1), 0), d) / vtotal
        f[f"VSUMN{d}"] = Sum(Greater(Ref(v, 1) - v, 0), d) / vtotal
        f[f"VSUMD{d}"] = (Sum(Greater(v - Ref(v, 1), 0), d)
                          - Sum(Greater(Ref(v, 1) - v, 0), d)) / vtotal
    return pd.DataFrame(f, index=bars.index)


def alpha158_reference(bars: pd.DataFrame) -> pd.DataFrame:
    """Long bars → long Alpha158 (symbol, date, 158 columns), one symbol at a time over
    the sessions from its first bar to its last."""
    bars = bars.sort_values(["symbol", "date"], ignore_index=True)
    sessions = pd.DatetimeIndex(np.sort(bars["date"].unique()))
    fields = ["open", "high", "low", "close", "volume"]
    parts = []
    for _, rows in bars.groupby("symbol", sort=False):
        dates = pd.DatetimeIndex(rows["date"])
        span = sessions[(sessions >= dates[0]) & (sessions <= dates[-1])]
        series = rows.set_index("date")[fields].reindex(span)
        parts.append(one_symbol(series).loc[dates].set_axis(rows.index))
    return pd.concat([bars[["symbol", "date"]], pd.concat(parts)], axis=1)
