import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from alphaline.config import load_params
from alphaline.errors import MissingPrerequisite
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.ledger import Ledger, revisions, upgrade
from alphaline.trading.portfolio import (
    OrderIntent,
    client_order_id,
    long_short_weights,
    rebalance_orders,
)
from alphaline.trading.risk_engine import Approved, check_orders
from tests.conftest import BACKENDS, REPO, database_url, open_ledger

PARAMS = load_params(REPO / "params.yaml")
DAY = dt.date(2024, 1, 2)


def test_weights_are_dollar_neutral_and_capped():
    scores = pd.Series(range(20), index=[f"S{i}" for i in range(20)], dtype=float)
    w = long_short_weights(scores, quantile=0.2, gross=1.0, max_weight=0.5)
    assert w.sum() == pytest.approx(0.0) and w.abs().sum() == pytest.approx(1.0)
    assert set(w[w > 0].index) == {"S16", "S17", "S18", "S19"}
    capped = long_short_weights(scores, quantile=0.2, gross=1.0, max_weight=0.05)
    assert capped.abs().max() == pytest.approx(0.05)


def test_rebalance_orders_move_holdings_to_targets():
    weights = pd.Series({"A": 0.1, "B": -0.1})
    orders = rebalance_orders(DAY, weights, {"A": 100.0, "C": 50.0}, 100_000.0,
                              {"A": 10.0, "B": 20.0, "C": 5.0})
    by_symbol = {o.symbol: o for o in orders}
    assert by_symbol["A"].side == "BUY" and by_symbol["A"].quantity == 900
    assert by_symbol["B"].side == "SELL" and by_symbol["B"].quantity == 500
    assert by_symbol["C"].side == "SELL" and by_symbol["C"].quantity == 50
    assert by_symbol["A"].client_order_id == "20240102-A-rebalance"
    with pytest.raises(ValueError, match="no usable price for B"):
        rebalance_orders(DAY, weights, {}, 100_000.0, {"A": 10.0})


def order(symbol="A", side="BUY", qty=100.0, price=10.0):
    return OrderIntent(client_order_id(DAY, symbol, "rebalance"), DAY, symbol, side, qty, price,
                       "rebalance")


# every pre-trade check has its own test in tests/test_risk.py


def test_only_the_risk_engine_can_approve():
    with pytest.raises(PermissionError):
        Approved(order(), object())
    broker = PaperBroker(CostModel.from_params(PARAMS.broker))
    with pytest.raises(TypeError):
        broker.submit([order()])


def test_cost_model_square_root_impact():
    costs = CostModel(commission_per_share=0.005, commission_min=0.0, half_spread_bps=2.0,
                      impact_coefficient=0.1, borrow_rate=0.0)
    assert costs.commission(-200) == pytest.approx(1.0)
    small = costs.slippage(100, 50.0, 0.02, 1e6)
    large = costs.slippage(10_000, 50.0, 0.02, 1e6)
    assert small == pytest.approx(2e-4 * 5_000 + 0.1 * 0.02 * (1e-4) ** 0.5 * 5_000)
    assert large / 10_000 > small / 100  # cost per share grows with size


