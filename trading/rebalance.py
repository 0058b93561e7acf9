"""Rebalance rules: current holdings + target weights + prices + costs → orders. Pure.

A name's trade is one of: an **entry** (not held, wanted), an **exit** (held, not wanted), a
**flip** (held on the other side) or a **resize** (same side, another size). Entries, exits
and flips always trade: the book holds exactly the names the builder chose. A resize trades
only when

- its notional is at least ``portfolio.rebalance.min_trade_notional``, and
- with ``portfolio.rebalance.band``, its expected benefit beats its estimated cost. The
  benefit of closing a gap ``Δw`` is ``|Δw| × NAV × |α|`` with Grinold's expected return
  ``α = IC × σ × √h × |z|`` (``IC``: ``portfolio.rebalance.expected_ic``; ``σ``: the name's
  daily volatility; ``h``: the label horizon; ``z``: the name's cross-sectional z-score of
  today's score); the cost is the cost model's commission + half spread + impact.

Target shares are rounded toward zero to whole lots (``broker.lot_size``). An entry or
resize below the risk engine's ``min_order_notional`` waits; an order beyond
``risk.max_participation`` of ADV is clipped to it (the name moves toward its target over
several days). If skipping resizes would leave the book over a gross, net or per-name
limit, none is skipped.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from alphaline.config import Params
from alphaline.trading.book import NO_CONTEXT, BookContext, BookLimits, build_book
from alphaline.trading.costs import CostModel
from alphaline.trading.portfolio import OrderIntent, orders_to_targets


@dataclass(frozen=True)
class RebalanceRules:
    band: bool
    expected_ic: float
    min_trade_notional: float
    lot_size: int
    horizon: int  # sessions a position is held for (the label horizon)
    min_order_notional: float  # the risk engine refuses smaller orders (exits aside)
    max_participation: float  # the risk engine refuses orders beyond this share of ADV

    @classmethod
    def from_params(cls, p: Params) -> RebalanceRules:
        r = p.portfolio.rebalance
        return cls(r.band, r.expected_ic, r.min_trade_notional, p.broker.lot_size,
                   p.features.label_horizon, p.risk.min_order_notional,
                   p.risk.max_participation)


@dataclass
class RebalancePlan:
    orders: list[OrderIntent]
    targets: dict[str, float]  # shares held once every order fills
    skipped: dict[str, str] = field(default_factory=dict)  # symbol → why it does not trade
    turnover: float = 0.0  # Σ |traded notional| / NAV
    estimated_cost: float = 0.0  # dollars, by the cost model


def expected_alpha(scores: pd.Series, daily_vol: pd.Series, ic: float, horizon: int
                   ) -> pd.Series:
    """Grinold's ``α = IC × σ × √h × z`` per symbol, over the holding horizon."""
    s = scores.astype("float64")
    sd = s.std(ddof=0)
    z = (s - s.mean()) / sd if sd > 0 else s * 0.0
    return ic * daily_vol.reindex(s.index).astype("float64") * math.sqrt(horizon) * z


def lot_shares(weight: float, nav: float, price: float, lot: int) -> float:
    """Whole lots worth ``weight × nav`` at ``price``, rounded toward zero."""
    return float(math.trunc(weight * nav / price / lot) * lot)


def _within_limits(shares: dict[str, float], prices: dict[str, float], nav: float,
                   limits: BookLimits) -> bool:
    values = np.array([q * prices[s] for s, q in shares.items() if s in prices]) / nav
    if not len(values):
        return True
    tol = 1e-9
    return bool(np.abs(values).sum() <= limits.gross + tol and abs(values.sum()) <= limits.net
                + tol and np.abs(values).max() <= limits.name + tol)


def _participation_cap(adv: float, rules: RebalanceRules) -> float:
    """Whole lots within the participation cap (no cap without an ADV: the risk engine
    then refuses the order with its reason)."""
    if not (math.isfinite(adv) and adv > 0):
        return math.inf
    return float(math.floor(rules.max_participation * adv / rules.lot_size) * rules.lot_size)


