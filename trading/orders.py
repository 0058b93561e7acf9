"""An order's life as a transition table (Nautilus Trader's idea): every move is looked up,
and one the table does not hold raises before anything changes.

```
(none) ─► NEW ─► SUBMITTED ─► PARTIALLY_FILLED ─► FILLED
   │       │        │  │              │
   │       │        │  └─► FILLED     ├─► CANCELLED
   │       │        ├─► CANCELLED     └─► EXPIRED
   │       │        ├─► EXPIRED
   │       │        └─► REJECTED (by the broker)
   │       ├─► CANCELLED (left behind by a crash, or a halt)
   │       └─► REJECTED
   └─► REJECTED (by the risk engine: never NEW, never sent)
```

Pure functions only: the ledger (``trading/ledger/store.py``) applies them inside the
transaction that writes the order and its event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from alphaline.errors import IllegalTransition
from alphaline.trading.portfolio import OrderIntent

NEW = "NEW"
SUBMITTED = "SUBMITTED"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"

TRANSITIONS: Mapping[str | None, frozenset[str]] = {
    None: frozenset({NEW, REJECTED}),
    NEW: frozenset({SUBMITTED, REJECTED, CANCELLED}),
    SUBMITTED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED, REJECTED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED}),
    FILLED: frozenset(),
    CANCELLED: frozenset(),
    REJECTED: frozenset(),
    EXPIRED: frozenset(),
}
STATES = frozenset(s for s in TRANSITIONS if s is not None)
TERMINAL = frozenset(s for s in STATES if not TRANSITIONS[s])
WORKING = frozenset({SUBMITTED, PARTIALLY_FILLED})  # at the broker, may still fill
LIVE = WORKING | {NEW}  # not final: counts against the day's plan

# Below this many shares a quantity is zero (fills are whole shares; floats carry noise).
QUANTITY_EPS = 1e-9


def check_transition(order_id: str, current: str | None, to: str) -> None:
    """Raise :class:`IllegalTransition` unless ``current → to`` is in the table."""
    if current is not None and current not in TRANSITIONS:
        raise IllegalTransition(f"order {order_id}: unknown state {current!r}")
    if to not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        raise IllegalTransition(f"order {order_id}: {current or 'no order'} → {to} is not a "
                                f"legal move (allowed: {allowed})")


def status_after_fill(order_id: str, quantity: float, filled: float, fill: float) -> str:
    """The state after ``fill`` more shares of an order of ``quantity`` with ``filled`` done;
    raises when the fill is not positive or goes beyond what remains."""
    remaining = quantity - filled
    if not fill > QUANTITY_EPS:
        raise IllegalTransition(f"order {order_id}: a fill of {fill} shares is not positive")
    if fill > remaining + QUANTITY_EPS:
        raise IllegalTransition(f"order {order_id}: a fill of {fill:g} shares exceeds the "
                                f"{remaining:g} that remain of {quantity:g}")
    return FILLED if fill >= remaining - QUANTITY_EPS else PARTIALLY_FILLED


def client_order_id(day: dt.date, symbol: str, intent: str, sequence: int) -> str:
    """``{YYYYMMDD}-{symbol}-{intent}-{seq}``: a later order for the same name on the same day
    (after a rejection, a cancel or an expiry) gets the next sequence, never the same id."""
    return f"{day:%Y%m%d}-{symbol}-{intent}-{sequence}"


def sequence_of(order_id: str) -> int:
    """The sequence a :func:`client_order_id` ends with."""
    return int(order_id.rsplit("-", 1)[1])


def with_sequences(intents: Iterable[OrderIntent], last: Mapping[tuple[str, str], int]
                   ) -> list[OrderIntent]:
    """Give each intent the id after the newest ``last[(symbol, intent)]`` of its day."""
    return [dataclasses.replace(o, client_order_id=client_order_id(
        o.trading_day, o.symbol, o.intent, last.get((o.symbol, o.intent), 0) + 1))
        for o in intents]


def signed_remaining(side: str, quantity: float, filled: float) -> float:
    """Shares still to trade, + to buy and - to sell."""
    remaining = max(quantity - filled, 0.0)
    return remaining if side == "BUY" else -remaining


def projected(holdings: Mapping[str, float], working: Mapping[str, float]) -> dict[str, float]:
    """Positions once every working order fills: what a new plan must start from, so that a
    rerun whose plan the live orders already cover sends nothing."""
    out = dict(holdings)
    for sym, qty in working.items():
        out[sym] = out.get(sym, 0.0) + qty
    return {s: q for s, q in out.items() if abs(q) > QUANTITY_EPS}
