"""Paper broker: orders decided at a close fill at the next session's close, with costs."""

from __future__ import annotations

import datetime as dt

from alphaline.trading.costs import CostModel
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.risk_engine import Approved


class PaperBroker:
    name = "paper"

    def __init__(self, costs: CostModel):
        self.costs = costs

    def submit(self, approved: list[Approved]) -> list[str]:
        """Accept approved orders; they work until the next close. Returns accepted ids."""
        for a in approved:
            if not isinstance(a, Approved):
                raise TypeError("PaperBroker accepts only risk-approved orders")
        return [a.order.client_order_id for a in approved]

    def fills_at_close(self, day: dt.date, working: list[Order], closes: dict[str, float],
                       daily_vol: dict[str, float], adv: dict[str, float]) -> list[Fill]:
        """Fill every working order at ``day``'s close; symbols without a bar stay working."""
        fills = []
        for order in working:
            price = closes.get(order.symbol)
            if price is None:
                continue
            signed = order.quantity if order.side == "BUY" else -order.quantity
            fills.append(Fill(
                fill_id=f"{order.client_order_id}-F1", client_order_id=order.client_order_id,
                day=day, symbol=order.symbol, quantity=signed, price=price,
                commission=self.costs.commission(order.quantity),
                slippage=self.costs.slippage(order.quantity, price,
                                             daily_vol.get(order.symbol, float("nan")),
                                             adv.get(order.symbol, float("nan"))),
            ))
        return fills
