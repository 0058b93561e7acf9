"""Cross-sectional transforms, per date: winsorize, rank or z-score, neutralize.

Each uses only the rows of its own date, so it adds no look-ahead; it runs as a separate
step after the time-series features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def winsorize(frame: pd.DataFrame, columns: list[str], tail: float) -> pd.DataFrame:
    """Clip each date's values of ``columns`` to its [tail, 1 - tail] quantiles."""
    if tail <= 0:
        return frame
    out = frame.copy()
    grouped = out.groupby("date")[columns]
    lower, upper = grouped.transform("quantile", tail), grouped.transform("quantile", 1 - tail)
    out[columns] = out[columns].clip(lower=lower, upper=upper)
    return out


def rank(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per-date percentile rank, centred on zero in [-0.5, 0.5]."""
    out = frame.copy()
    out[columns] = out.groupby("date")[columns].rank(pct=True) - 0.5
    return out


def zscore(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    grouped = out.groupby("date")[columns]
    sd = grouped.transform("std")
    out[columns] = (out[columns] - grouped.transform("mean")) / sd.where(sd > 0)
    return out


def neutralize(frame: pd.DataFrame, columns: list[str], by: list[str]) -> pd.DataFrame:
    """Remove the market (the date's mean) and, with ``"sector"`` and a ``sector`` column,
    each sector's mean on that date: what is left is the stock-specific part."""
    out = frame.copy()
    if "sector" in by and "sector" in out.columns:
        out[columns] = out[columns] - out.groupby(["date", "sector"])[columns].transform("mean")
    elif "market" in by:
        out[columns] = out[columns] - out.groupby("date")[columns].transform("mean")
    return out


def apply(frame: pd.DataFrame, columns: list[str], method: str, tail: float,
          neutralize_by: list[str]) -> pd.DataFrame:
    """The configured pipeline: winsorize → rank | zscore | none → neutralize."""
    out = winsorize(frame, columns, tail)
    if method == "rank":
        out = rank(out, columns)
    elif method == "zscore":
        out = zscore(out, columns)
    if neutralize_by:
        out = neutralize(out, columns, neutralize_by)
    out[columns] = out[columns].astype("float32").replace([np.inf, -np.inf], np.nan)
    return out
