"""Paper broker: orders decided at a close fill at the next session's close, with costs.

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
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.orders import signed_remaining
from alphaline.trading.risk_engine import Approved


class PaperBroker:
    name = "paper"

    def __init__(self, costs: CostModel, journal: Path | None = None):
        """``journal``: the file that remembers submissions across processes (the daily flow
        passes one under ``state/``); without it the memory lasts as long as the object."""
        self.costs = costs
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
        """Append one line in one write and sync it before acknowledging."""
        if self.journal is not None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(entry) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        self._remember(entry)

    def submit(self, approved: list[Approved]) -> list[str]:
        """Accept approved orders; they work until the next close. Returns accepted ids; an
        id already accepted is acknowledged again without a second order."""
        for a in approved:
            if not isinstance(a, Approved):
                raise TypeError("PaperBroker accepts only risk-approved orders")
        for a in approved:
            o = a.order
            if o.client_order_id not in self._submitted:
                self._record({"event": "submit", "id": o.client_order_id, "symbol": o.symbol,
                              "side": o.side, "quantity": o.quantity,
                              "at": dt.datetime.now(dt.UTC).isoformat()})
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
                       daily_vol: dict[str, float], adv: dict[str, float]) -> list[Fill]:
        """Fill what remains of every working order this broker holds at ``day``'s close;
        symbols without a bar, and orders it was never sent or has cancelled, do not fill.
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
            fills.append(Fill(
                fill_id=f"{cid}-F{day:%Y%m%d}", client_order_id=cid, day=day,
                symbol=order.symbol, quantity=signed, price=price,
                commission=self.costs.commission(abs(signed)),
                slippage=self.costs.slippage(abs(signed), price,
                                             daily_vol.get(order.symbol, float("nan")),
                                             adv.get(order.symbol, float("nan"))),
            ))
        return fills

