"""Liquidity proxies that daily bars allow: Amihud illiquidity, the Corwin–Schultz
high-low spread, the Roll spread, dollar volume and its z-score."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.features import core

Wide = pd.DataFrame
_K = 3 - 2 * np.sqrt(2)


def amihud(close: Wide, volume: Wide, window: int = 20) -> Wide:
    """Mean |return| per million dollars traded over ``window`` days."""
    r = (close / close.shift(1) - 1).abs()
    dollar = (close * volume).where(volume > 0)
    return (r / dollar * 1e6).rolling(window, min_periods=window).mean()


def corwin_schultz(high: Wide, low: Wide, window: int = 20) -> Wide:
    """Corwin & Schultz (2012) spread from the day and the day before (not the day after,
    so it is known at the close), negatives set to zero, averaged over ``window`` days."""
    hl = np.log(high / low) ** 2
    beta = hl + hl.shift(1)
    gamma = np.log(np.maximum(high, high.shift(1)) / np.minimum(low, low.shift(1))) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / _K - np.sqrt(gamma / _K)
    spread = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))).clip(lower=0)
    return spread.rolling(window, min_periods=window).mean()


def roll_spread(close: Wide, window: int = 20) -> Wide:
    """Roll (1984): 2 sqrt(-cov(r_t, r_{t-1})) on log returns; 0 when the cov is positive."""
    r = np.log(close / close.shift(1))
    lagged = r.shift(1)
    cov = (r * lagged).rolling(window, min_periods=window).mean() - (
        r.rolling(window, min_periods=window).mean()
        * lagged.rolling(window, min_periods=window).mean())
    return 2 * np.sqrt((-cov).clip(lower=0))


def liquidity(p: dict[str, Wide], wanted: set[str] | None = None):
    """Yield ``(name, wide)`` for the liquidity set."""
    h, lo, c, v = (p[k] for k in ("high", "low", "close", "volume"))
    yield "amihud_20", amihud(c, v, 20)
    yield "cs_spread_20", corwin_schultz(h, lo, 20)
    yield "roll_spread_20", roll_spread(c, 20)
    log_dv = np.log1p(c * v)
    yield "log_dollar_volume", log_dv
    yield "dollar_volume_z_60", core.zscore(log_dv, 60)


LIQUIDITY = {
    "amihud_20": (("close", "volume"), 21, "Amihud illiquidity: mean |return| per $1M, 20 days"),
    "cs_spread_20": (("high", "low"), 21, "Corwin–Schultz high-low spread, 20-day mean"),
    "roll_spread_20": (("close",), 22, "Roll spread from return autocovariance, 20 days"),
    "log_dollar_volume": (("close", "volume"), 1, "log of today's dollar volume"),
    "dollar_volume_z_60": (("close", "volume"), 60,
                           "z-score of log dollar volume against 60 days"),
}
