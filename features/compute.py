"""Bars (long) → wide panel → features and labels (long). Frames in, frames out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.features.definitions import FAMILIES, FeatureDef, Panel, get

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


FIELDS = ("open", "high", "low", "close", "volume")


def to_panel(bars: pd.DataFrame) -> Panel:
    """Long bars to one wide frame per field (rows: sorted dates, columns: sorted symbols)."""
    ordered = bars.sort_values(KEYS, ignore_index=True)
    symbols = pd.Index(ordered["symbol"].unique())
    dates = pd.DatetimeIndex(np.sort(ordered["date"].unique()))
    if len(ordered) == len(symbols) * len(dates) and (
            ordered["date"].to_numpy() == np.tile(dates.to_numpy(), len(symbols))).all():
        # A complete grid: every symbol on every session, a reshape instead of a pivot.
        return {f: pd.DataFrame(ordered[f].to_numpy(dtype="float64")
                                .reshape(len(symbols), len(dates)).T,
                                index=dates, columns=symbols) for f in FIELDS}
    wide = ordered.pivot(index="date", columns="symbol", values=list(FIELDS)).sort_index()
    return {f: wide[f].reindex(columns=symbols) for f in FIELDS}


def _stack(frames: dict[str, pd.DataFrame], index: pd.MultiIndex) -> pd.DataFrame:
    cols = {name: frame.stack(future_stack=True).reindex(index).to_numpy(dtype="float64")
            for name, frame in frames.items()}
    out = pd.DataFrame(cols, index=index).reset_index()
    return out[[*KEYS, *frames]]


def _generate(defs: list[FeatureDef], panel: Panel, options: dict[str, dict]):
    """Yield (name, wide) for ``defs``: each family runs once, single features alone."""
    wanted = {d.name for d in defs}
    for family in dict.fromkeys(d.family for d in defs if d.family):
        family_fn = FAMILIES[family]
        for name, wide in family_fn(panel, wanted=wanted, **options.get(family, {})):
            if name in wanted:
                yield name, wide
    for d in defs:
        if d.compute is not None:
            yield d.name, d.compute(panel)


def compute_features(bars: pd.DataFrame, defs: list[FeatureDef] | None = None,
                     family_options: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per (symbol, date) of ``bars``; one float32 column per feature definition.

    Features are written one at a time into a preallocated table, so memory holds the
    result and a single wide intermediate rather than every feature twice.
    """
    defs = defs or get()
    panel = to_panel(adjust_prices(bars))
    symbols, dates = panel["close"].columns, panel["close"].index
    # Rows of the result: (symbol, date) pairs of the bars, in (symbol, date) order.
    keys = bars[["symbol", "date"]].sort_values(KEYS, ignore_index=True)
    sym_pos = symbols.get_indexer(keys["symbol"])
    date_pos = dates.get_indexer(keys["date"])
    flat = sym_pos * len(dates) + date_pos  # position in a symbol-major ravel of a wide frame
    complete = len(flat) == len(dates) * len(symbols)  # every symbol on every session
    order = [d.name for d in defs]
    column = {n: i for i, n in enumerate(order)}
    # Column-major: each feature is one contiguous column, written in a single pass.
    table = np.empty((len(keys), len(order)), dtype="float32", order="F")
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, wide in _generate(defs, panel, family_options or {}):
            if not (wide.index.equals(dates) and wide.columns.equals(symbols)):
                wide = wide.reindex(index=dates, columns=symbols)
            values = wide.to_numpy()
            dest = table[:, column[name]]
            if complete:  # symbol-major ravel of the wide frame is the row order
                dest.reshape(len(symbols), len(dates))[...] = values.T
            else:
                dest[:] = values.T.ravel()[flat]
            dest[~np.isfinite(dest)] = np.nan
    out = pd.DataFrame(table, columns=order)
    out.insert(0, "date", keys["date"].to_numpy())
    out.insert(0, "symbol", keys["symbol"].to_numpy())
    return out


def compute_labels(bars: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Forward return from the next bar: ``close[t+1+h] / close[t+1] - 1``.

    The decision is made at the close of ``t`` and traded at ``t+1``; the last ``1 + h``
    days of each symbol have no label.
    """
    close = to_panel(adjust_prices(bars))["close"]
    label = close.shift(-(1 + horizon)) / close.shift(-1) - 1
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    return _stack({"label": label}, index).sort_values(KEYS, ignore_index=True)
