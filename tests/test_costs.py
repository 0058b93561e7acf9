"""The one cost model: its formula, and one day's cost computed through every caller
(walk-forward research, the paper broker's fills, the model itself) gives one number."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alphaline.calendar import sessions_per_year
from alphaline.config import load_params
from alphaline.models.metrics import long_short_returns, net_long_short_returns
from alphaline.trading.book import BookLimits
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel, ResearchCosts, book_costs, market_panel
from alphaline.trading.ledger.models import Order
from alphaline.trading.rebalance import day_plan
from alphaline.trading.risk_engine import check_orders
from tests.conftest import REPO

PARAMS = load_params(REPO / "params.yaml")
MODEL = CostModel(commission_per_share=0.005, commission_min=1.0, half_spread_bps=2.0,
                  impact_coefficient=0.1, borrow_rate=0.02)


def test_formula_commission_minimum_spread_impact_and_borrow():
    assert MODEL.commission(0) == 0.0
    assert MODEL.commission(100) == 1.0  # 0.50 by the share, raised to the minimum
    assert MODEL.commission(-1_000) == pytest.approx(5.0)
    # 1,000 shares at $50 in a name with 2 % daily vol and 1M ADV
    notional = 50_000.0
    expected = 2e-4 * notional + 0.1 * 0.02 * math.sqrt(1_000 / 1e6) * notional
    assert MODEL.slippage(1_000, 50.0, 0.02, 1e6) == pytest.approx(expected)
    assert MODEL.slippage(1_000, 50.0, float("nan"), 1e6) == pytest.approx(2e-4 * notional)
    assert MODEL.trade_cost(1_000, 50.0, 0.02, 1e6) == pytest.approx(5.0 + expected)
    # a $1M short for one session of a 252-session year at 2 % a year
    assert MODEL.borrow_fee(-1e6, 252.0) == pytest.approx(1e6 * 0.02 / 252)
    vector = MODEL.trade_costs([100, 1_000], [50.0, 50.0], [0.02, 0.02], [1e6, 1e6])
    assert vector.tolist() == pytest.approx([MODEL.trade_cost(100, 50.0, 0.02, 1e6),
                                             MODEL.trade_cost(1_000, 50.0, 0.02, 1e6)])


def test_market_panel_matches_the_daily_snapshot_window():
    from alphaline.trading.daily import market_snapshot

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2024-01-02", periods=40)
    bars = pd.concat([pd.DataFrame({"date": dates, "symbol": s,
                                    "close": 50 * np.exp(np.cumsum(rng.normal(0, .02, 40))),
                                    "volume": rng.uniform(1e5, 1e6, 40)}) for s in "AB"])
    panel = market_panel(bars).set_index(["date", "symbol"])
    snap = market_snapshot(bars, dates[-1].date())
    for s in "AB":
        row = panel.loc[(dates[-1], s)]
        assert row["daily_vol"] == pytest.approx(snap.daily_vol[s])
        assert row["adv"] == pytest.approx(snap.adv[s])


def test_one_day_costs_the_same_through_research_the_paper_broker_and_the_model():
    """Day t0: the book is entered (orders at t0's close), filled at t1's close."""
    nav, symbols = PARAMS.broker.initial_cash, [f"S{i}" for i in range(10)]
    t0, t1 = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")
    close0 = dict.fromkeys(symbols, 100.0)
    close1 = {s: 100.0 + i for i, s in enumerate(symbols)}
    vol1 = {s: 0.01 + 0.002 * i for i, s in enumerate(symbols)}
    adv1 = {s: 2e5 * (i + 1) for i, s in enumerate(symbols)}
    scores = pd.DataFrame({"symbol": symbols, "score": np.arange(10.0)})
    model = CostModel.from_params(PARAMS.broker)
    per_year = sessions_per_year(PARAMS.data.calendar)

    # the daily flow's plan at t0 → the risk engine → the paper broker's fills at t1
    plan = day_plan(t0.date(), scores, {}, nav, close0, dict.fromkeys(symbols, 0.01),
                    dict.fromkeys(symbols, 1e6), PARAMS)
    assert len(plan.orders) == 4 and {o.quantity for o in plan.orders} == {500.0}
    verdict = check_orders(plan.orders, holdings={}, working={}, nav=nav, prev_close=close0,
                           adv=dict.fromkeys(symbols, 1e6), limits=PARAMS.risk,
                           known_ids=set(), trading_state="ACTIVE", placed_today=0)
    assert len(verdict.approved) == 4, verdict.rejected
    broker = PaperBroker(model)
    broker.submit(verdict.approved)
    working = [Order(client_order_id=a.order.client_order_id, trading_day=t0.date(),
                     symbol=a.order.symbol, intent=a.order.intent, side=a.order.side,
                     quantity=a.order.quantity, reference_price=a.order.reference_price,
                     status="SUBMITTED", broker="paper", approved=True, filled_quantity=0.0)
               for a in verdict.approved]
    fills = broker.fills_at_close(t1.date(), working, close1, vol1, adv1)
    broker_cost = sum(f.commission + f.slippage for f in fills)

    # the cost model directly, on the same orders
    direct = sum(model.trade_cost(o.quantity, close1[o.symbol], vol1[o.symbol], adv1[o.symbol])
                 for o in plan.orders)
    shorts = sum(o.quantity * close0[o.symbol] for o in plan.orders if o.side == "SELL")
    borrow = model.borrow_fee(shorts, per_year)

    # walk-forward research on the same book: returns before minus after costs, at t0
    frame = pd.DataFrame({"date": np.repeat([t0, t1], 10), "symbol": symbols * 2,
                          "score": np.tile(np.arange(10.0), 2), "label": 0.01})
    market = pd.DataFrame({"date": np.repeat([t0, t1], 10), "symbol": symbols * 2,
                           "close": [close0[s] for s in symbols] + [close1[s] for s in symbols],
                           "daily_vol": [0.01] * 10 + [vol1[s] for s in symbols],
                           "adv": [1e6] * 10 + [adv1[s] for s in symbols]})
    costs = ResearchCosts(model, nav, market, per_year)
    limits = BookLimits.from_params(PARAMS)
    size = {"gross": limits.gross, "max_weight": limits.name}
    gross = long_short_returns(frame, PARAMS.portfolio.quantile, 1, **size)
    net = net_long_short_returns(frame, PARAMS.portfolio.quantile, 1, costs, **size)
    research = float(gross[t0] - net[t0]) * nav

    assert direct > 0 and broker_cost == pytest.approx(direct, rel=1e-12)
    assert research == pytest.approx(direct + borrow, rel=1e-12)
    # t1 holds the same book: no trades, only the borrow fee
    assert float(gross[t1] - net[t1]) * nav == pytest.approx(borrow, rel=1e-12)


def test_research_without_prices_charges_the_spread_and_borrow_and_says_so():
    weights = pd.DataFrame({"A": [0.5, 0.5], "B": [-0.5, 0.0]},
                           index=pd.bdate_range("2024-01-02", periods=2))
    costs = ResearchCosts(MODEL, 1e6, None, 252.0)
    assert costs.omits == ["commission", "impact"]
    charged = book_costs(weights, costs)
    spread = 2e-4
    assert charged.iloc[0] == pytest.approx(spread * 1.0 + 0.02 * 0.5 / 252)
    assert charged.iloc[1] == pytest.approx(spread * 0.5)
