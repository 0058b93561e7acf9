"""Paper broker: orders decided at a close fill in the next session, with costs.

An order fills as its execution style says (``Order.execution_style``, chosen by
:func:`alphaline.trading.execution.execution_style`): ``MOC`` (the default, and every order
of a ledger written before styles existed) at the next session's close, charged the cost
model's slippage on the whole order; ``TWAP``, ``VWAP`` and ``AC`` across the next session,
slice by slice along the bar's seeded intraday path (trading/execution.py), each slice
charged the cost model's half spread and impact at its participation.

It keeps its own record of what it was sent (a journal: one JSON line per submission or
cancel, appended before it answers), as a real broker would. A resend of a known client
order id is the same order, never a second one: that is what makes the ledger's crash
recovery (resend every ``NEW`` order under its id) safe.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path

from alphaline.trading.costs import CostModel
from alphaline.trading.execution import MOC, STYLES, Bar, Schedules, schedule_fill
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.orders import signed_remaining
from alphaline.trading.risk_engine import Approved


class PaperBroker:
    name = "paper"

    def __init__(self, costs: CostModel, journal: Path | None = None,
                 schedules: Schedules | None = None):
        """``journal``: the file that remembers submissions across processes (the daily flow
        passes one under ``state/``); without it the memory lasts as long as the object.
        ``schedules``: how scheduled styles are worked (``broker.execution`` in params; the
        defaults of :class:`Schedules` without)."""
        self.costs = costs
        self.schedules = schedules or Schedules()
        self.journal = journal
        self._submitted: dict[str, dict] = {}
        self._cancelled: set[str] = set()
        if journal is not None and journal.is_file():
            for line in journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash: never acknowledged
                    continue
                self._remember(entry)

    def _remember(self, entry: dict) -> None:
        if entry["event"] == "submit":
            self._submitted.setdefault(entry["id"], entry)
        elif entry["event"] == "cancel":
            self._cancelled.add(entry["id"])

    def _record(self, entry: dict) -> None:
        self._record_all([entry])

    def _record_all(self, entries: list[dict]) -> None:
        """Append the lines in one write and sync them once before acknowledging any (a
        crash mid-write leaves at most a cut last line, never acknowledged)."""
        if not entries:
            return
        if self.journal is not None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(json.dumps(e) + "\n" for e in entries).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        for entry in entries:
            self._remember(entry)

    def submit(self, approved: list[Approved]) -> list[str]:
        """Accept approved orders; they work until the next close. Returns accepted ids; an
        id already accepted is acknowledged again without a second order."""
        for a in approved:
            if not isinstance(a, Approved):
                raise TypeError("PaperBroker accepts only risk-approved orders")
        at = dt.datetime.now(dt.UTC).isoformat()
        fresh = {a.order.client_order_id: a.order for a in approved
                 if a.order.client_order_id not in self._submitted}
        self._record_all([{"event": "submit", "id": cid, "symbol": o.symbol, "side": o.side,
                           "quantity": o.quantity, "at": at} for cid, o in fresh.items()])
        return [a.order.client_order_id for a in approved]

    def resend(self, orders: list[Order]) -> list[str]:
        """Send again ledger orders left ``NEW`` by a crash. Only orders the risk engine
        approved (``approved``, set only from an :class:`Approved`) pass; an id this broker
        already accepted stays one order."""
        for o in orders:
            if not (o.approved and o.status == "NEW"):
                raise PermissionError(f"order {o.client_order_id} is not an approved NEW order: "
                                      "only the risk engine's approvals are sent")
        for o in orders:
            if o.client_order_id not in self._submitted:
                self._record({"event": "submit", "id": o.client_order_id, "symbol": o.symbol,
                              "side": o.side, "quantity": o.quantity,
                              "at": dt.datetime.now(dt.UTC).isoformat()})
        return [o.client_order_id for o in orders]

    def cancel(self, client_order_ids: Iterable[str]) -> list[str]:
        """Cancel orders this broker holds; returns the ids it cancelled now."""
        done = []
        for cid in client_order_ids:
            if cid in self._submitted and cid not in self._cancelled:
                self._record({"event": "cancel", "id": cid,
                              "at": dt.datetime.now(dt.UTC).isoformat()})
                done.append(cid)
        return done

    def submissions(self) -> list[str]:
        """Every id this broker accepted, once each, in order (its own record)."""
        return list(self._submitted)

    def submission_count(self) -> dict[str, int]:
        """How many submit records each id has in the journal (1 each, or an order was sent
        twice)."""
        counts: dict[str, int] = {}
        if self.journal is not None and self.journal.is_file():
            for line in self.journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if entry["event"] == "submit":
                    counts[entry["id"]] = counts.get(entry["id"], 0) + 1
        else:
            counts = dict.fromkeys(self._submitted, 1)
        return counts

    def fills_at_close(self, day: dt.date, working: list[Order], closes: dict[str, float],
                       daily_vol: dict[str, float], adv: dict[str, float],
                       bars: dict[str, Bar] | None = None) -> list[Fill]:
        """Fill what remains of every working order this broker holds in ``day``'s session,
        as its execution style says; symbols without a bar, and orders it was never sent or
        has cancelled, do not fill. ``bars``: the day's open, high and low per symbol, which
        scheduled styles are priced along (without them a schedule fills at the close).
        A fill's id names its order and day, so a rerun of the day yields the same fill."""
        fills = []
        for order in working:
            price = closes.get(order.symbol)
            cid = order.client_order_id
            if price is None or cid not in self._submitted or cid in self._cancelled:
                continue
            signed = signed_remaining(order.side, order.quantity, order.filled_quantity)
            if signed == 0:
                continue
            vol = daily_vol.get(order.symbol, float("nan"))
            volume = adv.get(order.symbol, float("nan"))
            style = order.execution_style or MOC
            if style not in STYLES:
                raise ValueError(f"order {cid}: unknown execution style {style!r}")
            if style == MOC:  # the whole order in the closing auction
                fill_price = price
                slippage = self.costs.slippage(abs(signed), price, vol, volume)
            else:
                bar = (bars or {}).get(order.symbol)
                bar = Bar(bar.open, bar.high, bar.low, price) if bar is not None \
                    else Bar(float("nan"), float("nan"), float("nan"), price)
                worked = schedule_fill(style, signed, bar, vol, volume, self.costs,
                                       self.schedules, order.symbol, day,
                                       order.reference_price)
                fill_price, slippage = worked.price, worked.slippage
            fills.append(Fill(
                fill_id=f"{cid}-F{day:%Y%m%d}", client_order_id=cid, day=day,
                symbol=order.symbol, quantity=signed, price=fill_price,
                commission=self.costs.commission(abs(signed)), slippage=slippage,
            ))
        return fills

