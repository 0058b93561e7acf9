"""Interactive Brokers through ``ib_async``: the ledger's orders at TWS / IB Gateway.

Where to connect comes from the environment (``ALPHALINE_IBKR_HOST``, ``_PORT``,
``_CLIENT_ID``, ``_ACCOUNT``); the default port is TWS's paper port, 7497. A live account (an
id not starting with ``D``, IB's paper prefix) or a live port (7496, 4001) is refused unless
``broker.ibkr.live: true`` *and* ``ALPHALINE_IBKR_LIVE_CONFIRM=yes``. The account id is never
logged nor written to a report.

How events reach the ledger, each as it arrives: ``orderStatus`` acknowledges an order (NEW →
SUBMITTED) or ends it (cancelled, or rejected with IB's error code and text), ``execDetails``
is a fill under IB's execution id (a duplicate adds nothing), ``commissionReport`` sets that
fill's commission. An end that arrives before the fills it follows waits for them.

Every order carries ``orderRef`` = the ledger's client order id. Before any batch is sent
the ledger is reconciled with the account (trading/reconcile.py), and an order whose
``orderRef`` the account already knows (working, done, or executed) is never sent again: a
resend after a crash or a reconnect is safe. A dropped connection is retried with
exponential backoff; one longer than ``broker.ibkr.max_disconnect_s`` trips the broker kill
switch (HALTED, with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import os
import time
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ib_async import IB, Stock, TagValue
from ib_async import Order as IbOrder
from ib_async.ib import StartupFetch
from sqlalchemy import select

import alphaline.trading.orders as order_life
from alphaline.config import IbkrParams
from alphaline.errors import AlphalineError, ConfigError, IllegalTransition
from alphaline.trading.costs import CostModel
from alphaline.trading.kill_switches import BROKER_DISCONNECTED, trip_broker_switch
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.reconcile import (
    Account,
    BrokerOrder,
    Execution,
    Reconciliation,
    Tolerance,
    apply,
    compare,
    ledger_view,
)
from alphaline.trading.risk_engine import Approved

log = logging.getLogger("alphaline.ibkr")

ENV_HOST = "ALPHALINE_IBKR_HOST"
ENV_PORT = "ALPHALINE_IBKR_PORT"
ENV_CLIENT_ID = "ALPHALINE_IBKR_CLIENT_ID"
ENV_ACCOUNT = "ALPHALINE_IBKR_ACCOUNT"
ENV_LIVE_CONFIRM = "ALPHALINE_IBKR_LIVE_CONFIRM"
LIVE_CONFIRM_VALUE = "yes"
PAPER_PORT = 7497  # TWS paper; IB Gateway paper is 4002
LIVE_PORTS = frozenset({7496, 4001})  # TWS live, IB Gateway live
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")

FETCH = (StartupFetch.POSITIONS | StartupFetch.ORDERS_OPEN | StartupFetch.ORDERS_COMPLETE
         | StartupFetch.ACCOUNT_UPDATES | StartupFetch.EXECUTIONS)
_CONNECT_ERRORS = (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError)
_ACKED = frozenset({"PreSubmitted", "Submitted", "Filled", "ApiPending"})
_ENDED = frozenset({"Cancelled", "ApiCancelled"})
SUMMARY_TAGS = ("NetLiquidation", "TotalCashValue", "GrossPositionValue", "AvailableFunds",
                "BuyingPower")
_CANCEL_CONFIRM = 202  # "Order Canceled - reason:": the end of a cancel, not a refusal


class BrokerUnavailable(AlphalineError):
    """The broker cannot be reached (after the bounded retries), or stayed away too long."""

    exit_code = 5


class LiveTradingRefused(AlphalineError):
    """A live account or port without both switches (params and environment)."""

    exit_code = 2


@dataclass(frozen=True)
class Endpoint:
    """Where TWS / IB Gateway listens. ``account`` is kept out of ``repr``: it never reaches
    a log line."""

    host: str
    port: int
    client_id: int
    account: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoint:
        env = os.environ if env is None else env
        return cls(host=env.get(ENV_HOST) or "127.0.0.1",
                   port=_int_var(env, ENV_PORT, PAPER_PORT),
                   client_id=_int_var(env, ENV_CLIENT_ID, 1),
                   account=env.get(ENV_ACCOUNT) or None)

    def describe(self) -> str:
        return f"{self.host}:{self.port} (client id {self.client_id})"


def _int_var(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def is_paper_account(account: str) -> bool:
    """IB's paper accounts start with ``D`` (``DU…`` individual, ``DF…`` advisor)."""
    return account.upper().startswith("D")


