"""A fake TWS / IB Gateway: a TCP server on 127.0.0.1 that speaks the TWS API wire protocol
as ib_async's client expects it (server version 176), with an account, orders that work and
fill when the test says so, and faults to inject.

Wire format (both ways): a 4-byte big-endian length, then NUL-terminated text fields. The
client opens with ``API\\0`` and a length-prefixed ``v157..178``; the server answers its
version and connection time, the client sends ``startApi`` and the server ``nextValidId``
and ``managedAccounts``. What follows is request → messages, each laid out as
``ib_async/decoder.py`` reads it.

The state (cash, positions, orders, executions) lives in the object, not in a connection: a
:meth:`FakeTws.restart` closes every socket and listens again on the same port with the
orders still working and a new ``nextValidId``, as a real gateway restart does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import struct
import threading
import zoneinfo
from collections.abc import Callable

SERVER_VERSION = 176
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UNSET_DOUBLE = 1.7976931348623157e308

# message ids, server → client
ORDER_STATUS, ERR_MSG, OPEN_ORDER, ACCT_VALUE, PORTFOLIO_VALUE, ACCT_UPDATE_TIME = 3, 4, 5, 6, 7, 8
NEXT_VALID_ID, EXECUTION_DATA, MANAGED_ACCTS, OPEN_ORDER_END, ACCT_DOWNLOAD_END = 9, 11, 15, 53, 54
EXECUTION_DATA_END, COMMISSION_REPORT, POSITION_DATA, POSITION_END = 55, 59, 61, 62
ACCOUNT_SUMMARY, ACCOUNT_SUMMARY_END, COMPLETED_ORDER, COMPLETED_ORDERS_END = 63, 64, 101, 102
# client → server
PLACE_ORDER, CANCEL_ORDER, REQ_OPEN_ORDERS, REQ_ACCT_DATA, REQ_EXECUTIONS = 3, 4, 5, 6, 7
REQ_IDS, REQ_ALL_OPEN_ORDERS, REQ_POSITIONS, REQ_ACCOUNT_SUMMARY, START_API = 8, 16, 61, 62, 71
REQ_COMPLETED_ORDERS, REQ_CURRENT_TIME, REQ_ACCOUNT_UPDATES_MULTI = 99, 49, 76
ACCOUNT_UPDATE_MULTI, ACCOUNT_UPDATE_MULTI_END = 73, 74


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x)) if abs(x) < 1e15 else repr(float(x))


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def encode(*fields: object) -> bytes:
    body = b"".join(_fmt(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(body)) + body


def ib_time(t: dt.datetime) -> str:
    """``YYYYmmdd HH:MM:SS America/New_York``: an execution's time as TWS writes it."""
    return t.astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S") + " America/New_York"


@dataclasses.dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str  # BUY | SELL
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    order_ref: str
    algo: str
    algo_params: list[tuple[str, str]]
    status: str = "Submitted"
    filled: float = 0.0
    avg_price: float = 0.0
    last_price: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "Inactive", "ApiCancelled")


@dataclasses.dataclass
class FakeExecution:
    exec_id: str
    order: FakeOrder
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: dt.datetime
    commission: float


class _Conn:
    """One client socket: a reader thread and a lock around writes."""

    def __init__(self, server: FakeTws, sock: socket.socket):
        self.server, self.sock = server, sock
        self.client_id: int | None = None
        self.lock = threading.Lock()
        self.alive = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def send(self, *fields: object) -> None:
        if not self.alive:
            return
        try:
            with self.lock:
                self.sock.sendall(encode(*fields))
        except OSError:
            self.close()

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("client closed")
            buf += chunk
        return buf

    def _read_msg(self) -> list[str]:
        size = struct.unpack(">I", self._recv_exact(4))[0]
        return self._recv_exact(size).decode().split("\0")[:-1]

    def _run(self) -> None:
        try:
            if self._recv_exact(4) != b"API\0":
                raise ConnectionError("not a TWS API client")
            size = struct.unpack(">I", self._recv_exact(4))[0]
            self._recv_exact(size)  # "v157..178": we answer with our own version
            now = dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
            self.send(SERVER_VERSION, now)
            while self.alive:
                self.server._handle(self, self._read_msg())
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            self.close()


