"""Orders as a state machine on a real ledger (SQLite and PostgreSQL): legal and illegal
moves, events, sequenced ids, crash recovery, expiry, approved-only fills, halts."""

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest

import alphaline.trading.orders as life
from alphaline.config import load_params
from alphaline.errors import IllegalTransition
from alphaline.trading import daily
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.portfolio import OrderIntent, rebalance_orders
from alphaline.trading.risk_engine import check_orders
from tests.conftest import BACKENDS, REPO, database_url, open_ledger

PARAMS = load_params(REPO / "params.yaml")
D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)  # XNYS sessions
NAV = 1_000_000.0
PRICES = {"A": 10.0, "B": 20.0, "C": 50.0}
ADV = {s: 1e7 for s in PRICES}

# The spec (issue 9), written out here rather than read from the code under test.
LEGAL = {
    life.NEW: {life.SUBMITTED, life.REJECTED, life.CANCELLED},
    life.SUBMITTED: {life.PARTIALLY_FILLED, life.FILLED, life.CANCELLED, life.EXPIRED,
                     life.REJECTED},
    life.PARTIALLY_FILLED: {life.PARTIALLY_FILLED, life.FILLED, life.CANCELLED, life.EXPIRED},
    life.FILLED: set(), life.CANCELLED: set(), life.REJECTED: set(), life.EXPIRED: set(),
}
ALL = list(LEGAL)


def snap(day=D1, close=None):
    close = dict(PRICES if close is None else close)
    return daily.MarketSnapshot(day, close, {s: 0.02 for s in close}, dict(ADV),
                                dict(close))


def intent(symbol="A", side="BUY", qty=100.0, day=D1, seq=1):
    return OrderIntent(life.client_order_id(day, symbol, "rebalance", seq), day, symbol, side,
                       qty, PRICES[symbol], "rebalance")


def verdict(orders, state="ACTIVE", working=None):
    return check_orders(orders, holdings={}, working=working or {}, nav=NAV,
                        prev_close=PRICES, adv=ADV, limits=PARAMS.risk, known_ids=set(),
                        trading_state=state, placed_today=0)


@pytest.fixture(params=BACKENDS)
def ledger(request):
    led = open_ledger(database_url(request, request.param, "ledger"))
    led.ensure_initial_cash(D1, NAV)
    return led


@pytest.fixture
def broker(tmp_path):
    return PaperBroker(CostModel.from_params(PARAMS.broker), journal=tmp_path / "paper.jsonl")


def new_order(ledger, o=None):
    o = o or intent()
    v = verdict([o])
    assert [a.order for a in v.approved] == [o], v.rejected
    ledger.add_orders(v.approved, [], broker="paper", model_version="1", expires_on=D2)
    return o.client_order_id, v


def fill(cid, qty, symbol="A", day=D2, n=1, price=10.0):
    return Fill(fill_id=f"{cid}-T{n}", client_order_id=cid, day=day, symbol=symbol,
                quantity=qty, price=price, commission=0.0, slippage=0.0)


def order_in(ledger, broker, state, symbol="A"):
    """An order of 100 shares brought to ``state`` along legal moves."""
    o = intent(symbol, qty=100.0, seq=len(ledger.orders()) + 1)
    if state == life.REJECTED:
        ledger.add_orders([], [(o, "test refusal")], broker="paper", model_version="1",
                          expires_on=D2)
        return o.client_order_id
    cid, v = new_order(ledger, o)
    if state == life.NEW:
        return cid
    daily.send(ledger, broker, v.approved)
    if state == life.PARTIALLY_FILLED:
        ledger.add_fills([fill(cid, 40.0)])
    elif state == life.FILLED:
        ledger.add_fills([fill(cid, 100.0)])
    elif state in (life.CANCELLED, life.EXPIRED):
        ledger.transition(cid, state, "test")
    return cid


def snapshot_of(ledger, cid):
    order = next(o for o in ledger.orders() if o.client_order_id == cid)
    return (order.status, order.filled_quantity, order.reject_reason,
            len(ledger.order_events(cid)), len(ledger.table(Fill)))


