"""Scores → target weights → orders. Pure functions.

This module is the only place that turns scores into a book: walk-forward metrics, the
gate, the meta-labeler's sides and the daily flow all call it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class OrderIntent:
    client_order_id: str
    trading_day: dt.date
    symbol: str
    side: str  # BUY | SELL
    quantity: float  # > 0 shares
    reference_price: float
    intent: str

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity

    @property
    def notional(self) -> float:
        return self.quantity * self.reference_price


def client_order_id(day: dt.date, symbol: str, intent: str) -> str:
    """Deterministic id: the same (day, symbol, intent) is the same order on every rerun."""
    return f"{day:%Y%m%d}-{symbol}-{intent}"


def _date_keys(index: pd.Index, dates: ArrayLike | None) -> np.ndarray:
    return np.zeros(len(index)) if dates is None else np.asarray(dates)


def quantile_sides(scores: pd.Series, quantile: float, dates: ArrayLike | None = None
                   ) -> pd.Series:
    """+1 for a date's top ``quantile`` of scores, -1 for its bottom, 0 elsewhere.

    Each leg holds ``max(floor(n × quantile), 1)`` names of the ``n`` scored on that date
    (ties broken by order); a date with fewer than two scored names holds nothing.
    """
    scores = pd.Series(np.asarray(scores, dtype="float64"), index=scores.index)
    keys = _date_keys(scores.index, dates)
    scored = scores.notna().to_numpy()
    count = pd.Series(scored.astype(int)).groupby(keys).transform("sum").to_numpy()
    n = np.maximum(np.floor(count * quantile), 1)
    rank = pd.Series(scores.to_numpy()).groupby(keys).rank(method="first").to_numpy()
    side = np.where(rank > count - n, 1, np.where(rank <= n, -1, 0))
    return pd.Series(np.where(scored & (count >= 2), side, 0), index=scores.index)


def long_short_weights(scores: pd.Series, quantile: float, gross: float, max_weight: float,
                       dates: ArrayLike | None = None) -> pd.Series:
    """The book: dollar-neutral, equal weights long the top and short the bottom ``quantile``.

    Each leg carries ``gross / 2`` of NAV unless ``max_weight`` caps its names lower (both
    legs hold the same count, so the cap keeps the book neutral). ``dates`` groups rows into
    cross-sections: one call builds one day's book or every day's of a panel alike.
    """
    side = quantile_sides(scores, quantile, dates)
    keys = _date_keys(scores.index, dates)
    per_leg = (side > 0).astype(int).groupby(keys).transform("sum").to_numpy()
    per_name = np.minimum(gross / 2 / np.maximum(per_leg, 1), max_weight)
    return (side * per_name).astype("float64")


def sized_long_short_weights(sizes: pd.Series, gross: float, max_weight: float,
                             dates: ArrayLike | None = None) -> pd.Series:
    """Dollar-neutral weights proportional to signed bet sizes (meta-labeling).

    Each leg is scaled to ``gross / 2`` and capped per name; the heavier leg is then scaled
    down to the lighter one, so the cap never leaves a net bet. Without both a long and a
    short bet a date holds nothing: a one-sided book is a market bet the risk limits were
    not set for.
    """
    s = pd.Series(np.asarray(sizes, dtype="float64"), index=sizes.index).fillna(0.0)
    keys = _date_keys(s.index, dates)
    legs = []
    for leg in (s.clip(lower=0), (-s).clip(lower=0)):
        total = leg.groupby(keys).transform("sum")
        legs.append((gross / 2 * leg / total.where(total > 0)).clip(upper=max_weight)
                    .fillna(0.0))
    longs, shorts = legs
    long_sum = longs.groupby(keys).transform("sum")
    short_sum = shorts.groupby(keys).transform("sum")
    both = (long_sum > 0) & (short_sum > 0)
    matched = np.minimum(long_sum, short_sum)
    scale_long = (matched / long_sum).where(both, 0.0)
    scale_short = (matched / short_sum).where(both, 0.0)
    return (longs * scale_long - shorts * scale_short).fillna(0.0)


def rebalance_orders(day: dt.date, weights: pd.Series, holdings: dict[str, float], nav: float,
                     prices: dict[str, float], intent: str = "rebalance") -> list[OrderIntent]:
    """Whole-share orders that move ``holdings`` to ``weights`` of ``nav`` at ``prices``."""
    symbols = sorted(set(weights.index[weights != 0]) | set(holdings))
    orders = []
    for sym in symbols:
        price = prices.get(sym)
        if price is None or not math.isfinite(price) or price <= 0:
            raise ValueError(f"no usable price for {sym} on {day}")
        target = math.trunc(weights.get(sym, 0.0) * nav / price)
        delta = target - holdings.get(sym, 0.0)
        if abs(delta) < 1:
            continue
        orders.append(OrderIntent(client_order_id(day, sym, intent), day, sym,
                                  "BUY" if delta > 0 else "SELL", float(abs(delta)), price,
                                  intent))
    return orders