class FakeTws:
    """The fake gateway. Tests drive the market with :meth:`fill` / :meth:`close_session`
    and inject faults with :meth:`reject`, :meth:`drop_after_orders`, :meth:`restart`,
    :meth:`external_trade` and the duplicate / out-of-order options of :meth:`fill`."""

    def __init__(self, account: str = "DU0000001", cash: float = 1_000_000.0, *,
                 commission_per_share: float = 0.005, commission_min: float = 1.0,
                 next_valid_id: int = 1):
        self.account = account
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.avg_cost: dict[str, float] = {}
        self.commission_per_share = commission_per_share
        self.commission_min = commission_min
        self.next_valid_id = next_valid_id
        self.orders: dict[int, FakeOrder] = {}  # by perm id
        self.executions: list[FakeExecution] = []
        self.placed: list[tuple[str, int]] = []  # (orderRef, orderId) of every placeOrder
        self.cancels: list[str] = []  # orderRefs cancelled by a client
        self.clock = dt.datetime.now(dt.UTC)  # the time executions carry
        self.rejects: dict[str, tuple[int, str]] = {}  # symbol → (code, text)
        # called after an order is taken; True: the client is gone from here on
        self.on_place: Callable[[FakeOrder], bool | None] | None = None
        self._drop_after: int | None = None
        self._lock = threading.RLock()
        self._conns: list[_Conn] = []
        self._listener: socket.socket | None = None
        self._perm = 1000
        self._exec_seq = 0
        self.port = 0

    # life
    def start(self) -> FakeTws:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(8)
        self.port = lst.getsockname()[1]
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()
        return self

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                sock, _ = lst.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, sock)
            with self._lock:
                self._conns.append(conn)
            conn.thread.start()

    def stop(self) -> None:
        """Stop listening and close every client (the gateway goes down)."""
        if self._listener is not None:
            # wakes the thread blocked in accept(), which would hold the port
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.drop_clients()

    def drop_clients(self) -> None:
        """Close every client socket; keep listening (a network cut)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    def restart(self, next_valid_id: int | None = None) -> None:
        """Go down and come back on the same port: orders keep working, ids move on."""
        self.stop()
        with self._lock:
            used = max([o.order_id for o in self.orders.values()] + [self.next_valid_id - 1])
            self.next_valid_id = next_valid_id or used + 100
        self.start()

    def drop_after_orders(self, n: int) -> None:
        """Cut the connection right after taking the next ``n``-th order (a disconnect in the
        middle of sending a batch)."""
        self._drop_after = n

    def reject(self, symbol: str, code: int = 201,
               text: str = "Order rejected - reason:The account has insufficient margin"
               ) -> None:
        """Refuse every order for ``symbol`` with IB's error ``code`` and text."""
        self.rejects[symbol] = (code, text)

    # what tests read
    def sent_counts(self) -> dict[str, int]:
        """placeOrder messages received per orderRef (1 each, or an order was sent twice)."""
        out: dict[str, int] = {}
        for ref, _ in self.placed:
            out[ref] = out.get(ref, 0) + 1
        return out

    def working(self) -> list[FakeOrder]:
        with self._lock:
            return [o for o in self.orders.values() if not o.done]

    def order_by_ref(self, ref: str) -> FakeOrder:
        with self._lock:
            return next(o for o in self.orders.values() if o.order_ref == ref)

    def _broadcast(self, client_id: int | None, *fields: object) -> None:
        """To the connection of ``client_id`` (None: every connection)."""
        for c in list(self._conns):
            if client_id is None or c.client_id == client_id:
                c.send(*fields)

    # the market
    def fill(self, ref: str, shares: float, price: float, *, duplicate: bool = False,
             status_first: bool = False) -> FakeExecution:
        """Execute ``shares`` of the order ``ref`` at ``price`` and report it: execDetails,
        commissionReport, orderStatus. ``duplicate``: the execution report is sent twice;
        ``status_first``: the order status (with the new filled quantity) comes first."""
        return self.fill_many(ref, [(shares, price)], duplicate=duplicate,
                              status_first=status_first)[0]

    def fill_many(self, ref: str, parts: list[tuple[float, float]], *, reverse: bool = False,
                  duplicate: bool = False, status_first: bool = False
                  ) -> list[FakeExecution]:
        """Several executions of one order; ``reverse``: their reports arrive newest first
        (the order status, with the final filled quantity, after all of them)."""
        with self._lock:
            o = self.order_by_ref(ref)
            done = [self._execute(o, shares, price) for shares, price in parts]
            if status_first:
                self._send_status(None, o)
            for ex in (done[::-1] if reverse else done):
                self._send_execution(None, -1, ex)
                if duplicate:
                    self._send_execution(None, -1, ex)
                self._send_commission(None, ex)
            if not status_first:
                self._send_status(None, o)
            self._send_position(None, o.symbol)
            return done

    def _execute(self, o: FakeOrder, shares: float, price: float) -> FakeExecution:
        shares = min(shares, o.remaining)
        signed = shares if o.action == "BUY" else -shares
        commission = max(self.commission_min, self.commission_per_share * shares)
        o.avg_price = (o.avg_price * o.filled + price * shares) / (o.filled + shares)
        o.filled += shares
        o.last_price = price
        if o.remaining <= 1e-9:
            o.status = "Filled"
        self._exec_seq += 1
        ex = FakeExecution(f"0000e{self._exec_seq:06d}.01.01", o, shares, price, o.filled,
                           o.avg_price, self.clock, commission)
        self.executions.append(ex)
        old = self.positions.get(o.symbol, 0.0)
        new = old + signed
        if abs(new) < 1e-9:
            self.positions.pop(o.symbol, None)
            self.avg_cost.pop(o.symbol, None)
        else:
            if old == 0 or (old > 0) != (new > 0):
                self.avg_cost[o.symbol] = price
            elif abs(new) > abs(old):
                self.avg_cost[o.symbol] = (self.avg_cost[o.symbol] * abs(old)
                                           + price * shares) / abs(new)
            self.positions[o.symbol] = new
        self.cash -= signed * price + commission
        return ex

    def cancel_at_broker(self, ref: str, text: str = "Order Canceled - reason:") -> None:
        """The broker ends an order by itself (an exchange cancel, a day order's end)."""
        with self._lock:
            self._cancel(self.order_by_ref(ref), 202, text)

    def close_session(self, closes: dict[str, float]) -> list[FakeExecution]:
        """The close: every working order fills what remains at its symbol's close; DAY orders
        without a price expire (cancelled), as IB does at the end of a session."""
        done = []
        for o in self.working():
            if o.symbol in closes:
                done.append(self.fill(o.order_ref, o.remaining, closes[o.symbol]))
            elif o.tif == "DAY":
                self._cancel(o, 202, "Order Canceled - reason:day order expired")
        return done

    def external_trade(self, symbol: str, shares: float, price: float) -> None:
        """A position changed outside alphaline (a manual trade in TWS, an assignment)."""
        with self._lock:
            self.positions[symbol] = self.positions.get(symbol, 0.0) + shares
            self.avg_cost.setdefault(symbol, price)
            self.cash -= shares * price
            self._send_position(None, symbol)

    # requests
    def _handle(self, conn: _Conn, f: list[str]) -> None:
        msg = int(f[0])
        with self._lock:
            if msg == START_API:
                conn.client_id = int(f[2])
                conn.send(NEXT_VALID_ID, 1, self._next_id())
                conn.send(MANAGED_ACCTS, 1, self.account)
            elif msg == PLACE_ORDER:
                self._place(conn, f)
            elif msg == CANCEL_ORDER:
                oid = int(f[2])
                o = next((o for o in self.orders.values()
                          if o.order_id == oid and o.client_id == conn.client_id), None)
                if o is None or o.done:
                    conn.send(ERR_MSG, 2, oid, 161,
                              "Cancel attempted when order is not in a cancellable state", "")
                else:
                    self.cancels.append(o.order_ref)
                    self._cancel(o, 202, "Order Canceled - reason:")
            elif msg in (REQ_OPEN_ORDERS, REQ_ALL_OPEN_ORDERS):
                for o in self.working():
                    if msg == REQ_ALL_OPEN_ORDERS or o.client_id == conn.client_id:
                        self._send_open_order(conn, o)
                        self._send_status(None, o, conn)
                conn.send(OPEN_ORDER_END, 1)
            elif msg == REQ_COMPLETED_ORDERS:
                for o in self.orders.values():
                    if o.done:
                        self._send_completed_order(conn, o)
                conn.send(COMPLETED_ORDERS_END)
            elif msg == REQ_EXECUTIONS:
                req_id, client_filter = int(f[2]), int(f[3] or 0)
                for ex in self.executions:
                    if client_filter in (0, ex.order.client_id):
                        self._send_execution(None, req_id, ex, conn)
                        self._send_commission(None, ex, conn)
                conn.send(EXECUTION_DATA_END, 1, req_id)
            elif msg == REQ_POSITIONS:
                for sym in sorted(self.positions):
                    self._send_position(conn, sym)
                conn.send(POSITION_END, 1)
            elif msg == REQ_ACCT_DATA:
                if f[2] in ("1", "True", "true"):
                    self._send_account(conn)
            elif msg == REQ_ACCOUNT_SUMMARY:
                req_id = int(f[2])
                for tag, value in self._account_values():
                    conn.send(ACCOUNT_SUMMARY, 1, req_id, self.account, tag, value, "USD")
                conn.send(ACCOUNT_SUMMARY_END, 1, req_id)
            elif msg == REQ_ACCOUNT_UPDATES_MULTI:
                req_id = int(f[2])
                for tag, value in self._account_values():
                    conn.send(ACCOUNT_UPDATE_MULTI, 1, req_id, self.account, "", tag, value,
                              "USD")
                conn.send(ACCOUNT_UPDATE_MULTI_END, 1, req_id)
            elif msg == REQ_IDS:
                conn.send(NEXT_VALID_ID, 1, self._next_id())
            elif msg == REQ_CURRENT_TIME:
                conn.send(49, 1, int(self.clock.timestamp()))
            # anything else (market data, ...) is not part of this account's API: ignored

    def _place(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[1])
        symbol = f[3]
        action, qty, otype = f[16], float(f[17]), f[18]
        lmt = float(f[19]) if f[19] else None
        tif, ref = f[21], f[26]
        algo, params = _algo_of(f)
        existing = [o for o in self.orders.values()
                    if o.order_id == order_id and o.client_id == conn.client_id]
        self.placed.append((ref, order_id))
        if existing and not existing[0].done:
            return  # a modification: this account never modifies, nothing to do
        if existing:
            conn.send(ERR_MSG, 2, order_id, 103, "Duplicate order id", "")
            return
        self._perm += 1
        o = FakeOrder(order_id, conn.client_id or 0, self._perm, symbol, action, qty, otype,
                      lmt, tif, ref, algo, params)
        self.orders[o.perm_id] = o
        if symbol in self.rejects:
            code, text = self.rejects[symbol]
            o.status = "Inactive"
            conn.send(ERR_MSG, 2, order_id, code, text, "")
        else:
            o.status = "PreSubmitted" if otype in ("MOC", "LOC") else "Submitted"
            self._send_open_order(conn, o)
            self._send_status(None, o, conn)
        if self.on_place is not None and self.on_place(o):
            conn.close()  # the hook ended the client here: what it sent after is never read
            return
        if self._drop_after is not None:
            self._drop_after -= 1
            if self._drop_after <= 0:
                self._drop_after = None
                threading.Thread(target=self.drop_clients, daemon=True).start()

    def _next_id(self) -> int:
        """Above every order id used so far, as TWS keeps it (a restart may jump ahead)."""
        return max([self.next_valid_id] + [o.order_id + 1 for o in self.orders.values()])

    def _cancel(self, o: FakeOrder, code: int, text: str) -> None:
        o.status = "Cancelled"
        self._broadcast(o.client_id, ERR_MSG, 2, o.order_id, code, text, "")
        self._send_status(o.client_id, o)

    # messages
    def _account_values(self) -> list[tuple[str, str]]:
        value = sum(q * self.avg_cost.get(s, 0.0) for s, q in self.positions.items())
        return [("AccountType", "INDIVIDUAL"), ("TotalCashValue", _num(round(self.cash, 6))),
                ("NetLiquidation", _num(round(self.cash + value, 6))),
                ("GrossPositionValue", _num(round(abs(value), 6)))]

    def _send_account(self, conn: _Conn) -> None:
        for tag, value in self._account_values():
            conn.send(ACCT_VALUE, 2, tag, value, "USD", self.account)
        conn.send(ACCT_VALUE, 2, "CashBalance", _num(round(self.cash, 6)), "USD", self.account)
        for sym in sorted(self.positions):
            q, px = self.positions[sym], self.avg_cost.get(sym, 0.0)
            conn.send(PORTFOLIO_VALUE, 8, *self._contract_portfolio(sym), q, px, q * px, px,
                      0.0, 0.0, self.account)
        conn.send(ACCT_UPDATE_TIME, 1, self.clock.astimezone(NEW_YORK).strftime("%H:%M"))
        conn.send(ACCT_DOWNLOAD_END, 1, self.account)

    @staticmethod
    def _contract_fields(symbol: str) -> tuple:
        # conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
        # currency, localSymbol, tradingClass
        return (_con_id(symbol), symbol, "STK", "", 0.0, "", "", "SMART", "USD", symbol,
                symbol)

    @staticmethod
    def _contract_portfolio(symbol: str) -> tuple:
        # conId, symbol, secType, lastTradeDate, strike, right, multiplier, primaryExchange,
        # currency, localSymbol, tradingClass
        return (_con_id(symbol), symbol, "STK", "", 0.0, "", "", "NYSE", "USD", symbol,
                symbol)

    def _send_position(self, conn: _Conn | None, symbol: str) -> None:
        fields = (POSITION_DATA, 3, self.account, *self._contract_fields(symbol),
                  self.positions.get(symbol, 0.0), self.avg_cost.get(symbol, 0.0))
        if conn is not None:
            conn.send(*fields)
        # live position updates go only to connections that asked (all of ours do)
        else:
            self._broadcast(None, *fields)

    def _send_status(self, client_id: int | None, o: FakeOrder, conn: _Conn | None = None
                     ) -> None:
        fields = (ORDER_STATUS, o.order_id, o.status, o.filled, o.remaining, o.avg_price,
                  o.perm_id, 0, o.last_price, o.client_id, "", 0.0)
        if conn is not None:
            conn.send(*fields)
        else:
            self._broadcast(o.client_id if client_id is None else client_id, *fields)

    def _send_execution(self, client_id: int | None, req_id: int, ex: FakeExecution,
                        conn: _Conn | None = None) -> None:
        o = ex.order
        fields = (EXECUTION_DATA, req_id, o.order_id, *self._contract_fields(o.symbol),
                  ex.exec_id, ib_time(ex.time), self.account, "NYSE",
                  "BOT" if o.action == "BUY" else "SLD", ex.shares, ex.price, o.perm_id,
                  o.client_id, 0, ex.cum_qty, ex.avg_price, o.order_ref, "", "", "", 0)
        if conn is not None:
            conn.send(*fields)
        else:
            self._broadcast(o.client_id if client_id is None else client_id, *fields)

    def _send_commission(self, client_id: int | None, ex: FakeExecution,
                         conn: _Conn | None = None) -> None:
        fields = (COMMISSION_REPORT, 1, ex.exec_id, ex.commission, "USD", UNSET_DOUBLE,
                  UNSET_DOUBLE, "")
        if conn is not None:
            conn.send(*fields)
        else:
            self._broadcast(ex.order.client_id if client_id is None else client_id, *fields)

    def _order_head(self, o: FakeOrder) -> tuple:
        return (o.action, o.quantity, o.order_type,
                "" if o.limit_price is None else o.limit_price, "", o.tif, "", self.account,
                "", 0, o.order_ref)

    def _algo_tail(self, o: FakeOrder) -> tuple:
        if not o.algo:
            return ("",)
        return (o.algo, len(o.algo_params), *[x for kv in o.algo_params for x in kv])

    def _send_open_order(self, conn: _Conn, o: FakeOrder) -> None:
        fields: list[object] = [OPEN_ORDER, o.order_id, *self._contract_fields(o.symbol),
                                *self._order_head(o), o.client_id, o.perm_id, 0, 0, 0.0, "",
                                "", "", "", "", ""]  # outsideRth .. faPct, faProfile
        fields += ["", "", "", "", "", 0, "", 0, "", "", "", "", "", "", 0, 0, 0, 0, "", 0,
                   0, 0, "", 0, 0, "", 0, "", ""]  # modelCode .. deltaNeutralAuxPrice
        fields += [0, 0, "", "", "", "", "", 0, 0, 0]  # continuousUpdate .. smartCombo count
        fields += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        fields += [""]  # hedgeType
        fields += [0, "", "", 0, 0]  # optOutSmartRouting, clearing*, notHeld, dncPresent
        fields += list(self._algo_tail(o))
        fields += [0, 0, o.status] + [""] * 14 + [0, 0]  # solicited .. randomizePrice
        fields += [0]  # conditions
        fields += ["", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]
        fields += ["", "", 0]  # duration, postToAts, autoCancelParent
        fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf
        conn.send(*fields)

    def _send_completed_order(self, conn: _Conn, o: FakeOrder) -> None:
        fields: list[object] = [COMPLETED_ORDER, *self._contract_fields(o.symbol),
                                *self._order_head(o), o.perm_id, 0, 0, 0.0, "", "", "", "",
                                ""]  # outsideRth .. faPercentage, faProfile
        fields += ["", "", "", "", "", 0, "", 0, "", "", "", "", "", 0, 0, 0, "", 0, 0, "",
                   0, "", ""]  # modelCode .. deltaNeutralAuxPrice
        fields += [0, 0, "", "", "", 0, 0, 0]  # continuousUpdate .. smartCombo count
        fields += ["", "", "", ""]  # scale sizes and increment, hedgeType
        fields += ["", "", 0, 0]  # clearingAccount, clearingIntent, notHeld, dncPresent
        fields += list(self._algo_tail(o))
        fields += [0, o.status, 0, 0]  # solicited, status, randomize size / price
        fields += [0]  # conditions
        fields += ["", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0,
                   ib_time(self.clock), o.status]  # trailStopPrice .. completedStatus
        fields += ["", "", "", "", ""]
        conn.send(*fields)


