"""The technical set: classic indicators and stationary transforms on wide panels.

Levels that drift without bound (OBV, the accumulation/distribution line, prices) enter
as z-scores or ratios so that a model sees comparable values across symbols and years.
Every value at ``t`` uses rows up to ``t``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.features import core

Wide = pd.DataFrame


def stochastic(high: Wide, low: Wide, close: Wide, k: int = 14, d: int = 3) -> tuple[Wide, Wide]:
    """%K = (close - lowest low) / (highest high - lowest low); %D its d-day mean."""
    ll = low.rolling(k, min_periods=k).min()
    hh = high.rolling(k, min_periods=k).max()
    pct_k = (close - ll) / (hh - ll).where(hh > ll)
    return pct_k, pct_k.rolling(d, min_periods=d).mean()


def rate_of_change(close: Wide, window: int) -> Wide:
    return close / close.shift(window) - 1


def obv(close: Wide, volume: Wide) -> Wide:
    """On-balance volume: volume added on up days, subtracted on down days (from row 0); a
    day without a finite close or volume adds nothing."""
    step = np.sign(core.finite(close).diff()).fillna(0) * core.finite(volume)
    return step.cumsum()


def accumulation_distribution(high: Wide, low: Wide, close: Wide, volume: Wide) -> Wide:
    """Chaikin's A/D line: cumulative close-location value times volume (a day without
    finite prices or volume adds nothing)."""
    high, low, close = core.finite(high), core.finite(low), core.finite(close)
    span = (high - low).where(high > low)
    clv = ((close - low) - (high - close)) / span
    return (clv.fillna(0) * core.finite(volume)).cumsum()


def rolling_vwap(high: Wide, low: Wide, close: Wide, volume: Wide, window: int) -> Wide:
    """Volume-weighted typical price over ``window`` days (daily bars carry no VWAP)."""
    typical = (high + low + close) / 3
    pv = (typical * volume).rolling(window, min_periods=window).sum()
    return pv / volume.rolling(window, min_periods=window).sum()


def ttm_squeeze(high: Wide, low: Wide, close: Wide, window: int = 20) -> Wide:
    """1 while the 2-sd Bollinger bands sit inside the 1.5-ATR Keltner channel, else 0."""
    mean = close.rolling(window, min_periods=window).mean()
    sd = close.rolling(window, min_periods=window).std()
    prev = close.shift(1)
    tr = np.maximum(high - low, np.maximum((high - prev).abs(), (low - prev).abs()))
    atr = tr.rolling(window, min_periods=window).mean()
    inside = (mean + 2 * sd < mean + 1.5 * atr) & (mean - 2 * sd > mean - 1.5 * atr)
    return inside.astype("float64").where(mean.notna() & atr.notna())


def hurst(close: Wide, window: int = 100, lags: tuple[int, ...] = (2, 4, 8, 16)) -> Wide:
    """Hurst exponent from how the spread of lagged log-price differences grows with the lag:
    std(p_t - p_{t-L}) ~ L^H over the trailing ``window``. 0.5 random walk, < 0.5 reverting."""
    logp = np.log(close)
    x = np.log(np.asarray(lags, dtype="float64"))
    xc = x - x.mean()
    ys = [np.log(logp.diff(lag).rolling(window, min_periods=window).std()) for lag in lags]
    y_mean = sum(ys) / len(ys)
    return sum(w * (y - y_mean) for w, y in zip(xc, ys, strict=True)) / float((xc**2).sum())


def volume_weighted_momentum(close: Wide, volume: Wide, window: int) -> Wide:
    """Mean daily log return weighted by volume over ``window`` days."""
    r = np.log(close / close.shift(1))
    return (r * volume).rolling(window, min_periods=window).sum() / volume.rolling(
        window, min_periods=window).sum()


def technical(p: dict[str, Wide], wanted: set[str] | None = None):
    """Yield ``(name, wide)`` for the technical set."""
    o, h, lo, c, v = (p[k] for k in ("open", "high", "low", "close", "volume"))
    del o
    for w in (10, 50, 200):
        yield f"sma_ratio_{w}", c / c.rolling(w, min_periods=w).mean() - 1
    for w in (12, 26):
        yield f"ema_ratio_{w}", c / core.ema(c, w) - 1
    k, d = stochastic(h, lo, c)
    yield "stoch_k_14", k
    yield "stoch_d_14", d
    yield "roc_10", rate_of_change(c, 10)
    yield "roc_20", rate_of_change(c, 20)
    yield "obv_z_20", core.zscore(obv(c, v), 20)
    yield "adl_z_20", core.zscore(accumulation_distribution(h, lo, c, v), 20)
    yield "vwap_ratio_20", c / rolling_vwap(h, lo, c, v, 20) - 1
    yield "ttm_squeeze_20", ttm_squeeze(h, lo, c, 20)
    yield "hurst_100", hurst(c, 100)
    r1 = np.log(c / c.shift(1))
    yield "demeaned_ret_1_20", r1 - r1.rolling(20, min_periods=20).mean()
    atr_dollars = core.atr(h, lo, c, 20) * c
    yield "detrended_price_20", (c - c.rolling(20, min_periods=20).mean()) / atr_dollars
    yield "vw_momentum_20", volume_weighted_momentum(c, v, 20)


TECHNICAL = {
    "sma_ratio_10": (("close",), 10, "close over its 10-day simple moving average, minus 1"),
    "sma_ratio_50": (("close",), 50, "close over its 50-day simple moving average, minus 1"),
    "sma_ratio_200": (("close",), 200, "close over its 200-day simple moving average, minus 1"),
    "ema_ratio_12": (("close",), 12, "close over its 12-day EMA, minus 1"),
    "ema_ratio_26": (("close",), 26, "close over its 26-day EMA, minus 1"),
    "stoch_k_14": (("high", "low", "close"), 14, "stochastic %K over 14 days"),
    "stoch_d_14": (("high", "low", "close"), 16, "stochastic %D: 3-day mean of %K"),
    "roc_10": (("close",), 10, "rate of change over 10 days"),
    "roc_20": (("close",), 20, "rate of change over 20 days"),
    "obv_z_20": (("close", "volume"), 20, "z-score of on-balance volume against 20 days"),
    "adl_z_20": (("high", "low", "close", "volume"), 20,
                 "z-score of the accumulation/distribution line against 20 days"),
    "vwap_ratio_20": (("high", "low", "close", "volume"), 20,
                      "close over the 20-day volume-weighted typical price, minus 1"),
    "ttm_squeeze_20": (("high", "low", "close"), 21,
                       "1 while Bollinger(20, 2sd) sits inside Keltner(20, 1.5 ATR)"),
    "hurst_100": (("close",), 116, "Hurst exponent of log price over 100 days (lags 2-16)"),
    "demeaned_ret_1_20": (("close",), 21, "one-day log return minus its 20-day mean"),
    "detrended_price_20": (("high", "low", "close"), 21,
                           "close minus its 20-day mean, in 20-day ATRs"),
    "vw_momentum_20": (("close", "volume"), 21, "volume-weighted mean log return over 20 days"),
}