@pytest.mark.parametrize("start", ALL)
def test_every_transition_is_legal_or_raises_and_changes_nothing(ledger, broker, start):
    for target in ALL:
        cid = order_in(ledger, broker, start)
        assert snapshot_of(ledger, cid)[0] == start
        before = snapshot_of(ledger, cid)
        legal = target in LEGAL[start]
        try:
            if target in (life.PARTIALLY_FILLED, life.FILLED):
                remaining = 100.0 - before[1]
                shares = remaining if target == life.FILLED else 10.0
                ledger.add_fills([fill(cid, shares, n=9)])
            else:
                ledger.transition(cid, target, f"to {target}")
        except IllegalTransition:
            assert not legal, f"{start} → {target} should be legal"
            assert snapshot_of(ledger, cid) == before  # nothing changed, no event
            continue
        assert legal, f"{start} → {target} should raise"
        after = snapshot_of(ledger, cid)
        assert after[0] == target and after[3] == before[3] + 1
        event = ledger.order_events(cid)[-1]
        assert (event.from_status, event.to_status) == (start, target) and event.at


def test_fill_states_are_not_set_by_hand(ledger, broker):
    cid = order_in(ledger, broker, life.SUBMITTED)
    with pytest.raises(IllegalTransition, match="recording a fill"):
        ledger.transition(cid, life.FILLED, "by hand")
    assert snapshot_of(ledger, cid)[0] == life.SUBMITTED


def test_insertion_writes_the_first_event_and_the_life_is_the_event_list(ledger, broker):
    cid, v = new_order(ledger)
    ledger.add_orders([], [(intent("B", seq=1), "position weight 9% > limit 8%")],
                      broker="paper", model_version="1", expires_on=D2)
    daily.send(ledger, broker, v.approved)
    ledger.add_fills([fill(cid, 100.0)])
    assert [(e.from_status, e.to_status) for e in ledger.order_events(cid)] == [
        (None, "NEW"), ("NEW", "SUBMITTED"), ("SUBMITTED", "FILLED")]
    assert ledger.order_events(cid)[0].cause == "approved by the risk engine"
    (rejected,) = ledger.order_events("20240102-B-rebalance-1")
    assert (rejected.from_status, rejected.to_status, rejected.cause) == (
        None, "REJECTED", "position weight 9% > limit 8%")
    order = next(o for o in ledger.orders() if o.symbol == "B")
    assert order.reject_reason == rejected.cause and not order.approved
    assert order.sequence == 1 and order.expires_on == D2


def test_only_an_approval_enters_the_ledger_as_new(ledger):
    with pytest.raises(TypeError):
        ledger.add_orders([intent()], [], broker="paper", model_version="1", expires_on=D2)
    assert ledger.orders() == []


def test_fills_only_for_approved_orders_and_never_beyond_what_remains(ledger, broker):
    cid = order_in(ledger, broker, life.SUBMITTED)
    # an order the risk engine never approved, smuggled in as SUBMITTED
    with ledger.session() as s, s.begin():
        s.add(Order(client_order_id="20240102-C-rebalance-1", trading_day=D1, symbol="C",
                    intent="rebalance", side="BUY", quantity=10.0, reference_price=50.0,
                    status="SUBMITTED", broker="paper"))
    rejected = order_in(ledger, broker, life.REJECTED, symbol="B")
    for bad, match in [
        ([fill("20240102-C-rebalance-1", 10.0, "C")], "not approved by the risk engine"),
        ([fill(rejected, 100.0, "B")], "not approved by the risk engine"),
        ([fill(cid, 100.5)], "exceeds the 100 that remain"),
        ([fill(cid, -50.0)], "does not match"),
        ([fill(cid, 60.0), fill(cid, 60.0, n=2)], "exceeds the 40 that remain"),  # batch
    ]:
        with pytest.raises(IllegalTransition, match=match):
            ledger.add_fills(bad)
        assert ledger.table(Fill).empty  # nothing of the batch applied
        assert snapshot_of(ledger, cid)[:2] == (life.SUBMITTED, 0.0)
    # partial fills, then the rest
    assert ledger.add_fills([fill(cid, 40.0)]) == 1
    assert snapshot_of(ledger, cid)[:2] == (life.PARTIALLY_FILLED, 40.0)
    assert ledger.working_quantities() == {"A": 60.0, "C": 10.0}  # exposure counts every one
    with pytest.raises(IllegalTransition, match="exceeds the 60 that remain"):
        ledger.add_fills([fill(cid, 61.0, n=2)])
    assert ledger.add_fills([fill(cid, 35.0, n=2), fill(cid, 25.0, n=3)]) == 2
    assert ledger.add_fills([fill(cid, 25.0, n=3)]) == 0  # a recorded fill is not applied twice
    assert snapshot_of(ledger, cid)[:2] == (life.FILLED, 100.0)
    assert ledger.holdings() == {"A": 100.0} and ledger.working_quantities() == {"C": 10.0}


