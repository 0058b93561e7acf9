"""Splits and cash dividends, from the source's records, as changes to a position.

The bars carry optional ``split_ratio`` (new shares per old share, 1 = none) and ``dividend``
(cash per share, 0 = none) on the ex-date. Both apply to the position held at the previous
close: a split multiplies the shares (the total cost basis carries over, so the basis per share
divides by the ratio, and shares × price, hence NAV, is unchanged); a dividend credits
quantity × amount, which a short position pays. The ledger stores each action once per
(day, symbol, kind) and each adjustment once per action, so applying a day twice changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from alphaline.errors import DataRejected

SPLIT, DIVIDEND = "split", "dividend"


@dataclass(frozen=True)
class Action:
    day: dt.date
    symbol: str
    kind: str  # split | dividend
    value: float  # split: new shares per old share; dividend: cash per share


@dataclass(frozen=True)
class Adjustment:
    symbol: str
    quantity: float  # shares added (signed)
    cash: float  # cash credited (signed: a short pays a dividend)
    cost_basis: float  # change of the position's total basis, $
    cause: str


def actions_on(bars: pd.DataFrame, day: dt.date) -> list[Action]:
    """The day's splits and dividends in ``bars`` (none when the columns are absent).

    A ratio that is not a positive finite number, or a negative dividend, is bad data: it
    would rewrite holdings or cash, so it stops the day instead of being guessed at.
    """
    today = bars[bars["date"] == pd.Timestamp(day)]
    out = []
    for column, kind, none in (("split_ratio", SPLIT, 1.0), ("dividend", DIVIDEND, 0.0)):
        if column not in today:
            continue
        for sym, value in zip(today["symbol"], today[column], strict=True):
            if pd.isna(value) or value == none:
                continue
            value = float(value)
            if not math.isfinite(value) or (value <= 0 if kind == SPLIT else value < 0):
                raise DataRejected(f"{column} of {sym} on {day} is {value}: a split ratio must "
                                   f"be > 0 and a dividend ≥ 0")
            out.append(Action(day, str(sym), kind, value))
    return sorted(out, key=lambda a: (a.symbol, a.kind))


def split_ratios(actions: Iterable[Action]) -> dict[str, float]:
    """New shares per old share of each symbol splitting: what a quantity decided before the
    ex-date is multiplied by, and a price from before it divided by (a working order, the
    previous close a price band compares with)."""
    return {a.symbol: a.value for a in actions if a.kind == SPLIT}


def adjustment(action: Action, quantity: float) -> Adjustment | None:
    """What ``action`` does to a position of ``quantity`` shares (None: not held)."""
    if abs(quantity) < 1e-9:
        return None
    if action.kind == SPLIT:
        added = quantity * (action.value - 1.0)
        return Adjustment(action.symbol, added, 0.0, 0.0,
                          f"split {action.value:g}:1 on {action.day}: {quantity:g} → "
                          f"{quantity + added:g} shares")
    if action.kind == DIVIDEND:
        cash = quantity * action.value
        return Adjustment(action.symbol, 0.0, cash, 0.0,
                          f"dividend {action.value:g}/share on {action.day} × {quantity:g} "
                          f"shares: {cash:+,.2f} {'paid (short)' if cash < 0 else 'received'}")
    raise ValueError(f"unknown corporate action kind {action.kind!r}")


def average_cost(events: Iterable[tuple[float, float | None, float]]) -> tuple[float, float]:
    """(shares, total basis $) after a position's events in order.

    Each event is ``(shares, price, basis change)``: a fill has a price (adding to a position
    adds shares × price to the basis; reducing it removes basis pro rata; crossing zero starts
    a new basis at the fill's price); an adjustment has price None and adds its basis change
    (a split adds shares at no cost, which is what lowers the basis per share).
    """
    qty, basis = 0.0, 0.0
    for shares, price, basis_change in events:
        if price is None:
            qty, basis = qty + shares, basis + basis_change
        elif qty == 0 or (qty > 0) == (shares > 0):
            qty, basis = qty + shares, basis + shares * price
        elif abs(shares) <= abs(qty):
            basis *= (qty + shares) / qty
            qty += shares
        else:
            qty += shares
            basis = qty * price
        if abs(qty) < 1e-9:
            qty, basis = 0.0, 0.0
    return qty, basis
