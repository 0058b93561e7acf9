"""The risk engine: every order passes it, and only its approvals reach a broker.

Limits come from params (bounded by hard ceilings in ``alphaline.config``); a broker accepts
only :class:`Approved` orders, which only :func:`check_orders` creates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from alphaline.config import RiskParams
from alphaline.trading.portfolio import OrderIntent

_TOKEN = object()


class Approved:
    """An order that passed every pre-trade check. Not constructible elsewhere."""

    __slots__ = ("order",)

    def __init__(self, order: OrderIntent, token: object):
        if token is not _TOKEN:
            raise PermissionError("orders are approved only by trading.risk_engine.check_orders")
        self.order = order


@dataclass
class RiskVerdict:
    approved: list[Approved] = field(default_factory=list)
    rejected: list[tuple[OrderIntent, str]] = field(default_factory=list)


def check_orders(orders: list[OrderIntent], *, holdings: dict[str, float], nav: float,
                 last_close: dict[str, float], limits: RiskParams, known_ids: set[str],
                 trading_state: str) -> RiskVerdict:
    """Pre-trade checks: state, duplicates, price band, notional, per-name, gross and net."""
    verdict = RiskVerdict()
    if trading_state != "ACTIVE":
        verdict.rejected = [(o, f"trading is {trading_state}") for o in orders]
        return verdict
    if not (math.isfinite(nav) and nav > 0):
        verdict.rejected = [(o, f"NAV {nav} is not positive") for o in orders]
        return verdict
    seen: set[str] = set()
    passed: list[OrderIntent] = []
    for o in orders:
        reason = None
        close = last_close.get(o.symbol)
        post = holdings.get(o.symbol, 0.0) + o.signed_quantity
        if o.client_order_id in known_ids or o.client_order_id in seen:
            reason = "duplicate client order id"
        elif o.quantity <= 0 or not math.isfinite(o.quantity):
            reason = f"quantity {o.quantity} is not a positive number"
        elif close is None or not (close > 0):
            reason = "no last close to check the price against"
        elif abs(o.reference_price / close - 1) > limits.price_band:
            reason = (f"price {o.reference_price:.4g} outside ±{limits.price_band:.0%} "
                      f"of last close {close:.4g}")
        elif o.notional > limits.max_order_notional:
            reason = f"notional {o.notional:,.0f} > limit {limits.max_order_notional:,.0f}"
        elif abs(post * close) / nav > limits.max_position_weight + 1e-9:
            reason = (f"position weight {abs(post * close) / nav:.2%} > limit "
                      f"{limits.max_position_weight:.2%}")
        seen.add(o.client_order_id)
        if reason:
            verdict.rejected.append((o, reason))
        else:
            passed.append(o)
    # Book-level limits on the positions after every passed order fills.
    after = dict(holdings)
    for o in passed:
        after[o.symbol] = after.get(o.symbol, 0.0) + o.signed_quantity
    values = [q * last_close[s] for s, q in after.items() if s in last_close]
    gross = sum(abs(v) for v in values) / nav
    net = sum(values) / nav
    book_reason = None
    if gross > limits.max_gross_exposure + 1e-9:
        book_reason = f"gross exposure {gross:.2f} > limit {limits.max_gross_exposure:.2f}"
    elif abs(net) > limits.max_net_exposure + 1e-9:
        book_reason = f"net exposure {net:+.3f} outside ±{limits.max_net_exposure:.3f}"
    if book_reason:
        verdict.rejected.extend((o, book_reason) for o in passed)
    else:
        verdict.approved = [Approved(o, _TOKEN) for o in passed]
    return verdict