def place_day(ledger, broker, weights, day=D1, close=None):
    s = snap(day, close)
    intents = rebalance_orders(day, pd.Series(weights), daily.planning_holdings(ledger, day),
                               NAV, s.close)
    return daily.place(ledger, broker, intents, s, NAV, PARAMS, "1")


def test_ids_carry_a_sequence_and_a_refusal_never_blocks_a_later_order(ledger, broker):
    ledger.set_trading_state("HALTED", "operator test")
    first = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    assert first.sent == [] and [cid for cid, _ in first.rejected] == [
        "20240102-A-rebalance-1", "20240102-B-rebalance-1"]
    again = place_day(ledger, broker, {"A": 0.05, "B": -0.05})  # same answer: nothing added
    assert again.rejected == [] and again.repeated == 2 and len(ledger.orders()) == 2
    ledger.set_trading_state("ACTIVE", "resumed")
    resumed = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    assert resumed.sent == ["20240102-A-rebalance-2", "20240102-B-rebalance-2"]
    assert broker.submissions() == resumed.sent
    assert {o.client_order_id: o.status for o in ledger.orders()} == {
        "20240102-A-rebalance-1": "REJECTED", "20240102-B-rebalance-1": "REJECTED",
        "20240102-A-rebalance-2": "SUBMITTED", "20240102-B-rebalance-2": "SUBMITTED"}
    assert [o.sequence for o in ledger.orders(status="SUBMITTED")] == [2, 2]
    # a rerun plans against positions + working orders: covered, so nothing is sent
    rerun = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    assert rerun.sent == [] and rerun.rejected == [] and rerun.already == 2
    assert len(ledger.orders()) == 4
    # a changed plan sends only the difference, under the next sequence
    bigger = place_day(ledger, broker, {"A": 0.06, "B": -0.05})
    assert bigger.sent == ["20240102-A-rebalance-3"]
    assert ledger.working_quantities() == {"A": 6_000.0, "B": -2_500.0}


def test_working_orders_count_in_exposure(ledger, broker):
    place_day(ledger, broker, {"A": 0.07, "B": -0.07})  # 7 % each, working
    # 2 % more of A on top of the working 7 % would be 9 % > the 8 % limit
    s = snap()
    extra = [dataclasses.replace(intent("A", qty=2_000.0), client_order_id="x")]
    out = daily.place(ledger, broker, extra, s, NAV, PARAMS, "1")
    assert out.sent == [] and "position weight" in out.rejected[0][1], out.rejected


def crash_after_new(ledger, broker, weights, *, sent_to_broker):
    """place() up to the point a crash would stop it: rows NEW, and maybe at the broker."""
    s = snap()
    intents = life.with_sequences(
        rebalance_orders(D1, pd.Series(weights), {}, NAV, s.close), ledger.last_sequences(D1))
    v = verdict(intents)
    ledger.add_orders(v.approved, [], broker="paper", model_version="1", expires_on=D2)
    if sent_to_broker:
        broker.submit(v.approved)
    return [a.order.client_order_id for a in v.approved]