def check_live(live: bool, env: Mapping[str, str], endpoint: Endpoint,
               accounts: Iterable[str]) -> None:
    """Refuse a live account or port unless ``broker.ibkr.live`` is true and the
    confirmation variable says yes; the message names what is missing, never the account."""
    live_accounts = [a for a in accounts if not is_paper_account(a)]
    if endpoint.port not in LIVE_PORTS and not live_accounts:
        return
    what = ("a live account" if live_accounts else f"live port {endpoint.port}")
    missing = []
    if not live:
        missing.append("broker.ibkr.live: true in params.yaml")
    if env.get(ENV_LIVE_CONFIRM) != LIVE_CONFIRM_VALUE:
        missing.append(f"{ENV_LIVE_CONFIRM}={LIVE_CONFIRM_VALUE} in the environment")
    if missing:
        raise LiveTradingRefused(f"IBKR at {endpoint.host}:{endpoint.port} is {what}: real "
                                 f"money needs {' and '.join(missing)}; refusing to trade")


@dataclass(frozen=True)
class OrderSpec:
    """An IB order type for one of the ledger's execution styles."""

    order_type: str  # MOC | LMT | MKT
    limit_price: float | None
    algo: str  # "" | Twap | Vwap | Adaptive
    algo_params: tuple[tuple[str, str], ...] = ()
    tif: str = "DAY"


def order_spec(style: str, side: str, reference_price: float, p: IbkrParams) -> OrderSpec:
    """The style the ledger chose by size against ADV (trading/execution.py) as IB orders:
    ``MOC`` → market-on-close (or a limit at the reference ± ``limit_offset_bps``), ``TWAP``
    and ``VWAP`` → IB's algos of that name over the session, ``AC`` (front-loaded) → IB's
    Adaptive algo at ``adaptive_priority``."""
    if style == "TWAP":
        return OrderSpec("MKT", None, "Twap", (("strategyType", "Marketable"),
                                               ("allowPastEndTime", "1")))
    if style == "VWAP":
        return OrderSpec("MKT", None, "Vwap", (("maxPctVol", f"{p.vwap_max_pct_volume:g}"),
                                               ("allowPastEndTime", "1"),
                                               ("noTakeLiq", "0")))
    if style == "AC":
        return OrderSpec("MKT", None, "Adaptive", (("adaptivePriority",
                                                    p.adaptive_priority),))
    if style != "MOC":
        raise ValueError(f"unknown execution style {style!r}")
    if p.small_order_type == "MOC":
        return OrderSpec("MOC", None, "")
    sign = 1 if side == "BUY" else -1
    return OrderSpec("LMT", round(reference_price * (1 + sign * p.limit_offset_bps / 1e4), 2),
                     "")