def test_ledger_schema_is_migrated_by_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    before, head = upgrade(url)
    assert before is None and revisions(url) == (head, head)
    ledger = Ledger(url)
    tables = set(inspect(ledger.engine).get_table_names())
    assert {"alembic_version", "orders", "fills", "signals", "positions", "daily_nav",
            "cash_movements", "controls"} <= tables
    ledger.engine.dispose()
    written = (tmp_path / "ledger.db").read_bytes()
    assert upgrade(url) == (head, head)  # a second upgrade is a no-op
    assert (tmp_path / "ledger.db").read_bytes() == written
    Ledger(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_opening_an_unmigrated_ledger_names_the_upgrade_step(request, backend):
    url = database_url(request, backend, "ledger")
    _, head = revisions(url)
    with pytest.raises(MissingPrerequisite, match=f"code expects {head}: run `alphaline db "
                                                  "upgrade`") as err:
        Ledger(url)
    assert err.value.exit_code == 4
    assert inspect(create_engine(url)).get_table_names() == []  # opening did not migrate


@pytest.mark.parametrize("backend", BACKENDS)
def test_ledger_orders_fills_and_nav(request, backend):
    ledger = open_ledger(database_url(request, backend, "ledger"))
    ledger.ensure_initial_cash(DAY, 100_000.0)
    ledger.ensure_initial_cash(DAY, 100_000.0)  # once only
    row = OrderIntent("20240102-A-rebalance-1", DAY, "A", "BUY", 100.0, 10.0, "rebalance")
    verdict = check_orders([row], holdings={}, working={}, nav=100_000.0,
                           prev_close={"A": 10.0}, adv={"A": 1e7}, limits=PARAMS.risk,
                           known_ids=set(), trading_state="ACTIVE", placed_today=0)
    next_day = DAY + dt.timedelta(days=1)
    record = {"broker": "paper", "model_version": None, "expires_on": next_day}
    assert ledger.add_orders(verdict.approved, [], **record) == [row.client_order_id]
    assert ledger.add_orders(verdict.approved, [], **record) == []  # idempotent
    broker = PaperBroker(CostModel(commission_per_share=0.01, commission_min=0.0,
                                   half_spread_bps=0.0, impact_coefficient=0.0, borrow_rate=0.0))
    broker.submit(verdict.approved)
    ledger.transition(row.client_order_id, "SUBMITTED", "accepted by paper")
    fills = broker.fills_at_close(next_day, ledger.working_orders(before=next_day), {"A": 11.0},
                                  {}, {})
    assert ledger.add_fills(fills) == 1 and ledger.add_fills(fills) == 0
    assert ledger.holdings() == {"A": 100.0}
    nav = ledger.mark_to_market(next_day, {"A": 12.0})
    assert nav.cash == pytest.approx(100_000 - 1_100 - 1.0)
    assert nav.nav == pytest.approx(100_000 - 1_100 - 1.0 + 1_200)
    assert ledger.orders(status="FILLED")[0].client_order_id == row.client_order_id
    # a day without a close for a held name marks it at its last price, flagged stale
    later = next_day + dt.timedelta(days=1)
    stale = ledger.mark_to_market(later, {})
    assert stale.nav == pytest.approx(nav.nav)
    assert [m.symbol for m in ledger.stale_marks(later)] == ["A"]


def test_sized_book_stays_neutral_when_the_cap_binds():
    from alphaline.trading.portfolio import sized_long_short_weights

    sizes = pd.Series({"L1": 0.9, "L2": 0.8, **{f"S{i}": -0.6 for i in range(10)}})
    w = sized_long_short_weights(sizes, gross=1.0, max_weight=0.05)
    assert w.sum() == pytest.approx(0.0, abs=1e-12)
    assert w.abs().max() <= 0.05 + 1e-12
    assert w[["L1", "L2"]].tolist() == pytest.approx([0.05, 0.05])


def test_research_metrics_and_the_daily_flow_build_the_same_book():
    from alphaline.models.metrics import book_weights

    rng = np.random.default_rng(4)
    scores = pd.Series(rng.normal(size=37), index=[f"S{i}" for i in range(37)])
    daily = long_short_weights(scores, quantile=0.2, gross=1.0, max_weight=0.05)
    frame = pd.DataFrame({"date": pd.Timestamp("2024-01-02"), "symbol": scores.index,
                          "score": scores.to_numpy(), "label": 0.0})
    research = book_weights(frame, 0.2, gross=1.0, max_weight=0.05)
    assert np.allclose(research.to_numpy(), daily.to_numpy())


def test_one_cross_section_and_a_panel_date_get_the_same_sides():
    from alphaline.trading.portfolio import quantile_sides

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 7, 40):
        s = pd.Series(np.round(rng.normal(size=n), 1))  # rounding makes ties
        s[rng.random(n) < 0.15] = np.nan
        alone = quantile_sides(s, 0.2)
        grouped = quantile_sides(s, 0.2, np.zeros(n))
        assert alone.tolist() == grouped.tolist()


def test_the_kill_switches_verdict_shrinks_the_days_plan():
    from alphaline.trading.rebalance import day_plan

    names = [f"S{i}" for i in range(20)]
    scores = pd.DataFrame({"symbol": names, "score": np.arange(20, dtype=float)})
    close = dict.fromkeys(names, 50.0)
    vol, adv = dict.fromkeys(names, 0.02), dict.fromkeys(names, 1e7)
    nav = 1_000_000.0
    full = day_plan(DAY, scores, {}, nav, close, vol, adv, PARAMS)
    half = day_plan(DAY, scores, {}, nav, close, vol, adv, PARAMS, scale=0.5)
    size = {o.symbol: o.quantity for o in full.orders}
    assert size and {o.symbol: o.quantity for o in half.orders} == pytest.approx(
        {s: q / 2 for s, q in size.items()}, abs=1.0)
    # the last tier keeps a quarter of every position, whatever the scores, and adds nothing
    held = {"S0": -400.0, "S19": 400.0, "S7": 200.0}
    crash = day_plan(DAY, scores, held, nav, close, vol, adv, PARAMS, keep_fraction=0.25)
    assert {o.symbol: (o.side, o.quantity) for o in crash.orders} == {
        "S0": ("BUY", 300.0), "S19": ("SELL", 300.0), "S7": ("SELL", 150.0)}