@pytest.mark.parametrize("sent_to_broker", [False, True])
def test_a_new_order_left_by_a_crash_is_resent_under_the_same_id(ledger, broker, tmp_path,
                                                               sent_to_broker):
    ids = crash_after_new(ledger, broker, {"A": 0.05, "B": -0.05},
                          sent_to_broker=sent_to_broker)
    # a new process: the broker knows only what its journal says
    restarted = PaperBroker(CostModel.from_params(PARAMS.broker), journal=broker.journal)
    opened = daily.open_day(ledger, restarted, D1)
    assert opened.resent == ids and opened.cancelled == []
    assert {o.status for o in ledger.orders()} == {"SUBMITTED"}
    assert restarted.submission_count() == dict.fromkeys(ids, 1)  # never a second order
    assert "resent" in ledger.order_events(ids[0])[-1].cause
    assert daily.open_day(ledger, restarted, D1).resent == []  # nothing left to resolve
    # the day's plan is then covered: nothing more is sent
    assert place_day(ledger, restarted, {"A": 0.05, "B": -0.05}).sent == []
    # and the resent orders fill at the next close like any other
    assert daily.fill_working_orders(ledger, restarted, snap(D2)) == 2


def test_a_new_order_of_an_earlier_day_is_cancelled(ledger, broker):
    ids = crash_after_new(ledger, broker, {"A": 0.05}, sent_to_broker=True)
    opened = daily.open_day(ledger, broker, D2)
    assert opened.resent == [] and [cid for cid, _ in opened.cancelled] == ids
    order = ledger.orders()[0]
    assert order.status == "CANCELLED"
    assert ledger.order_events(ids[0])[-1].cause == (
        "left NEW by a crash on 2024-01-02, not sent on its day")
    assert daily.fill_working_orders(ledger, broker, snap(D2)) == 0
    lines = [json.loads(x) for x in broker.journal.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["submit", "cancel"]


def test_day_orders_expire_after_their_session(ledger, broker):
    placed = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    assert {o.expires_on for o in ledger.orders()} == {D2}
    # D2 has no bar for B: A fills, B expires after the fill step
    assert daily.fill_working_orders(ledger, broker, snap(D2, {"A": 10.0})) == 1
    assert daily.expire_day_orders(ledger, broker, D2) == [placed.sent[1]]
    statuses = {o.symbol: o.status for o in ledger.orders()}
    assert statuses == {"A": "FILLED", "B": "EXPIRED"}
    assert "end of its session 2024-01-03" in ledger.order_events(placed.sent[1])[-1].cause
    # an order whose session passed without a run never fills later
    late = place_day(ledger, broker, {"A": 0.05, "C": -0.05}, day=D2)
    assert daily.fill_working_orders(ledger, broker, snap(dt.date(2024, 1, 5))) == 0
    assert daily.expire_day_orders(ledger, broker, dt.date(2024, 1, 5)) == late.sent


def test_halted_cancels_working_orders_and_sends_nothing(ledger, broker):
    placed = place_day(ledger, broker, {"A": 0.05, "B": -0.05})
    ledger.set_trading_state("HALTED", "daily loss 6% > 5%")
    opened = daily.open_day(ledger, broker, D2)
    assert [cid for cid, _ in opened.cancelled] == placed.sent
    assert {why for _, why in opened.cancelled} == {"trading HALTED: daily loss 6% > 5%"}
    assert {o.status for o in ledger.orders()} == {"CANCELLED"}
    assert daily.fill_working_orders(ledger, broker, snap(D2)) == 0 and ledger.holdings() == {}
    after = place_day(ledger, broker, {"A": 0.05, "B": -0.05}, day=D2)
    assert after.sent == [] and all("HALTED" in why for _, why in after.rejected)
    assert broker.submissions() == placed.sent  # nothing new reached the broker


def test_a_split_cancels_orders_decided_in_pre_split_shares(ledger, broker):
    a, v = new_order(ledger, intent("A"))
    b, vb = new_order(ledger, intent("B"))
    daily.send(ledger, broker, v.approved + vb.approved)
    cancelled = daily.cancel_for_splits(ledger, broker, D2, {"A": 2.0})
    assert [cid for cid, _ in cancelled] == [a] and "split 2:1" in cancelled[0][1]
    statuses = {o.client_order_id: o.status for o in ledger.orders()}
    assert statuses == {a: life.CANCELLED, b: life.SUBMITTED}
    journal = [json.loads(line) for line in broker.journal.read_text().splitlines()]
    assert [e["id"] for e in journal if e["event"] == "cancel"] == [a]
    # and nothing fills it at the post-split close
    assert daily.fill_working_orders(ledger, broker, snap(D2)) == 1
