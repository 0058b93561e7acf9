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
    if dates is None:  # one cross-section (the daily flow): no grouping needed
        values = scores.to_numpy()
        scored = np.isfinite(values)
        count = int(scored.sum())
        side = np.zeros(len(values), dtype=int)
        if count >= 2:
            n = max(int(np.floor(count * quantile)), 1)
            order = np.flatnonzero(scored)[np.argsort(values[scored], kind="stable")]
            side[order[:n]], side[order[-n:]] = -1, 1
        return pd.Series(side, index=scores.index)
    keys = _date_keys(scores.index, dates)
    scored = scores.notna().to_numpy()
    count = pd.Series(scored.astype(int)).groupby(keys).transform("sum").to_numpy()
    n = np.maximum(np.floor(count * quantile), 1)
    rank = pd.Series(scores.to_numpy()).groupby(keys).rank(method="first").to_numpy()
    side = np.where(rank > count - n, 1, np.where(rank <= n, -1, 0))
    return pd.Series(np.where(scored & (count >= 2), side, 0), index=scores.index)


def _group_sum(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Each row's group total (``codes`` from :func:`pandas.factorize`), by bincount."""
    return np.bincount(codes, weights=values, minlength=n)[codes]


def leg_weights(signed: ArrayLike, long_total: float, short_total: float,
                cap: float | ArrayLike, dates: ArrayLike | None = None) -> np.ndarray:
    """Signed strengths → a book: each leg proportional to |strength|, scaled to its total,
    capped per name (``cap``, one value or one per row); with two legs the heavier one is
    then scaled down to the lighter, so no cap leaves a net bet.

    ``short_total = 0`` builds a long-only book. A long/short date without both a long and a
    short holds nothing: a one-sided book is a market bet the risk limits were not set for.
    Vectorized over every date of a panel: the research path stays fast.
    """
    s = np.nan_to_num(np.asarray(signed, dtype="float64"), nan=0.0)
    codes, uniques = pd.factorize(_date_keys(pd.RangeIndex(len(s)), dates))
    n = len(uniques)
    cap = np.broadcast_to(np.asarray(cap, dtype="float64"), s.shape)
    legs = []
    for leg, total in ((np.clip(s, 0, None), long_total), (np.clip(-s, 0, None), short_total)):
        sums = _group_sum(leg, codes, n)
        scaled = np.divide(total * leg, sums, out=np.zeros_like(leg), where=sums > 0)
        legs.append(np.minimum(scaled, cap))
    longs, shorts = legs
    if short_total == 0:
        return longs
    long_sum, short_sum = _group_sum(longs, codes, n), _group_sum(shorts, codes, n)
    both = (long_sum > 0) & (short_sum > 0)
    matched = np.minimum(long_sum, short_sum)
    scale_long = np.divide(matched, long_sum, out=np.zeros_like(s), where=both)
    scale_short = np.divide(matched, short_sum, out=np.zeros_like(s), where=both)
    return longs * scale_long - shorts * scale_short


def long_short_weights(scores: pd.Series, quantile: float, gross: float, max_weight: float,
                       dates: ArrayLike | None = None) -> pd.Series:
    """The quantile book: dollar-neutral, equal weights long the top and short the bottom
    ``quantile``.

    Each leg carries ``gross / 2`` of NAV unless ``max_weight`` caps its names lower (both
    legs hold the same count, so the cap keeps the book neutral). ``dates`` groups rows into
    cross-sections: one call builds one day's book or every day's of a panel alike.
    """
    side = quantile_sides(scores, quantile, dates)
    return pd.Series(leg_weights(side.to_numpy(), gross / 2, gross / 2, max_weight, dates),
                     index=scores.index)


def sized_long_short_weights(sizes: pd.Series, gross: float, max_weight: float,
                             dates: ArrayLike | None = None) -> pd.Series:
    """Dollar-neutral weights proportional to signed bet sizes (meta-labeling): each leg
    scaled to ``gross / 2``, capped per name, the heavier leg scaled to the lighter."""
    return pd.Series(leg_weights(sizes.to_numpy(), gross / 2, gross / 2, max_weight, dates),
                     index=sizes.index)


def orders_to_targets(day: dt.date, targets: dict[str, float], holdings: dict[str, float],
                      prices: dict[str, float], intent: str = "rebalance") -> list[OrderIntent]:
    """The orders that move ``holdings`` to ``targets`` (shares), one per name that changes,
    priced at ``prices`` (the reference the risk engine checks)."""
    orders = []
    for sym in sorted(set(targets) | set(holdings)):
        delta = targets.get(sym, 0.0) - holdings.get(sym, 0.0)
        if abs(delta) < 1e-9:
            continue
        orders.append(OrderIntent(client_order_id(day, sym, intent), day, sym,
                                  "BUY" if delta > 0 else "SELL", float(abs(delta)),
                                  prices[sym], intent))
    return orders


def rebalance_orders(day: dt.date, weights: pd.Series, holdings: dict[str, float], nav: float,
                     prices: dict[str, float], intent: str = "rebalance") -> list[OrderIntent]:
    """Whole-share orders that move ``holdings`` to ``weights`` of ``nav`` at ``prices``
    (no band, no minimum: :func:`alphaline.trading.rebalance.plan_rebalance` adds them)."""
    symbols = sorted(set(weights.index[weights != 0]) | set(holdings))
    targets = {}
    for sym in symbols:
        price = prices.get(sym)
        if price is None or not math.isfinite(price) or price <= 0:
            raise ValueError(f"no usable price for {sym} on {day}")
        target = float(math.trunc(weights.get(sym, 0.0) * nav / price))
        held = holdings.get(sym, 0.0)
        targets[sym] = held if abs(target - held) < 1 else target  # no fractional orders
    return orders_to_targets(day, targets, holdings, prices, intent)
