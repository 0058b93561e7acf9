"""Reconciliation: the ledger against a broker's account (open orders matched by client
order id, executions since the last sync, positions, cash).

:func:`compare` is pure: what the ledger says and what the account says in, a
:class:`Reconciliation` out. :func:`apply` writes it: executions the ledger lacks become
fills, orders the account acknowledged or ended move in the ledger, differences within
tolerance are booked as adjustments whose cause says so, and anything beyond tolerance (or
an order or execution the ledger cannot place) halts trading with the report as the reason.

Positions and cash are compared *after* the missing executions are counted, so a fill that
arrived while alphaline was away is a fill, not a difference.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from dataclasses import dataclass, field

import alphaline.trading.orders as order_life
from alphaline.errors import IllegalTransition
from alphaline.trading.kill_switches import trip_broker_switch
from alphaline.trading.ledger.models import CashMovement, Fill, PositionAdjustment

RULE = "reconciliation"


@dataclass(frozen=True)
class Execution:
    """One execution the account reports (IB's execDetails and its commission report)."""

    exec_id: str
    order_ref: str  # the ledger's client order id ("" for an order placed elsewhere)
    symbol: str
    quantity: float  # signed: + bought, - sold
    price: float
    commission: float
    day: dt.date  # the exchange day it executed on


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the account reports it."""

    order_ref: str
    symbol: str
    side: str  # BUY | SELL
    quantity: float
    filled: float
    status: str  # IB's: PreSubmitted, Submitted, Filled, Cancelled, Inactive, ...


@dataclass(frozen=True)
class Account:
    positions: dict[str, float]
    cash: float
    open_orders: list[BrokerOrder]
    done_orders: list[BrokerOrder]  # completed: filled, cancelled, rejected (Inactive)
    executions: list[Execution]
    avg_cost: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerOrder:
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    filled: float
    status: str


@dataclass(frozen=True)
class LedgerView:
    holdings: dict[str, float]
    cash: float
    orders: dict[str, LedgerOrder]  # every order the ledger holds, by client order id
    fill_ids: frozenset[str]


@dataclass(frozen=True)
class Tolerance:
    shares: float  # a position difference up to this many shares is booked, not a halt
    cash: float  # a cash difference up to this many dollars is booked, not a halt


@dataclass
class Reconciliation:
    day: dt.date
    fills: list[Execution] = field(default_factory=list)  # to add to the ledger
    acknowledged: list[str] = field(default_factory=list)  # NEW in the ledger, known there
    ended: list[tuple[str, str, str]] = field(default_factory=list)  # id, to status, cause
    position_adjustments: list[tuple[str, float, float]] = field(default_factory=list)
    cash_adjustment: float = 0.0
    breaks: list[str] = field(default_factory=list)  # beyond tolerance: trading halts
    positions: list[tuple[str, float, float]] = field(default_factory=list)  # sym, led, acct
    cash: tuple[float, float] = (0.0, 0.0)  # ledger (after the fills), account
    open_orders: int = 0
    executions: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        if self.ok:
            return (f"reconciled {self.day}: {len(self.fills)} executions added, "
                    f"{len(self.position_adjustments)} position and "
                    f"{'one' if self.cash_adjustment else 'no'} cash adjustment within "
                    "tolerance")
        return (f"reconciliation {self.day}: {len(self.breaks)} difference(s) beyond "
                f"tolerance: " + "; ".join(self.breaks[:5])
                + (f"; and {len(self.breaks) - 5} more" if len(self.breaks) > 5 else ""))

    def markdown(self) -> str:
        lines = [f"# Reconciliation — {self.day}", "",
                 f"- status: {'OK' if self.ok else 'MISMATCH (trading HALTED)'}",
                 f"- open orders at the broker: {self.open_orders}; executions reported: "
                 f"{self.executions}",
                 f"- executions added to the ledger: {len(self.fills)}",
                 f"- orders acknowledged: {len(self.acknowledged)}; ended: {len(self.ended)}",
                 f"- cash: ledger {self.cash[0]:,.2f}, account {self.cash[1]:,.2f}"]
        if self.breaks:
            lines += ["", "## Beyond tolerance", ""] + [f"- {b}" for b in self.breaks]
        if self.position_adjustments or self.cash_adjustment:
            lines += ["", "## Booked within tolerance", ""]
            lines += [f"- {s}: {q:+g} shares (@ {px:,.4f})"
                      for s, q, px in self.position_adjustments]
            if self.cash_adjustment:
                lines.append(f"- cash: {self.cash_adjustment:+,.2f}")
        diffs = [(s, a, b) for s, a, b in self.positions if abs(a - b) > 1e-9]
        if diffs:
            lines += ["", "## Positions that differ", "", "| symbol | ledger | account |",
                      "|---|---:|---:|"]
            lines += [f"| {s} | {a:g} | {b:g} |" for s, a, b in diffs]
        if self.ended:
            lines += ["", "## Orders ended by the broker", ""]
            lines += [f"- {cid}: {to} — {why}" for cid, to, why in self.ended]
        return "\n".join(lines) + "\n"


def compare(day: dt.date, ledger: LedgerView, account: Account, tol: Tolerance
            ) -> Reconciliation:
    """What differs between the ledger and the account, and what to do about each."""
    rec = Reconciliation(day=day, open_orders=len(account.open_orders),
                         executions=len(account.executions))
    holdings = dict(ledger.holdings)
    cash = ledger.cash
    filled = {cid: o.filled for cid, o in ledger.orders.items()}
    seen: set[str] = set()
    for e in account.executions:
        if e.exec_id in ledger.fill_ids or e.exec_id in seen:
            continue
        seen.add(e.exec_id)
        order = ledger.orders.get(e.order_ref)
        if order is None:
            rec.breaks.append(f"execution {e.exec_id} ({e.quantity:+g} {e.symbol} @ "
                              f"{e.price:g}) belongs to no ledger order "
                              f"({e.order_ref or 'no orderRef'})")
            continue
        left = order.quantity - filled[order.client_order_id]
        if (order.status not in order_life.LIVE or abs(e.quantity) > left + 1e-9
                or e.symbol != order.symbol or (e.quantity > 0) != (order.side == "BUY")):
            rec.breaks.append(f"execution {e.exec_id} ({e.quantity:+g} {e.symbol}) cannot "
                              f"apply to order {order.client_order_id} ({order.status}, "
                              f"{order.side} {order.quantity:g} {order.symbol}, "
                              f"{filled[order.client_order_id]:g} filled)")
            continue
        filled[order.client_order_id] += abs(e.quantity)
        rec.fills.append(e)
        holdings[e.symbol] = holdings.get(e.symbol, 0.0) + e.quantity
        cash -= e.quantity * e.price + e.commission

    open_refs = {o.order_ref: o for o in account.open_orders}
    done_refs = {o.order_ref: o for o in account.done_orders}
    for o in account.open_orders:
        if o.order_ref not in ledger.orders:
            rec.breaks.append(f"order {o.order_ref or '(no orderRef)'} working at the broker "
                              f"({o.side} {o.quantity:g} {o.symbol}, {o.status}) is not in "
                              "the ledger")
    acked = {e.order_ref for e in rec.fills}
    for cid, o in ledger.orders.items():
        if o.status not in order_life.LIVE:
            continue
        at = open_refs.get(cid) or done_refs.get(cid)
        if o.status == order_life.NEW and (at is not None or cid in acked):
            rec.acknowledged.append(cid)
        if at is None:
            if o.status in order_life.WORKING and cid not in acked:
                rec.ended.append((cid, order_life.EXPIRED, "the broker no longer knows it "
                                  "(a day order whose session ended)"))
            continue
        if cid in open_refs:
            continue
        now_filled = filled[cid]
        if at.status == "Inactive" and now_filled <= 1e-9:
            rec.ended.append((cid, order_life.REJECTED, "refused by the broker (Inactive)"))
        elif at.status in ("Cancelled", "ApiCancelled", "Inactive"):
            if now_filled + 1e-9 < at.filled:
                rec.breaks.append(f"order {cid}: the broker reports {at.filled:g} filled, "
                                  f"the executions only {now_filled:g}")
            elif now_filled < o.quantity - 1e-9:
                rec.ended.append((cid, order_life.CANCELLED,
                                  f"cancelled at the broker ({at.status})"))
        elif at.status == "Filled" and now_filled < o.quantity - 1e-9:
            rec.breaks.append(f"order {cid}: filled at the broker, the executions cover "
                              f"{now_filled:g} of {o.quantity:g}")

    symbols = sorted(set(holdings) | set(account.positions))
    for sym in symbols:
        mine, theirs = holdings.get(sym, 0.0), account.positions.get(sym, 0.0)
        rec.positions.append((sym, mine, theirs))
        diff = theirs - mine
        if abs(diff) <= 1e-9:
            continue
        if abs(diff) <= tol.shares:
            rec.position_adjustments.append((sym, diff, account.avg_cost.get(sym, 0.0)))
        else:
            rec.breaks.append(f"{sym}: the ledger holds {mine:g} shares, the account "
                              f"{theirs:g} ({diff:+g}, tolerance {tol.shares:g})")
    rec.cash = (cash, account.cash)
    diff = account.cash - cash
    if not math.isfinite(account.cash):
        rec.breaks.append("the account reported no cash balance")
    elif abs(diff) > tol.cash:
        rec.breaks.append(f"cash: the ledger has {cash:,.2f}, the account {account.cash:,.2f} "
                          f"({diff:+,.2f}, tolerance {tol.cash:,.2f})")
    elif abs(diff) > 1e-6:
        rec.cash_adjustment = diff
    return rec


def ledger_view(ledger) -> LedgerView:
    """What :func:`compare` reads from the ledger, in a few queries."""
    orders = {o.client_order_id: LedgerOrder(o.client_order_id, o.symbol, o.side, o.quantity,
                                             o.filled_quantity, o.status)
              for o in ledger.orders()}
    return LedgerView(ledger.holdings(), ledger.cash(), orders, frozenset(ledger.fill_ids()))


def as_fill(e: Execution) -> Fill:
    # IB's price is the price paid: slippage is in it already (0 here, or it counts twice)
    return Fill(fill_id=e.exec_id, client_order_id=e.order_ref, day=e.day, symbol=e.symbol,
                quantity=e.quantity, price=e.price, commission=e.commission, slippage=0.0)


def apply(ledger, rec: Reconciliation, broker_name: str) -> Reconciliation:
    """Write ``rec`` to the ledger; beyond tolerance, halt trading with its summary."""
    for cid in rec.acknowledged:
        _move(ledger, cid, order_life.SUBMITTED, f"known at {broker_name} (reconciliation)")
    try:  # one transaction for all; should one not apply, each on its own to name it
        ledger.add_fills([as_fill(e) for e in rec.fills])
    except IllegalTransition:
        for e in rec.fills:
            try:
                ledger.add_fills([as_fill(e)])
            except IllegalTransition as exc:
                rec.breaks.append(f"execution {e.exec_id}: {exc}")
    for cid, to, cause in rec.ended:
        _move(ledger, cid, to, f"{broker_name}: {cause} (reconciliation)")
    with ledger.session() as s, s.begin():
        for sym, qty, price in rec.position_adjustments:
            s.add(PositionAdjustment(day=rec.day, symbol=sym, quantity=qty, cash=0.0,
                                     cost_basis=qty * price,
                                     cause=f"reconciliation with {broker_name}: {qty:+g} "
                                     f"shares of {sym} (within tolerance)"))
        if rec.cash_adjustment:
            s.add(CashMovement(day=rec.day, amount=rec.cash_adjustment, kind="reconcile",
                               note=f"reconciliation with {broker_name}: "
                               f"{rec.cash_adjustment:+,.2f} (within tolerance)"))
    if rec.breaks:
        trip_broker_switch(ledger, RULE, rec.summary(), rec.day)
    return rec


def _move(ledger, cid: str, to: str, cause: str) -> None:
    with contextlib.suppress(IllegalTransition):  # an event moved it first: nothing to do
        ledger.transition(cid, to, cause)
