"""The risk engine: every order passes it, and only its approvals reach a broker.

Limits come from params (bounded by hard ceilings in ``alphaline.config``); a broker accepts
only :class:`Approved` orders, which only :func:`check_orders` creates.

Two kinds of checks, each refusal naming its rule:

- per order: trading state, duplicate id, orders per day, price band against the previous
  validated close, order notional (max and min), fat finger (the name's typical order and
  its ADV), participation in ADV, per-name weight;
- per book, on holdings + working orders + this batch: gross, net, sector and beta
  exposure. A breach refuses only the orders that push the book further over the limit
  (largest first, until it fits); orders that shrink a position (exits) always stay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from alphaline.config import RiskParams
from alphaline.trading.portfolio import OrderIntent
from alphaline.trading.states import HALTED, REDUCING, TRADING_STATES

_TOKEN = object()
_EPS = 1e-9
_NO_SECTOR = "(no sector)"


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


def shrinks(position: float, signed_quantity: float) -> bool:
    """Whether an order moves a position toward zero without crossing it (an exit)."""
    return (abs(position) > _EPS and position * signed_quantity < 0
            and abs(signed_quantity) <= abs(position) + _EPS)


def typical_quantities(orders: pd.DataFrame, last: int) -> dict[str, float]:
    """Largest quantity among each symbol's ``last`` orders (columns ``symbol, quantity`` in
    time order): the yardstick of the fat-finger check.

    The largest, not the median: a daily book enters a name in one order and then resizes it
    in small steps, so a median of resizes would refuse the next full-size entry."""
    if orders.empty:
        return {}
    return orders.groupby("symbol")["quantity"].apply(
        lambda q: float(q.tail(last).abs().max())).to_dict()


def check_orders(orders: list[OrderIntent], *, holdings: Mapping[str, float],
                 working: Mapping[str, float], nav: float, prev_close: Mapping[str, float],
                 adv: Mapping[str, float], limits: RiskParams, known_ids: set[str],
                 trading_state: str, placed_today: int,
                 typical_quantity: Mapping[str, float] | None = None,
                 sectors: Mapping[str, str] | None = None,
                 betas: Mapping[str, float] | None = None) -> RiskVerdict:
    """Check a day's orders; return the approved (as :class:`Approved`) and the refused.

    ``working``: signed remaining quantities of orders sent earlier and not yet done; they
    count in every exposure. ``prev_close``: the last *validated* close before the orders'
    prices (the order's ``reference_price`` is checked against it, never against itself).
    ``adv``: average daily volume in shares. ``placed_today``: orders already placed today.
    Sector and beta limits apply when ``sectors``/``betas`` are given (a name missing from
    ``betas`` counts with beta 1, one missing from ``sectors`` in a sector of its own kind).
    """
    verdict = RiskVerdict()
    if trading_state not in TRADING_STATES:
        verdict.rejected = [(o, f"unknown trading state {trading_state!r}") for o in orders]
        return verdict
    if trading_state == HALTED:
        verdict.rejected = [(o, f"trading is {HALTED}") for o in orders]
        return verdict
    if not (math.isfinite(nav) and nav > 0):
        verdict.rejected = [(o, f"NAV {nav} is not positive") for o in orders]
        return verdict

    position = {s: holdings.get(s, 0.0) + working.get(s, 0.0)
                for s in set(holdings) | set(working)}
    exits: dict[int, bool] = {}
    running = dict(position)
    for i, o in enumerate(orders):
        pre = running.get(o.symbol, 0.0)
        exits[i] = shrinks(pre, o.signed_quantity)
        running[o.symbol] = pre + o.signed_quantity

    reasons: dict[int, str] = {}
    seen: set[str] = set()
    budget = limits.max_orders_per_day - placed_today
    # Exits first: when the day's order budget runs out, what is refused is new risk.
    for i in sorted(range(len(orders)), key=lambda i: not exits[i]):
        o = orders[i]
        if o.client_order_id in known_ids or o.client_order_id in seen:
            reasons[i] = f"duplicate client order id {o.client_order_id}"
            continue
        seen.add(o.client_order_id)
        reason = _order_reason(o, position.get(o.symbol, 0.0), exits[i], trading_state, nav,
                               prev_close, adv, typical_quantity, limits)
        if reason is None and budget <= 0:
            reason = (f"orders per day: {limits.max_orders_per_day} reached "
                      f"({placed_today} placed earlier today)")
        if reason is None:
            budget -= 1
        else:
            reasons[i] = reason

    kept = [i for i in range(len(orders)) if i not in reasons]
    reasons.update(_book_limits(orders, kept, exits, position, nav, prev_close, limits,
                                sectors, betas))
    for i, o in enumerate(orders):
        if i in reasons:
            verdict.rejected.append((o, reasons[i]))
        else:
            verdict.approved.append(Approved(o, _TOKEN))
    return verdict


def _order_reason(o: OrderIntent, pre: float, is_exit: bool, state: str, nav: float,
                  prev_close: Mapping[str, float], adv: Mapping[str, float],
                  typical: Mapping[str, float] | None, limits: RiskParams) -> str | None:
    """The first per-order rule ``o`` breaks, or None."""
    if not (math.isfinite(o.quantity) and o.quantity > 0):
        return f"quantity {o.quantity} is not a positive number"
    post = pre + o.signed_quantity
    if state == REDUCING and not is_exit:
        return (f"trading is {REDUCING}: only orders that shrink a position pass "
                f"({o.symbol} {pre:+,.0f} → {post:+,.0f} shares)")
    close = prev_close.get(o.symbol)
    if close is None or not (math.isfinite(close) and close > 0):
        return "price band: no previous validated close to check the price against"
    if not (math.isfinite(o.reference_price) and o.reference_price > 0):
        return f"price band: price {o.reference_price} is not a positive number"
    if abs(o.reference_price / close - 1) > limits.price_band:
        return (f"price band: price {o.reference_price:.4g} outside ±{limits.price_band:.0%} "
                f"of the previous validated close {close:.4g}")
    if o.notional > limits.max_order_notional:
        return (f"order notional {o.notional:,.0f} > limit {limits.max_order_notional:,.0f}")
    if o.notional < limits.min_order_notional and abs(post) > _EPS:
        return (f"order notional {o.notional:,.0f} < minimum {limits.min_order_notional:,.0f}")
    usual = (typical or {}).get(o.symbol)
    if usual is not None:  # the position itself is a size the name has had: exits pass
        usual = max(usual, abs(pre))
    if usual is not None and usual > 0 and o.quantity > limits.fat_finger_multiple * usual:
        return (f"fat finger: quantity {o.quantity:,.0f} > {limits.fat_finger_multiple:g}× "
                f"the typical order of {usual:,.0f}")
    volume = adv.get(o.symbol)
    if volume is None or not (math.isfinite(volume) and volume > 0):
        return "participation: no average daily volume to check the order against"
    share = o.quantity / volume
    if share > limits.fat_finger_adv:
        return (f"fat finger: quantity {o.quantity:,.0f} is {share:.0%} of ADV "
                f"(limit {limits.fat_finger_adv:.0%})")
    if share > limits.max_participation:
        return (f"participation {share:.2%} of ADV > cap {limits.max_participation:.2%}")
    weight = abs(post) * o.reference_price / nav
    if not is_exit and weight > limits.max_position_weight + _EPS:
        return (f"position weight {weight:.2%} > limit {limits.max_position_weight:.2%}")
    return None


def _book_limits(orders: list[OrderIntent], kept: list[int], exits: dict[int, bool],
                 position: Mapping[str, float], nav: float, prev_close: Mapping[str, float],
                 limits: RiskParams, sectors: Mapping[str, str] | None,
                 betas: Mapping[str, float] | None) -> dict[int, str]:
    """Refusals that bring the book (positions + working + kept orders) inside gross, net,
    sector and beta limits: for the first limit breached, the non-exit orders that push it
    further over, largest first, until it fits; again until no limit can be helped."""
    marks = {s: p for s, p in prev_close.items() if p is not None and math.isfinite(p) and p > 0}
    marks.update({orders[i].symbol: orders[i].reference_price for i in kept})
    unvalued = sorted(s for s, q in position.items() if abs(q) > _EPS and s not in marks)
    if unvalued:
        why = f"book: cannot value held {', '.join(unvalued[:5])} without a validated close"
        return {i: why for i in kept if not exits[i]}

    refused: dict[int, str] = {}
    live = list(kept)
    while True:
        qty = dict(position)
        for i in live:
            qty[orders[i].symbol] = qty.get(orders[i].symbol, 0.0) + orders[i].signed_quantity
        value = {s: q * marks[s] / nav for s, q in qty.items() if abs(q) > _EPS}
        step = _first_fixable_breach(orders, live, exits, value, marks, nav, limits, sectors,
                                     betas)
        if step is None:
            return refused
        offenders, excess, why = step
        removed = 0.0
        for push, i in offenders:
            refused[i] = why
            live.remove(i)
            removed += push
            if removed >= excess - _EPS:
                break


def _first_fixable_breach(orders, live, exits, value, marks, nav, limits, sectors, betas):
    """(offenders sorted by how far each pushes the breach, excess, reason) for the first
    breached limit that refusing some order can reduce; None when none is left."""
    contrib = {i: orders[i].signed_quantity * marks[orders[i].symbol] / nav for i in live}
    gross = sum(abs(v) for v in value.values())
    net = sum(value.values())
    checks = [
        ("gross exposure", f"{gross:.2f}", gross, limits.max_gross_exposure,
         f"> limit {limits.max_gross_exposure:.2f}", lambda i: abs(value.get(orders[i].symbol, 0.0))
         - abs(value.get(orders[i].symbol, 0.0) - contrib[i])),
        ("net exposure", f"{net:+.3f}", net, limits.max_net_exposure,
         f"outside ±{limits.max_net_exposure:.3f}", lambda i: contrib[i]),
    ]
    if sectors is not None:
        by_sector: dict[str, float] = {}
        for s, v in value.items():
            by_sector[sectors.get(s, _NO_SECTOR)] = by_sector.get(sectors.get(s, _NO_SECTOR),
                                                                  0.0) + v
        for sector, total in sorted(by_sector.items()):
            checks.append((f"sector {sector} exposure", f"{total:+.3f}", total,
                           limits.max_sector_exposure, f"outside ±{limits.max_sector_exposure:.3f}",
                           lambda i, sector=sector: contrib[i] if sectors.get(
                               orders[i].symbol, _NO_SECTOR) == sector else 0.0))
    if betas is not None:
        beta = sum(v * betas.get(s, 1.0) for s, v in value.items())
        checks.append(("beta exposure", f"{beta:+.3f}", beta, limits.max_beta_exposure,
                       f"outside ±{limits.max_beta_exposure:.3f}",
                       lambda i: contrib[i] * betas.get(orders[i].symbol, 1.0)))
    for label, shown, metric, limit, shown_limit, push_of in checks:
        excess = abs(metric) - limit
        if excess <= _EPS:
            continue
        direction = 1.0 if metric >= 0 else -1.0
        pushes = [(push_of(i) * direction, i) for i in live if not exits[i]]
        offenders = sorted(((p, i) for p, i in pushes if p > _EPS),
                           key=lambda pi: (-pi[0], orders[pi[1]].client_order_id))
        if offenders:
            return offenders, excess, f"{label} {shown} {shown_limit}"
    return None
