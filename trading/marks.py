"""Prices to mark the book at: today's close where the name has a bar, else its last known
price, flagged stale with the number of sessions it has gone without one. A missing bar must
never stop the day (a halted or delisted name would otherwise stop trading for good); after
``trading.delisting_after_sessions`` such sessions the name is reported as a suspected
delisting for a person to resolve."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaline.calendar import sessions


@dataclass(frozen=True)
class Mark:
    symbol: str
    quantity: float
    price: float
    price_day: dt.date  # the session the price is from
    stale_sessions: int  # sessions since price_day without a bar (0: priced today)

    @property
    def market_value(self) -> float:
        return self.quantity * self.price


SessionsBetween = Callable[[dt.date, dt.date], int]


def sessions_between(calendar: str | None) -> SessionsBetween:
    """Sessions in (after, through]: the exchange's when known, else weekdays."""
    if calendar is None:
        return lambda after, through: int(np.busday_count(after + dt.timedelta(days=1),
                                                          through + dt.timedelta(days=1)))
    return lambda after, through: len(sessions(calendar, after + dt.timedelta(days=1), through))


def last_closes(bars: pd.DataFrame, day: dt.date) -> dict[str, tuple[dt.date, float]]:
    """Each symbol's last finite close on or before ``day``, with its date."""
    hist = bars[(bars["date"] <= pd.Timestamp(day)) & np.isfinite(bars["close"])]
    last = hist.sort_values("date").groupby("symbol").tail(1)
    return {s: (pd.Timestamp(d).date(), float(c))
            for s, d, c in zip(last["symbol"], last["date"], last["close"], strict=True)}


def mark_book(day: dt.date, held: Mapping[str, float], closes: Mapping[str, float],
              last_known: Mapping[str, tuple[dt.date, float]],
              between: SessionsBetween) -> list[Mark]:
    """One mark per held name. ``last_known`` must price every held name without a usable
    close today; a name with neither is a ledger bug and raises."""
    out = []
    for sym, qty in sorted(held.items()):
        close = closes.get(sym)
        if close is not None and np.isfinite(close) and close > 0:
            out.append(Mark(sym, qty, float(close), day, 0))
            continue
        if sym not in last_known:
            raise ValueError(f"{sym} is held on {day} and has never had a price")
        price_day, price = last_known[sym]
        out.append(Mark(sym, qty, float(price), price_day,
                        between(price_day, day) if price_day < day else 0))
    return out


def suspected_delistings(marks: list[Mark], after_sessions: int) -> list[str]:
    """Held names without a bar for ``after_sessions`` sessions or more."""
    return [m.symbol for m in marks if m.stale_sessions >= after_sessions]