def plan_rebalance(day: dt.date, weights: pd.Series, holdings: dict[str, float], nav: float,
                   prices: dict[str, float], *, costs: CostModel, daily_vol: dict[str, float],
                   adv: dict[str, float], scores: pd.Series | None, rules: RebalanceRules,
                   limits: BookLimits, intent: str = "rebalance") -> RebalancePlan:
    """The orders that move ``holdings`` toward ``weights`` (of ``nav``) under the rules.

    A held name without a usable price today keeps its position (frozen, reported in
    ``skipped``); a wanted name without one is not entered.
    """
    alpha = (expected_alpha(scores, pd.Series(daily_vol), rules.expected_ic, rules.horizon)
             if scores is not None else pd.Series(dtype="float64")).to_dict()
    weight = weights.fillna(0.0).to_dict()
    wanted = {s for s, w in weight.items() if w != 0}
    targets: dict[str, float] = {}
    skipped: dict[str, str] = {}
    resizes: dict[str, float] = {}  # symbol → full target when a resize is skipped
    for sym in sorted(wanted | {s for s, q in holdings.items() if q != 0}):
        held = holdings.get(sym, 0.0)
        price = prices.get(sym)
        if price is None or not math.isfinite(price) or price <= 0:
            if held:
                targets[sym] = held
            skipped[sym] = "no usable price today" + (": position frozen" if held else "")
            continue
        target = lot_shares(float(weight.get(sym, 0.0)), nav, price, rules.lot_size)
        delta = target - held
        if delta == 0:
            targets[sym] = held
            continue
        resize = held != 0 and target != 0 and (held > 0) == (target > 0)
        if resize:
            notional = abs(delta) * price
            cost = costs.trade_cost(delta, price, daily_vol.get(sym, math.nan),
                                    adv.get(sym, math.nan))
            benefit = notional * abs(float(alpha.get(sym, 0.0)))
            if notional < rules.min_trade_notional:
                skipped[sym] = f"resize {notional:,.0f} below the minimum trade notional"
            elif rules.band and not benefit > cost:  # an unknown benefit (no σ) waits too
                skipped[sym] = (f"inside the no-trade band: benefit {benefit:,.2f} ≤ cost "
                                f"{cost:,.2f}")
            if sym in skipped:
                targets[sym] = held
                resizes[sym] = target
                continue
        if target != 0 and abs(delta) * price < rules.min_order_notional:
            targets[sym] = held  # the risk engine would refuse it; exits are exempt there
            skipped[sym] = (f"order {abs(delta) * price:,.0f} below the risk engine's minimum "
                            f"notional")
            continue
        cap = _participation_cap(adv.get(sym, math.nan), rules)
        if abs(delta) > cap:  # move toward the target at the participation the risk allows
            delta = math.copysign(cap, delta)
            skipped[sym] = f"clipped to {rules.max_participation:.0%} of ADV ({cap:,.0f} shares)"
        targets[sym] = held + delta
    if resizes and not _within_limits(targets, prices, nav, limits):
        for sym, target in resizes.items():  # the band never leaves the book over a limit
            if abs(target - holdings.get(sym, 0.0)) * prices[sym] < rules.min_order_notional:
                continue  # … but an order the risk engine would refuse is not planned
            targets[sym] = target
            del skipped[sym]
    orders = orders_to_targets(day, targets, holdings, prices, intent)
    quantity = np.array([o.quantity for o in orders], dtype="float64")
    price = np.array([o.reference_price for o in orders], dtype="float64")
    cost = float(costs.trade_costs(
        quantity, price, [daily_vol.get(o.symbol, math.nan) for o in orders],
        [adv.get(o.symbol, math.nan) for o in orders]).sum())
    return RebalancePlan(orders=orders, targets=targets, skipped=skipped,
                         turnover=float((quantity * price).sum()) / nav, estimated_cost=cost)


def day_plan(day: dt.date, scores: pd.DataFrame, holdings: dict[str, float], nav: float,
             close: dict[str, float], daily_vol: dict[str, float], adv: dict[str, float],
             params: Params, context: BookContext = NO_CONTEXT, scale: float = 1.0,
             keep_fraction: float | None = None) -> RebalancePlan:
    """One day's book (:func:`alphaline.trading.book.build_book`) and the rebalance to it.

    ``scale`` (the kill switches' velocity tier) multiplies the book; ``keep_fraction`` (the
    last tier) replaces it with every current position × that fraction, no new names."""
    if keep_fraction is not None:
        current = {s: q * close[s] / nav for s, q in holdings.items()
                   if q and s in close and nav > 0}
        weights = pd.Series(current, dtype="float64") * keep_fraction
    else:
        weights = pd.Series(build_book(scores, params, context).to_numpy(),
                            index=scores["symbol"].to_numpy()) * scale
    rules = RebalanceRules.from_params(params)
    if keep_fraction is not None or scale < 1.0:
        # a risk reduction trades whatever its alpha: no band, no minimum resize
        rules = replace(rules, band=False, min_trade_notional=0.0)
    return plan_rebalance(
        day, weights, holdings, nav, close,
        costs=CostModel.from_params(params.broker),
        daily_vol=daily_vol, adv=adv, scores=scores.set_index("symbol")["score"],
        rules=rules, limits=BookLimits.from_params(params))
