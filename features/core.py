"""Core-set math on wide panels (rows: exchange days, columns: symbols), shared by the other sets.

Every function reads only the current and earlier rows (rolling windows, shifts by
positive lags, recursive averages), so a value at day ``t`` uses data up to ``t``'s close.
Windows need their full length (``min_periods=window``): warm-up rows are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

Wide = pd.DataFrame


def finite(frame: Wide) -> Wide:
    """±inf as NaN: what pandas' rolling windows already do, for the kernels that run on
    cumulative sums, where one infinite value would reach every later row."""
    return frame.where(np.isfinite(frame))


def log_return(close: Wide, window: int) -> Wide:
    return np.log(close / close.shift(window))


def realized_vol(close: Wide, window: int) -> Wide:
    return np.log(close / close.shift(1)).rolling(window, min_periods=window).std()


def rsi(close: Wide, window: int = 14) -> Wide:
    """Wilder's RSI scaled to [0, 1]."""
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    total = gain + loss
    return (gain / total).mask(total == 0, 0.5)  # flat prices: neutral


def ema(frame: Wide, span: int) -> Wide:
    return frame.ewm(span=span, adjust=False, min_periods=span).mean()


def macd(close: Wide, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Wide, Wide, Wide]:
    """MACD line, signal and histogram, divided by the close to compare across prices."""
    line = (ema(close, fast) - ema(close, slow)) / close
    sig = line.ewm(span=signal, adjust=False, min_periods=signal).mean()
    return line, sig, line - sig


def bollinger(close: Wide, window: int = 20) -> tuple[Wide, Wide]:
    """Position within the 2-sd bands (-1 lower, +1 upper) and band width over the mean."""
    mean = close.rolling(window, min_periods=window).mean()
    sd = close.rolling(window, min_periods=window).std()
    return (close - mean) / (2 * sd), 4 * sd / mean


def atr(high: Wide, low: Wide, close: Wide, window: int = 14) -> Wide:
    prev = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - prev).abs(), (low - prev).abs()))
    return true_range.ewm(alpha=1 / window, adjust=False, min_periods=window).mean() / close


def zscore(frame: Wide, window: int) -> Wide:
    mean = frame.rolling(window, min_periods=window).mean()
    sd = frame.rolling(window, min_periods=window).std()
    return (frame - mean) / sd.where(sd > 0)


def volume_z(volume: Wide, window: int = 20) -> Wide:
    return zscore(np.log1p(volume), window)


def log_dollar_volume(close: Wide, volume: Wide, window: int = 20) -> Wide:
    return np.log1p((close * volume).rolling(window, min_periods=window).mean())


def range_position(close: Wide, high: Wide, low: Wide, window: int) -> tuple[Wide, Wide]:
    """Close against the window's highest high and lowest low."""
    hh = high.rolling(window, min_periods=window).max()
    ll = low.rolling(window, min_periods=window).min()
    return close / hh - 1, close / ll - 1


def ma_ratio(close: Wide, short: int, long: int) -> Wide:
    return (close.rolling(short, min_periods=short).mean()
            / close.rolling(long, min_periods=long).mean() - 1)


def return_skew(close: Wide, window: int) -> Wide:
    return np.log(close / close.shift(1)).rolling(window, min_periods=window).skew()
