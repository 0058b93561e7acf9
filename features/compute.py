"""Bars (long) → wide panel → features and labels (long). Frames in, frames out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.registry import FeatureDef, Panel, get

KEYS = ["symbol", "date"]


def adjust_prices(bars: pd.DataFrame) -> pd.DataFrame:
    """Apply ``adj_factor`` (splits and dividends) to prices and its inverse to volume."""
    if "adj_factor" not in bars.columns:
        return bars
    out = bars.copy()
    factor = out["adj_factor"].fillna(1.0)
    for col in ("open", "high", "low", "close"):
        out[col] = out[col] * factor
    out["volume"] = out["volume"] / factor
    return out


def to_panel(bars: pd.DataFrame) -> Panel:
    """Long bars to one wide frame per field, rows sorted by date."""
    wide = bars.pivot(index="date", columns="symbol",
                      values=["open", "high", "low", "close", "volume"]).sort_index()
    return {field: wide[field] for field in ("open", "high", "low", "close", "volume")}


def _stack(frames: dict[str, pd.DataFrame], index: pd.MultiIndex) -> pd.DataFrame:
    cols = {name: frame.stack(future_stack=True).reindex(index).to_numpy(dtype="float64")
            for name, frame in frames.items()}
    out = pd.DataFrame(cols, index=index).reset_index()
    return out[[*KEYS, *frames]]


def compute_features(bars: pd.DataFrame, defs: list[FeatureDef] | None = None) -> pd.DataFrame:
    """One row per (symbol, date) of ``bars``; one column per feature definition."""
    defs = defs or get()
    panel = to_panel(adjust_prices(bars))
    frames = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for d in defs:
            frames[d.name] = d.compute(panel).replace([np.inf, -np.inf], np.nan)
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    out = _stack(frames, index)
    return out.sort_values(KEYS, ignore_index=True)


def compute_labels(bars: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Forward return from the next bar: ``close[t+1+h] / close[t+1] - 1``.

    The decision is made at the close of ``t`` and traded at ``t+1``; the last ``1 + h``
    days of each symbol have no label.
    """
    close = to_panel(adjust_prices(bars))["close"]
    label = close.shift(-(1 + horizon)) / close.shift(-1) - 1
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    return _stack({"label": label}, index).sort_values(KEYS, ignore_index=True)
