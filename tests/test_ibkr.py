"""The Interactive Brokers adapter, unchanged, against a fake TWS over a real socket
(tests/fake_tws.py speaks the TWS API wire protocol ib_async uses).

Each injected fault is a test: a disconnect in the middle of a batch, a rejected order,
partial fills over several messages, a gateway restart with orders still working and a new
``nextValidId``, duplicate and out-of-order execution reports, a position changed outside
alphaline, a disconnect longer than allowed. After each, the ledger's positions and cash
equal the fake account's and no order reached the server twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import time

import pandas as pd
import pytest

import alphaline.trading.orders as life
from alphaline.config import load_params
from alphaline.errors import ConfigError
from alphaline.trading import daily
from alphaline.trading.brokers import ReconcilingBroker
from alphaline.trading.brokers.ibkr import (
    ENV_LIVE_CONFIRM,
    BrokerUnavailable,
    Endpoint,
    IbkrBroker,
    LiveTradingRefused,
    check_live,
    order_spec,
)
from alphaline.trading.costs import CostModel
from alphaline.trading.ledger.models import Order
from alphaline.trading.portfolio import rebalance_orders
from alphaline.trading.risk_engine import check_orders
from tests.conftest import REPO, open_ledger
from tests.fake_tws import NEW_YORK, FakeTws

PARAMS = load_params(REPO / "params.yaml")
IBKR = PARAMS.broker.ibkr.model_copy(update={
    "backoff_seconds": 0.05, "connect_timeout_seconds": 2.0, "max_disconnect_s": 3.0,
    "ack_timeout_seconds": 3.0, "requests_per_second": 0})
D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
NAV = 1_000_000.0
PRICES = {"A": 10.0, "B": 20.0, "C": 50.0, "D": 40.0}
ADV = {s: 1e7 for s in PRICES}


def session_close(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(16, 0), NEW_YORK)


@pytest.fixture
def fake():
    server = FakeTws(cash=NAV).start()
    server.clock = session_close(D1)
    yield server
    server.stop()


@pytest.fixture
def ledger(tmp_path):
    led = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.ensure_initial_cash(D1, NAV)
    return led


def make_broker(ledger, fake, params=IBKR, env=None) -> IbkrBroker:
    return IbkrBroker(ledger, CostModel.from_params(PARAMS.broker), params,
                      Endpoint("127.0.0.1", fake.port, 7), env=env or {})


@pytest.fixture
def broker(ledger, fake):
    b = make_broker(ledger, fake).connect()
    yield b
    b.close()


def snap(day=D1, close=None):
    close = dict(PRICES if close is None else close)
    return daily.MarketSnapshot(day, close, {s: 0.02 for s in close}, dict(ADV), dict(close))


def place_day(ledger, broker, weights, day=D1):
    s = snap(day)
    intents = rebalance_orders(day, pd.Series(weights), daily.planning_holdings(ledger, day),
                               NAV, s.close)
    return daily.place(ledger, broker, intents, s, NAV, PARAMS, "1")


def statuses(ledger) -> dict[str, str]:
    return {o.client_order_id: o.status for o in ledger.orders()}


def assert_ledger_is_the_account(ledger, fake):
    """Positions and cash equal, and no orderRef reached the server twice."""
    assert ledger.holdings() == pytest.approx(fake.positions)
    assert set(ledger.holdings()) == set(fake.positions)
    assert ledger.cash() == pytest.approx(fake.cash, abs=1e-6)
    assert fake.sent_counts() and set(fake.sent_counts().values()) == {1}, fake.sent_counts()


def test_the_adapter_is_a_reconciling_broker_and_speaks_to_the_fake(broker, fake):
    assert isinstance(broker, ReconcilingBroker)
    fake.external_trade("A", 0.0, 10.0)
    account = broker.account()
    assert account.cash == pytest.approx(NAV) and account.positions == {}
    rec = broker.reconcile(D1)
    assert rec.ok, rec.breaks


def test_orders_carry_the_client_order_id_and_the_style_picks_the_ib_order(ledger, broker,
                                                                             fake):
    placed = place_day(ledger, broker, {"A": 0.05, "B": -0.05, "C": 0.02})
    assert sorted(placed.sent) == sorted(o.order_ref for o in fake.orders.values())
    by_symbol = {o.symbol: o for o in fake.orders.values()}
    assert {o.order_type for o in by_symbol.values()} == {"MOC"}
    assert statuses(ledger) == dict.fromkeys(placed.sent, life.SUBMITTED)
    # the larger styles become IB's algos, with their parameters
    vwap = order_spec("VWAP", "BUY", 10.0, IBKR)
    assert (vwap.algo, dict(vwap.algo_params)["maxPctVol"]) == ("Vwap", "0.1")
    assert order_spec("TWAP", "SELL", 10.0, IBKR).algo == "Twap"
    assert dict(order_spec("AC", "BUY", 10.0, IBKR).algo_params) == {
        "adaptivePriority": "Urgent"}
    limit = order_spec("MOC", "SELL", 10.0, IBKR.model_copy(update={"small_order_type": "LMT"}))
    assert (limit.order_type, limit.limit_price) == ("LMT", 9.95)
    # an order the ledger wrote with the VWAP style reaches the server as IB's Vwap algo
    intents = life.with_sequences(rebalance_orders(D1, pd.Series({"D": 0.01}), {}, NAV,
                                                   PRICES), ledger.last_sequences(D1))
    verdict = check_orders(intents, holdings={}, working={}, nav=NAV, prev_close=PRICES,
                           adv=ADV, limits=PARAMS.risk, known_ids=set(),
                           trading_state="ACTIVE", placed_today=0)
    ledger.add_orders(verdict.approved, [], broker="ibkr", model_version="1", expires_on=D2)
    cid = intents[0].client_order_id
    with ledger.session() as s, s.begin():
        s.get(Order, cid).execution_style = "VWAP"
    assert daily.send(ledger, broker, verdict.approved) == [cid]
    sent = fake.order_by_ref(cid)
    assert sent.algo == "Vwap" and dict(sent.algo_params)["maxPctVol"] == "0.1"
    assert sent.order_type == "MKT"


def test_partial_fills_over_several_messages(ledger, broker, fake):
    placed = place_day(ledger, broker, {"A": 0.05})
    cid = placed.sent[0]
    fake.clock = session_close(D2)
    qty = fake.order_by_ref(cid).quantity
    fake.fill(cid, 1000, 10.1)
    broker.ib.sleep(0.2)
    assert statuses(ledger)[cid] == life.PARTIALLY_FILLED
    fake.fill(cid, 1500, 10.2)
    fake.fill(cid, qty - 2500, 10.3)
    daily.settle_day(ledger, broker, snap(D2), "XNYS")
    order = ledger.orders()[0]
    assert order.status == life.FILLED and order.filled_quantity == qty
    fills = ledger.fills()
    assert [f.quantity for f in fills] == [1000, 1500, qty - 2500]
    assert all(f.day == D2 and f.commission > 0 for f in fills)  # from the commission reports
    assert_ledger_is_the_account(ledger, fake)


def test_a_rejected_order_is_rejected_with_ibs_code_and_text(ledger, broker, fake):
    fake.reject("B")
    placed = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    assert placed.sent == ["20240102-A-rebalance-1"]
    rejected = next(o for o in ledger.orders() if o.symbol == "B")
    assert rejected.status == life.REJECTED
    assert "error 201" in rejected.reject_reason and "insufficient margin" in \
        rejected.reject_reason
    fake.clock = session_close(D2)
    fake.close_session({"A": 10.5, "B": 19.0})
    daily.settle_day(ledger, broker, snap(D2), "XNYS")
    assert_ledger_is_the_account(ledger, fake)


def test_duplicate_and_out_of_order_execution_reports_count_once(ledger, broker, fake):
    placed = place_day(ledger, broker, {"A": 0.05, "C": 0.02})
    a, c = placed.sent
    fake.clock = session_close(D2)
    qa = fake.order_by_ref(a).quantity
    # three executions reported newest first, each twice, the final status ahead of them
    fake.fill_many(a, [(100, 10.0), (200, 10.1), (qa - 300, 10.2)], reverse=True,
                   duplicate=True, status_first=True)
    # a partial fill whose report comes after the broker's cancel of the rest
    fake.fill(c, 150, 50.0, status_first=True)
    fake.cancel_at_broker(c)
    broker.ib.sleep(0.2)
    broker.ib.reqExecutions()  # and a late replay of everything: nothing counts twice
    daily.settle_day(ledger, broker, snap(D2), "XNYS")
    st = statuses(ledger)
    assert st == {a: life.FILLED, c: life.CANCELLED}
    assert len(ledger.fills()) == 4
    c_order = next(o for o in ledger.orders() if o.client_order_id == c)
    assert c_order.filled_quantity == 150
    assert_ledger_is_the_account(ledger, fake)


def test_a_disconnect_in_the_middle_of_a_batch_sends_each_order_once(ledger, broker, fake):
    fake.drop_after_orders(2)
    placed = place_day(ledger, broker, {"A": 0.05, "B": -0.05, "C": 0.02, "D": -0.02})
    assert len(placed.sent) == 4
    assert set(statuses(ledger).values()) == {life.SUBMITTED}
    assert sorted(fake.sent_counts()) == sorted(placed.sent)
    fake.clock = session_close(D2)
    fake.close_session(PRICES)
    daily.settle_day(ledger, broker, snap(D2), "XNYS")
    assert set(statuses(ledger).values()) == {life.FILLED}
    assert_ledger_is_the_account(ledger, fake)


def test_a_gateway_restart_keeps_working_orders_and_moves_the_order_ids_on(ledger, broker,
                                                                         fake):
    first = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    fake.restart(next_valid_id=5000)
    fake.clock = session_close(D2)
    fake.fill(first.sent[0], 1000, 10.0)  # while alphaline is away
    # the next day: reconnect, reconcile (the fill is in, orders matched by orderRef) ...
    opening = daily.open_day(ledger, broker, D2)
    assert opening.reconciled_fills == 1 and broker.last_reconciliation.ok
    assert statuses(ledger) == {first.sent[0]: life.PARTIALLY_FILLED,
                                first.sent[1]: life.SUBMITTED}
    # ... and new orders take ids from the new nextValidId; the old ones are not resent
    later = place_day(ledger, broker, {"A": 0.05, "B": -0.05, "C": 0.02}, day=D2)
    assert later.sent and all(fake.order_by_ref(cid).order_id >= 5000 for cid in later.sent)
    fake.clock = session_close(D3)
    fake.close_session(PRICES)
    daily.settle_day(ledger, broker, snap(D3), "XNYS")
    assert_ledger_is_the_account(ledger, fake)


def test_a_position_changed_outside_alphaline_halts_trading(ledger, broker, fake):
    place_day(ledger, broker, {"A": 0.05})
    fake.clock = session_close(D2)
    fake.close_session(PRICES)
    fake.external_trade("C", 300, 50.0)  # someone traded in TWS
    opening = daily.open_day(ledger, broker, D2)
    rec = broker.last_reconciliation
    assert not rec.ok and any("C:" in b for b in rec.breaks), rec.breaks
    event = ledger.trading_state_event()
    assert event.state == "HALTED" and event.actor == "rule:reconciliation"
    assert "C: the ledger holds 0 shares, the account 300" in event.reason
    assert "Beyond tolerance" in rec.markdown() and "| C | 0 | 300 |" in rec.markdown()
    assert opening.reconciliation == rec.summary()
    before = len(fake.placed)
    assert place_day(ledger, broker, {"A": 0.06}, day=D2).sent == []
    assert len(fake.placed) == before  # nothing reached the server


def test_a_small_difference_is_booked_with_its_cause(ledger, fake):
    params = IBKR.model_copy(update={"reconcile": IBKR.reconcile.model_copy(
        update={"position_tolerance_shares": 1.0, "cash_tolerance": 50.0})})
    b = make_broker(ledger, fake, params).connect()
    fake.external_trade("A", 1, 10.0)  # a fractional-share style rounding: one share
    fake.cash += 12.5  # an interest credit the ledger did not model
    rec = b.reconcile(D1)
    b.close()
    assert rec.ok and rec.position_adjustments == [("A", 1.0, 10.0)]
    assert rec.cash_adjustment == pytest.approx(2.5)
    assert "reconciliation with ibkr" in ledger.adjustments()[0].cause
    assert ledger.trading_state() == "ACTIVE"
    assert ledger.holdings() == fake.positions and ledger.cash() == pytest.approx(fake.cash)


def test_a_disconnect_longer_than_allowed_trips_the_broker_kill_switch(ledger, fake):
    params = IBKR.model_copy(update={"max_disconnect_s": 0.5})
    b = make_broker(ledger, fake, params).connect()
    b.reconcile(D1)
    fake.stop()  # the gateway is gone and does not come back
    with pytest.raises(BrokerUnavailable, match="away for"):
        place_day(ledger, b, {"A": 0.05})
    event = ledger.trading_state_event()
    assert event.state == "HALTED" and event.actor == "rule:broker_disconnected"
    assert "broker disconnected" in event.reason
    assert fake.placed == []


def test_a_live_account_needs_both_switches_and_its_id_is_never_shown(ledger):
    live = FakeTws(account="U7654321", cash=NAV).start()
    try:
        with pytest.raises(LiveTradingRefused) as refused:
            make_broker(ledger, live).connect()
        assert "broker.ibkr.live: true" in str(refused.value)
        assert ENV_LIVE_CONFIRM in str(refused.value) and "U7654321" not in str(refused.value)
        with pytest.raises(LiveTradingRefused, match=ENV_LIVE_CONFIRM):
            make_broker(ledger, live, IBKR.model_copy(update={"live": True})).connect()
        ok = make_broker(ledger, live, IBKR.model_copy(update={"live": True}),
                         env={ENV_LIVE_CONFIRM: "yes"}).connect()
        assert ok.ib.isConnected() and "U7654321" not in repr(ok.endpoint)
        ok.close()
    finally:
        live.stop()
    paper_port_live = Endpoint("127.0.0.1", 7496, 1)
    with pytest.raises(LiveTradingRefused, match="live port 7496"):
        check_live(False, {}, paper_port_live, ["DU1"])
    check_live(False, {}, Endpoint("127.0.0.1", 7497, 1), ["DU1"])  # paper: nothing needed


def test_no_connection_after_the_bounded_tries_is_a_clear_error(ledger):
    params = IBKR.model_copy(update={"connect_attempts": 3, "backoff_seconds": 0.01})
    b = IbkrBroker(ledger, CostModel.from_params(PARAMS.broker), params,
                   Endpoint("127.0.0.1", 1, 7), env={})
    with pytest.raises(BrokerUnavailable, match="after 3 tries"):
        b.connect()
    assert ledger.trading_state() == "ACTIVE"  # never connected: nothing to trip


# SIGKILL between writing the orders and sending them, then a rerun
def _place_in_child(url: str, port: int) -> None:
    from alphaline.trading.ledger import Ledger

    ledger = Ledger(url)
    b = IbkrBroker(ledger, CostModel.from_params(PARAMS.broker), IBKR,
                   Endpoint("127.0.0.1", port, 7), env={}).connect()
    place_day(ledger, b, {"A": 0.05, "B": -0.05, "C": 0.02, "D": -0.02})
    time.sleep(60)  # the parent kills it before this ends


def test_sigkill_between_writing_and_sending_then_a_rerun_sends_each_order_once(ledger, fake):
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_place_in_child, args=(ledger.url, fake.port))
    seen = []

    def kill(order):
        seen.append(order.order_ref)
        if len(seen) == 2:  # two orders at the server, two written and never sent
            os.kill(child.pid, signal.SIGKILL)
            return True  # killed while sending: the rest of the batch never left it
        return False

    fake.on_place = kill
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    fake.on_place = None
    new = [o.client_order_id for o in ledger.orders(status=life.NEW)]
    unsent = sorted(set(statuses(ledger)) - set(seen))
    assert len(ledger.orders()) == 4 and unsent and set(unsent) <= set(new)
    b = make_broker(ledger, fake).connect()
    opening = daily.open_day(ledger, b, D1)  # the rerun: reconcile, resend what is NEW
    assert sorted(opening.resent) == unsent  # what the account knows is not sent again
    assert set(statuses(ledger).values()) == {life.SUBMITTED}
    assert place_day(ledger, b, {"A": 0.05, "B": -0.05, "C": 0.02, "D": -0.02}).sent == []
    fake.clock = session_close(D2)
    fake.close_session(PRICES)
    daily.settle_day(ledger, b, snap(D2), "XNYS")
    b.close()
    assert sorted(fake.sent_counts()) == sorted(statuses(ledger))
    assert_ledger_is_the_account(ledger, fake)


def test_the_endpoint_comes_from_the_environment_and_bad_values_are_named():
    e = Endpoint.from_env({"ALPHALINE_IBKR_PORT": "4002", "ALPHALINE_IBKR_CLIENT_ID": "9",
                           "ALPHALINE_IBKR_ACCOUNT": "DU5550001"})
    assert (e.host, e.port, e.client_id, e.account) == ("127.0.0.1", 4002, 9, "DU5550001")
    assert "DU5550001" not in repr(e) and "DU5550001" not in e.describe()
    assert Endpoint.from_env({}).port == 7497  # TWS's paper port by default
    with pytest.raises(ConfigError, match="ALPHALINE_IBKR_PORT must be a whole number"):
        Endpoint.from_env({"ALPHALINE_IBKR_PORT": "seven"})


def test_no_log_line_carries_the_account_id(ledger, fake, caplog):
    caplog.set_level(logging.DEBUG)
    b = make_broker(ledger, fake).connect()
    fake.reject("B")
    place_day(ledger, b, {"A": 0.05, "B": -0.05})
    fake.clock = session_close(D2)
    fake.close_session(PRICES)
    daily.settle_day(ledger, b, snap(D2), "XNYS")
    fake.external_trade("C", 5, 50.0)
    b.reconcile(D2)  # halts: its reason names the symbol, not the account
    b.close()
    assert caplog.records and fake.account not in caplog.text
    assert all(fake.account not in e.reason for e in ledger.risk_events())