def exchange_day(t: dt.datetime) -> dt.date:
    """The New York date of an execution time (IB reports it with a zone)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(NEW_YORK).date()


class IbkrBroker:
    """The :class:`~alphaline.trading.brokers.ReconcilingBroker` for Interactive Brokers."""

    name = "ibkr"

    def __init__(self, ledger, costs: CostModel, params: IbkrParams, endpoint: Endpoint,
                 env: Mapping[str, str] | None = None):
        self.ledger = ledger
        self.costs = costs
        self.params = params
        self.endpoint = endpoint
        self.env = os.environ if env is None else env
        # ib_async's own INFO and WARNING lines print whole orders and positions, account
        # id included: only its errors (which carry none) pass
        logging.getLogger("ib_async").setLevel(logging.ERROR)
        self.ib = IB()
        self.ib.RequestTimeout = max(params.ack_timeout_seconds, 1.0) * 6
        if params.requests_per_second == 0:
            self.ib.client.MaxRequests = 0
            self.ib.client.setConnectOptions("+PACEAPI")  # TWS paces the requests itself
        else:
            self.ib.client.MaxRequests = params.requests_per_second
        self.ib.orderStatusEvent += self._guard(self._on_status)
        self.ib.execDetailsEvent += self._guard(self._on_execution)
        self.ib.commissionReportEvent += self._guard(self._on_commission)
        self.ib.errorEvent += self._guard(self._on_error)
        self.ib.disconnectedEvent += self._on_disconnect
        self._connected_once = False
        self._down_since: float | None = None
        self._reconciled = False
        self._day: dt.date | None = None
        self._cancelling: set[str] = set()
        self._parked: dict[str, tuple[str, str, float]] = {}  # ends waiting for fills
        self._acks: dict[str, str] = {}  # acknowledgements not yet written (a batch)
        self._commissions: dict[str, float] = {}  # commission reports not yet written
        self.last_reconciliation: Reconciliation | None = None

    # connection
    def connect(self) -> IbkrBroker:
        """Connect with up to ``connect_attempts`` tries, ``backoff_seconds`` × 2^n apart."""
        last: BaseException | None = None
        for attempt in range(self.params.connect_attempts):
            if attempt:
                time.sleep(self.params.backoff_seconds * 2 ** (attempt - 1))
            try:
                self._connect_once()
                return self
            except _CONNECT_ERRORS as exc:
                last = exc
                log.warning("IBKR %s: connection try %d of %d failed: %s",
                            self.endpoint.describe(), attempt + 1,
                            self.params.connect_attempts, exc)
        raise BrokerUnavailable(f"IBKR at {self.endpoint.describe()}: no connection after "
                                f"{self.params.connect_attempts} tries ({last})")

    def _connect_once(self) -> None:
        if self.ib.isConnected():
            return
        self.ib.disconnect()  # clears what the last session knew: the server says it again
        p = self.params
        self.ib.connect(self.endpoint.host, self.endpoint.port, self.endpoint.client_id,
                        timeout=p.connect_timeout_seconds,
                        account=self.endpoint.account or "", fetchFields=FETCH)
        try:
            check_live(p.live, self.env, self.endpoint, self.ib.managedAccounts())
        except LiveTradingRefused:
            self.ib.disconnect()
            raise
        self._connected_once = True
        self._down_since = None
        self._reconciled = False
        log.info("IBKR %s: connected", self.endpoint.describe())

    def close(self) -> None:
        self._flush_acks()
        self._down_since = None
        self._connected_once = False
        self.ib.disconnect()

    def __enter__(self) -> IbkrBroker:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_disconnect(self) -> None:
        if self._connected_once and self._down_since is None:
            self._down_since = time.monotonic()
            self._reconciled = False
            log.warning("IBKR %s: disconnected", self.endpoint.describe())

    def _ensure_connected(self, reconcile: bool = True) -> None:
        """Reconnect after a drop (backoff, bounded by ``max_disconnect_s``; beyond it the
        broker kill switch trips), then reconcile before anything else is sent."""
        if self.ib.isConnected():
            self._pump(0)  # a closed socket is noticed only when the loop runs
        if self.ib.isConnected():
            return
        if not self._connected_once:
            self.connect()
            return
        if self._down_since is None:
            self._down_since = time.monotonic()
        p = self.params
        attempt, last = 0, None
        while True:
            try:
                self._connect_once()
                break
            except _CONNECT_ERRORS as exc:
                last = exc
            attempt += 1
            away = time.monotonic() - (self._down_since or time.monotonic())
            if away > p.max_disconnect_s:
                reason = (f"broker disconnected: IBKR at {self.endpoint.describe()} away for "
                          f"{away:.1f} s (limit {p.max_disconnect_s:g} s): {last}")
                trip_broker_switch(self.ledger, BROKER_DISCONNECTED, reason, self._day)
                raise BrokerUnavailable(reason)
            time.sleep(min(p.backoff_seconds * 2 ** (attempt - 1),
                           p.max_disconnect_s - away + 0.01))
        if reconcile and self._day is not None:
            self.reconcile(self._day)

    def _pump(self, seconds: float) -> None:
        """Let the event loop run (events reach the ledger); a disconnect seen meanwhile
        shows in ``isConnected()``, not as an exception here."""
        with contextlib.suppress(ConnectionError):
            self.ib.sleep(seconds)
        self._flush_acks()

    def _retrying(self, request, reconcile: bool = True):
        """Run ``request()`` (ib_async requests); a connection lost in the middle is
        re-established (and reconciled, unless this is the reconciliation), then the
        request runs again."""
        for attempt in range(3):
            self._ensure_connected(reconcile)
            try:
                return request()
            except ConnectionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _ready(self) -> bool:
        """Connected and reconciled since the last (re)connect; False when the
        reconciliation found differences beyond tolerance (trading is halted)."""
        self._ensure_connected()
        rec = self.reconcile(self._day or dt.datetime.now(NEW_YORK).date())
        return rec.ok

    # events → ledger
    def _guard(self, handler):
        """An event handler that cannot break the event loop: a failure is logged and the
        next batch reconciles first."""
        def run(*args):
            try:
                handler(*args)
            except Exception:
                self._reconciled = False
                log.exception("IBKR event %s failed; reconciling before the next order",
                              handler.__name__)
        return run

    def _status(self, ref: str) -> str | None:
        return self.ledger.statuses([ref]).get(ref) if ref else None

    def _acknowledge(self, ref: str, why: str) -> None:
        """Acknowledgements are written together at the end of the event loop's turn
        (:meth:`_flush_acks`): one transaction for a batch of 500, not 500."""
        self._acks.setdefault(ref, f"acknowledged by {self.name}: {why}")

    def _flush_acks(self) -> None:
        if self._commissions:
            commissions, self._commissions = self._commissions, {}
            self.ledger.set_commissions(commissions)
        if self._acks:
            acks, self._acks = self._acks, {}
            statuses = self.ledger.statuses(acks)
            self.ledger.transition_many([(ref, order_life.SUBMITTED, why)
                                         for ref, why in acks.items()
                                         if statuses.get(ref) == order_life.NEW])

    def _move(self, ref: str, to: str, cause: str) -> bool:
        try:
            self.ledger.transition(ref, to, cause)
            return True
        except IllegalTransition:
            return False

    def _on_status(self, trade) -> None:
        ref, st = trade.order.orderRef, trade.orderStatus.status
        if not ref:
            return
        if st in _ACKED:
            self._acknowledge(ref, f"{st} as order {trade.order.orderId}")
        elif st in _ENDED:
            entry = trade.log[-1] if trade.log else None
            code = entry.errorCode if entry is not None else 0
            if code and code != _CANCEL_CONFIRM:
                text = entry.message.split(": ", 1)[-1]
                self._end(ref, order_life.REJECTED,
                          f"rejected by {self.name}: error {code}: {text}",
                          trade.orderStatus.filled)
            elif ref not in self._cancelling:  # a cancel we asked for: the caller books it
                why = entry.message.split(": ", 1)[-1] if code else st
                self._end(ref, order_life.CANCELLED, f"cancelled at {self.name}: {why}",
                          trade.orderStatus.filled)

    def _end(self, ref: str, to: str, cause: str, broker_filled: float) -> None:
        """End an order once the ledger has every fill the broker counted before the end;
        until then it waits (an execution report can arrive after the status)."""
        self._flush_acks()
        orders = self._orders([ref])
        order = orders.get(ref)
        if order is None or order.status not in order_life.LIVE:
            self._parked.pop(ref, None)
            return
        if order.filled_quantity + 1e-9 < broker_filled:
            self._parked[ref] = (to, cause, broker_filled)
            return
        self._parked.pop(ref, None)
        if order.status == order_life.NEW and to != order_life.REJECTED:
            self._move(ref, order_life.SUBMITTED, f"acknowledged by {self.name}")
        if to == order_life.REJECTED and order.filled_quantity > 1e-9:
            to = order_life.CANCELLED  # a partly filled order ends cancelled, fills kept
        self._move(ref, to, cause)

    def _on_execution(self, trade, fill) -> None:
        self._record(fill)
        for ref, (to, cause, filled) in list(self._parked.items()):
            self._end(ref, to, cause, filled)

    def _record(self, fill) -> int:
        ex = fill.execution
        ref = ex.orderRef
        self._flush_acks()
        status = self._status(ref)
        if status is None:  # not an order of this ledger: the reconciliation reports it
            return 0
        if status == order_life.NEW:
            self._move(ref, order_life.SUBMITTED, f"acknowledged by {self.name}: executed")
        report = fill.commissionReport
        commission = report.commission if report.execId == ex.execId else 0.0
        try:
            return self.ledger.add_fills([self._fill(ex, fill.contract.symbol, commission)])
        except IllegalTransition as exc:
            self._reconciled = False  # the reconciliation reports it and halts
            log.error("IBKR execution %s for %s not applied: %s", ex.execId, ref, exc)
            return 0

    @staticmethod
    def _fill(ex, symbol: str, commission: float) -> Fill:
        signed = ex.shares if ex.side in ("BOT", "BUY") else -ex.shares
        return Fill(fill_id=ex.execId, client_order_id=ex.orderRef, day=exchange_day(ex.time),
                    symbol=symbol, quantity=signed, price=ex.price, commission=commission,
                    slippage=0.0)

    def _on_commission(self, trade, fill, report) -> None:
        if math.isfinite(report.commission) and abs(report.commission) < 1e12:
            self._commissions[report.execId] = report.commission  # written with the acks

    def _on_error(self, req_id: int, code: int, text: str, contract) -> None:
        if code in (1100, 1300, 2110):
            log.warning("IBKR %s: connectivity: %s (%d)", self.endpoint.describe(), text, code)

    def _orders(self, ids: Iterable[str]) -> dict[str, Order]:
        ids = list(ids)
        with self.ledger.session() as s:
            return {o.client_order_id: o for o in s.scalars(
                select(Order).where(Order.client_order_id.in_(ids)))}

    # the account
    def _known_refs(self) -> set[str]:
        """Every orderRef the account knows this session: working, done or executed."""
        refs = {t.order.orderRef for t in self.ib.trades()}
        refs |= {f.execution.orderRef for f in self.ib.fills()}
        refs.discard("")
        return refs

    def account(self) -> Account:
        """The account now: positions, cash, open and completed orders, executions."""
        self.ib.reqPositions()
        acct = self.endpoint.account or (self.ib.managedAccounts() or [""])[0]
        self.ib.reqAccountUpdates(acct)
        open_trades = self.ib.reqAllOpenOrders()
        done_trades = self.ib.reqCompletedOrders(False)
        self.ib.reqExecutions()
        positions, avg_cost = {}, {}
        for pos in self.ib.positions(acct):
            if pos.contract.secType == "STK" and abs(pos.position) > 1e-9:
                positions[pos.contract.symbol] = float(pos.position)
                avg_cost[pos.contract.symbol] = float(pos.avgCost)
        cash = math.nan
        for v in self.ib.accountValues(acct):
            if v.tag == "TotalCashValue" and v.currency in ("USD", "BASE"):
                cash = float(v.value)
                if v.currency == "USD":
                    break
        executions = []
        for f in self.ib.fills():
            ex, report = f.execution, f.commissionReport
            if f.contract.secType not in ("STK", ""):
                continue
            signed = ex.shares if ex.side in ("BOT", "BUY") else -ex.shares
            executions.append(Execution(
                ex.execId, ex.orderRef, f.contract.symbol, signed, ex.price,
                report.commission if report.execId == ex.execId else 0.0,
                exchange_day(ex.time)))
        return Account(positions, cash, [_broker_order(t) for t in open_trades],
                       [_broker_order(t) for t in done_trades], executions, avg_cost)

    def reconcile(self, day: dt.date) -> Reconciliation:
        """The ledger against the account (trading/reconcile.py): at startup, after every
        reconnect and before every batch of orders."""
        self._day = day
        account = self._retrying(self.account, reconcile=False)
        self._flush_acks()
        self.ledger.set_commissions({e.exec_id: e.commission for e in account.executions
                                     if e.commission})
        tol = self.params.reconcile
        rec = compare(day, ledger_view(self.ledger), account,
                      Tolerance(tol.position_tolerance_shares, tol.cash_tolerance))
        apply(self.ledger, rec, self.name)
        self._reconciled = True
        self.last_reconciliation = rec
        (log.info if rec.ok else log.error)("IBKR: %s", rec.summary())
        return rec

    def check(self, day: dt.date) -> Reconciliation:
        """What :meth:`reconcile` would find, without writing anything (``broker check``)."""
        self._day = day
        account = self._retrying(self.account, reconcile=False)
        tol = self.params.reconcile
        return compare(day, ledger_view(self.ledger), account,
                       Tolerance(tol.position_tolerance_shares, tol.cash_tolerance))

    def account_summary(self) -> dict[str, str]:
        """The account's headline values (cash, net liquidation, ...) by tag."""
        return {v.tag: v.value for v in self.ib.accountValues()
                if v.currency in ("USD", "BASE", "") and v.tag in SUMMARY_TAGS}

    # the Broker protocol
    def submit(self, approved: list[Approved]) -> list[str]:
        """Send risk-approved orders (reconciled first); return the ids the account holds.
        An id it already knows is not sent again; one it refuses is REJECTED in the ledger
        with IB's code and text and not returned; one it has not answered within
        ``ack_timeout_seconds`` stays NEW (the next run's reconciliation settles it)."""
        for a in approved:
            if not isinstance(a, Approved):
                raise TypeError("IbkrBroker accepts only risk-approved orders")
        if not approved:
            return []
        if not self._ready():
            log.error("IBKR: nothing sent: the reconciliation halted trading")
            return []
        return self._send([a.order.client_order_id for a in approved])

    def resend(self, orders: list[Order]) -> list[str]:
        """Send ledger orders left NEW (only risk-approved ones); known ids are not resent."""
        for o in orders:
            if not (o.approved and o.status == "NEW"):
                raise PermissionError(f"order {o.client_order_id} is not an approved NEW order: "
                                      "only the risk engine's approvals are sent")
        if not orders:
            return []
        if not self._ready():
            return []
        return self._send([o.client_order_id for o in orders])

    def _send(self, ids: list[str]) -> list[str]:
        rows = self._orders(ids)
        trades = {}
        while True:
            known = self._known_refs()
            for cid in ids:
                o = rows[cid]
                if cid in known or cid in trades or o.status != order_life.NEW:
                    continue
                if not self.ib.isConnected():
                    break
                spec = order_spec(o.execution_style or "MOC", o.side, o.reference_price,
                                  self.params)
                trades[cid] = self.ib.placeOrder(Stock(o.symbol, "SMART", "USD"),
                                                 self._ib_order(o, spec))
            # the client-side pacing sends the batch over len / rate seconds: wait that too
            rate = self.params.requests_per_second
            deadline = (time.monotonic() + self.params.ack_timeout_seconds
                        + (len(trades) / rate if rate else 0.0))
            while self.ib.isConnected() and time.monotonic() < deadline and any(
                    t.orderStatus.status in ("PendingSubmit", "ApiPending")
                    for t in trades.values()):
                self._pump(0.002)
            if self.ib.isConnected():
                break
            self._ensure_connected()  # reconnect and reconcile, then send what it lacks
            trades = {}
            rows = self._orders(ids)
        self._flush_acks()
        statuses = self.ledger.statuses(ids)
        known = self._known_refs()
        return [cid for cid in ids if cid in known
                and statuses.get(cid) not in (order_life.REJECTED, order_life.NEW)]

    def _ib_order(self, o: Order, spec: OrderSpec) -> IbOrder:
        order = IbOrder(action=o.side, totalQuantity=o.quantity, orderType=spec.order_type,
                        tif=spec.tif, orderRef=o.client_order_id,
                        account=self.endpoint.account or "")
        if spec.limit_price is not None:
            order.lmtPrice = spec.limit_price
        if spec.algo:
            order.algoStrategy = spec.algo
            order.algoParams = [TagValue(k, v) for k, v in spec.algo_params]
        return order

    def cancel(self, client_order_ids: Iterable[str]) -> list[str]:
        """Ask IB to cancel working orders and wait (``ack_timeout_seconds``) for the answer;
        the ledger transition is the caller's. Fills that beat the cancel are recorded."""
        ids = list(client_order_ids)
        if not ids:
            return []
        self._ensure_connected()
        working = {t.order.orderRef: t for t in self.ib.openTrades()}
        asked = []
        for cid in ids:
            t = working.get(cid)
            if t is None or t.isDone():
                continue
            self._cancelling.add(cid)
            self.ib.cancelOrder(t.order)
            asked.append(t)
        deadline = time.monotonic() + self.params.ack_timeout_seconds
        while asked and self.ib.isConnected() and time.monotonic() < deadline and not all(
                t.isDone() for t in asked):
            self._pump(0.002)
        return [t.order.orderRef for t in asked
                if t.orderStatus.status in _ENDED]

    def submissions(self) -> list[str]:
        """Every orderRef the account knows (working, done or executed), sorted."""
        self._ensure_connected()
        return sorted(self._known_refs())

    def fills_at_close(self, day: dt.date, working: list[Order], closes: dict[str, float],
                       daily_vol: dict[str, float], adv: dict[str, float],
                       bars: dict | None = None) -> list[Fill]:
        """IB's executions of ``working`` orders up to ``day`` that the ledger lacks (those
        reported while alphaline was away); live ones were recorded as they arrived."""
        self._retrying(self.ib.reqExecutions)
        refs = {o.client_order_id for o in working}
        have = self.ledger.fill_ids()
        out: dict[str, Fill] = {}
        for f in self.ib.fills():
            ex = f.execution
            if ex.orderRef in refs and ex.execId not in have and exchange_day(ex.time) <= day:
                report = f.commissionReport
                out[ex.execId] = self._fill(ex, f.contract.symbol,
                                            report.commission if report.execId == ex.execId
                                            else 0.0)
        return list(out.values())


def _broker_order(trade) -> BrokerOrder:
    o, st = trade.order, trade.orderStatus
    filled = st.filled or (o.filledQuantity if math.isfinite(o.filledQuantity)
                           and o.filledQuantity < 1e300 else 0.0)
    return BrokerOrder(o.orderRef, trade.contract.symbol, o.action, float(o.totalQuantity),
                       float(filled), st.status)