_CON_IDS: dict[str, int] = {}


def _con_id(symbol: str) -> int:
    """A contract id per symbol, distinct and stable for the process (a real gateway has
    one per instrument)."""
    return _CON_IDS.setdefault(symbol, 100001 + len(_CON_IDS))


def _algo_of(f: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """The algo strategy and its parameters in a placeOrder message: walk the fields after
    the order's fixed head exactly as ``ib_async.client.Client.placeOrder`` lays them out
    (server version 176, no combo legs)."""
    i = 35  # the "" after hidden (index 34)
    i += 7  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPct
    i += 1  # faProfile (server version < 177)
    dn_type = f[i + 22]
    i += 24  # modelCode .. deltaNeutralAuxPrice
    if dn_type:
        i += 8
    increment = f[i + 6]
    i += 7  # continuousUpdate .. scalePriceIncrement
    if increment and 0 < float(increment) < UNSET_DOUBLE:
        i += 7
    hedge = f[i + 3]
    i += 4  # scaleTable, activeStartTime, activeStopTime, hedgeType
    if hedge:
        i += 1
    i += 4  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    i += 4 if f[i] not in ("", "0", "False") else 1  # delta-neutral contract
    algo = f[i]
    params: list[tuple[str, str]] = []
    if algo:
        n = int(f[i + 1])
        params = [(f[i + 2 + 2 * k], f[i + 3 + 2 * k]) for k in range(n)]
    return algo, params
