"""Scores → target weights → orders. Pure functions."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd


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


def long_short_weights(scores: pd.Series, quantile: float, gross: float,
                       max_weight: float) -> pd.Series:
    """Dollar-neutral: equal weights long the top and short the bottom ``quantile``.

    Each leg carries ``gross / 2`` of NAV unless ``max_weight`` caps its names lower.
    """
    scores = scores.dropna()
    n = math.floor(len(scores) * quantile)
    weights = pd.Series(0.0, index=scores.index)
    if n == 0:
        return weights
    ordered = scores.sort_values(kind="stable")
    per_name = min(gross / 2 / n, max_weight)
    weights[ordered.index[-n:]] = per_name
    weights[ordered.index[:n]] = -per_name
    return weights


def sized_long_short_weights(sizes: pd.Series, gross: float, max_weight: float) -> pd.Series:
    """Dollar-neutral weights proportional to signed bet sizes (meta-labeling), each leg
    ``gross / 2`` before the per-name cap. Without both a long and a short bet the book
    holds nothing: a one-sided book is a market bet the risk limits were not set for."""
    sizes = sizes.dropna()
    longs, shorts = sizes.clip(lower=0), (-sizes).clip(lower=0)
    weights = pd.Series(0.0, index=sizes.index)
    if longs.sum() <= 0 or shorts.sum() <= 0:
        return weights
    weights += (gross / 2 * longs / longs.sum()).clip(upper=max_weight)
    weights -= (gross / 2 * shorts / shorts.sum()).clip(upper=max_weight)
    return weights


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
