"""Brokers: what the day's steps (trading/daily.py) ask of one, whichever it is.

:class:`Broker` is the contract both the paper broker and the Interactive Brokers adapter
keep: accept risk-approved orders under their client order ids (a known id is never a second
order), resend, cancel, list what they accepted, and hand over the fills of a session.

A broker with an account of its own (:class:`ReconcilingBroker`: IBKR) is the source of
truth for positions, cash and the fills it reports: the day reconciles the ledger with it
before anything is sent, and it books its own fees (no modelled borrow fee is added).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from alphaline.trading.costs import CostModel
    from alphaline.trading.ledger.models import Fill, Order
    from alphaline.trading.reconcile import Reconciliation
    from alphaline.trading.risk_engine import Approved


@runtime_checkable
class Broker(Protocol):
    name: str
    costs: CostModel

    def submit(self, approved: list[Approved]) -> list[str]:
        """Send risk-approved orders; return the ids the broker holds (sent now or known)."""
        ...

    def resend(self, orders: list[Order]) -> list[str]:
        """Send again ledger orders left ``NEW``; an id the broker knows stays one order."""
        ...

    def cancel(self, client_order_ids: Iterable[str]) -> list[str]:
        """Cancel orders the broker holds; return the ids it cancelled now."""
        ...

    def submissions(self) -> list[str]:
        """Every client order id the broker has accepted, once each."""
        ...

    def fills_at_close(self, day: dt.date, working: list[Order], closes: dict[str, float],
                       daily_vol: dict[str, float], adv: dict[str, float],
                       bars: dict | None = None) -> list[Fill]:
        """The fills of ``working`` orders in ``day``'s session not yet in the ledger."""
        ...


@runtime_checkable
class ReconcilingBroker(Broker, Protocol):
    """A broker whose account is the truth the ledger is reconciled against."""

    def reconcile(self, day: dt.date) -> Reconciliation:
        """Compare the ledger with the account, apply what is within tolerance, halt on
        the rest; return what was found and done."""
        ...
