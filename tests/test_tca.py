"""Transaction-cost analysis (trading/tca.py): the decomposition, and a day through the
ledger whose large orders are worked by schedules, their TCA in the ledger, the report and
the slippage kill switch."""

import dataclasses
import datetime as dt
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from alphaline.config import load_params
from alphaline.trading import daily
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import AC, MOC, VWAP, Schedules
from alphaline.trading.ledger.models import Fill, Order
from alphaline.trading.states import ACTIVE, REDUCING
from alphaline.trading.tca import (
    COMPONENTS,
    daily_summary,
    fill_tca,
    order_tca,
    price_inclusive_tca,
)
from tests.conftest import REPO, open_ledger

PARAMS = load_params(REPO / "params.yaml")
COSTS = CostModel.from_params(PARAMS.broker)


# the decomposition


def test_the_components_add_up_to_the_shortfall_exactly():
    f = Fraction
    t = order_tca(shares=f(-2_500), arrival_price=f(2031, 100), start_price=f(2017, 100),
                  average_fill=f(201_234, 10_000), spread=f(1013, 100), impact=f(2271, 100),
                  fees=f(1250, 100), estimated_slippage=f(2500, 100))
    assert sum(getattr(t, c) for c in COMPONENTS) == t.shortfall  # exact, in fractions
    # a sale: the price fell before and during the work, which cost money
    assert t.delay == f(-2_500) * (f(2017, 100) - f(2031, 100)) > 0
    assert t.drift > 0
    assert t.slippage_vs_estimate == f(1013 + 2271 - 2500, 100)


@pytest.mark.parametrize("seed", range(5))
def test_the_decomposition_holds_in_floats_and_against_the_cash_paid(seed):
    rng = np.random.default_rng(seed)
    shares = float(rng.choice([-1, 1]) * rng.integers(1, 100_000))
    arrival, start, average = 50 * np.exp(rng.normal(0, 0.02, 3))
    slippage, fees = float(rng.uniform(1, 500)), float(rng.uniform(1, 50))
    t = fill_tca(shares, arrival, start, average, slippage, 2.0, fees, 100.0)
    # what the fill cost in cash beyond the shares at the decision close
    paid = shares * average + slippage + fees - shares * arrival
    assert t.shortfall == pytest.approx(paid, rel=1e-12)
    assert sum(getattr(t, c) for c in COMPONENTS) == pytest.approx(t.shortfall, rel=1e-12)
    assert t.spread + t.impact == pytest.approx(slippage, rel=1e-12)
    assert t.spread == pytest.approx(2e-4 * abs(shares) * average)


def test_a_live_price_holds_spread_and_impact_and_is_measured_against_a_benchmark():
    f = Fraction
    t = price_inclusive_tca(shares=f(1_000), arrival_price=f(50), start_price=f(5010, 100),
                            benchmark=f(5030, 100), average_fill=f(5041, 100),
                            half_spread_bps=f(2), fees=f(5), estimated_slippage=f(60))
    assert sum(getattr(t, c) for c in COMPONENTS) == t.shortfall  # exact
    assert t.shortfall == f(1_000) * (f(5041, 100) - f(50)) + f(5)  # nothing beside the price
    assert t.drift == f(1_000) * f(20, 100)  # the market's move to the benchmark
    assert t.spread + t.impact == f(1_000) * f(11, 100)  # what was paid beyond it
    assert t.slippage_vs_estimate == f(110) - f(60)


def test_a_live_brokers_fills_get_their_tca_against_the_close_or_typical_price():
    """IBKR's fills record the price paid and no separate slippage: MOC is measured against
    the fill day's close, a schedule against the bar's typical price."""
    day = dt.date(2024, 1, 3)
    snap = daily.MarketSnapshot(day, {"A": 20.0, "B": 30.0}, {"A": 0.02, "B": 0.02},
                                {"A": 1e6, "B": 1e6}, open={"A": 19.8, "B": 29.0},
                                high={"A": 20.4, "B": 31.0}, low={"A": 19.7, "B": 28.9})
    rows = {}
    for symbol, style, price in (("A", MOC, 20.01), ("B", VWAP, 30.2)):
        order = Order(client_order_id=f"x-{symbol}", trading_day=day - dt.timedelta(days=1),
                      symbol=symbol, intent="rebalance", side="BUY", quantity=1_000.0,
                      reference_price=19.9 if symbol == "A" else 29.5, status="FILLED",
                      broker="ibkr", approved=True, filled_quantity=1_000.0,
                      execution_style=style, estimated_slippage=5.0)
        fills = [Fill(fill_id=f"e-{symbol}-{i}", client_order_id=order.client_order_id,
                      day=day, symbol=symbol, quantity=500.0, price=price + 0.01 * i,
                      commission=2.5, slippage=0.0) for i in (-1, 1)]
        rows[symbol] = daily.order_tca_row(order, fills, snap, COSTS)
    moc, vwap = rows["A"], rows["B"]
    assert moc.start_price == 20.0 and moc.drift == 0.0
    assert moc.spread + moc.impact == pytest.approx(1_000 * (20.01 - 20.0))
    assert moc.shortfall == pytest.approx(1_000 * (20.01 - 19.9) + 5.0)
    typical = (31.0 + 28.9 + 30.0) / 3
    assert vwap.start_price == 29.0
    assert vwap.drift == pytest.approx(1_000 * (typical - 29.0))
    assert vwap.spread + vwap.impact == pytest.approx(1_000 * (30.2 - typical))
    for t in (moc, vwap):
        assert t.spread == pytest.approx(2e-4 * 1_000 * t.average_fill)
        assert sum(getattr(t, c) for c in COMPONENTS) == pytest.approx(t.shortfall, rel=1e-12)


def test_daily_summary_adds_the_orders_of_each_day():
    rows = pd.DataFrame([
        {"day": dt.date(2024, 1, 3), "shares": 100.0, "arrival_price": 10.0, "delay": 5.0,
         "drift": -1.0, "spread": 0.2, "impact": 0.3, "fees": 1.0, "shortfall": 5.5,
         "estimated_slippage": 0.25, "style": MOC},
        {"day": dt.date(2024, 1, 3), "shares": -300.0, "arrival_price": 20.0, "delay": -3.0,
         "drift": 2.0, "spread": 1.2, "impact": 2.8, "fees": 1.5, "shortfall": 4.5,
         "estimated_slippage": 1.75, "style": AC},
        {"day": dt.date(2024, 1, 4), "shares": 50.0, "arrival_price": 10.0, "delay": 0.0,
         "drift": 0.0, "spread": 0.1, "impact": 0.0, "fees": 1.0, "shortfall": 1.1,
         "estimated_slippage": 0.1, "style": MOC}])
    s = daily_summary(rows).set_index("day")
    first = s.loc[dt.date(2024, 1, 3)]
    assert first["orders"] == 2 and first["notional"] == pytest.approx(7_000.0)
    assert first["shortfall"] == pytest.approx(10.0)
    assert first["shortfall_bps"] == pytest.approx(10.0 / 7_000 * 1e4)
    assert first["realized_slippage"] == pytest.approx(4.5)
    assert first["slippage_ratio"] == pytest.approx(4.5 / 2.0)
    assert s.loc[dt.date(2024, 1, 4), "orders"] == 1


# a day through the ledger


SYMBOLS = [f"S{i:02d}" for i in range(20)]
# the two best-scored names trade little: their orders are large against ADV
VOLUME = {"S19": 60_000.0, "S18": 150_000.0}


def _market(days: int = 40) -> pd.DataFrame:
    """Daily bars with open, high, low and a constant volume per name (its ADV)."""
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2024-01-02", periods=days)
    frames = []
    for symbol in SYMBOLS:
        close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.015, days)))
        open_ = np.concatenate([[20.0], close[:-1]]) * np.exp(rng.normal(0, 0.004, days))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, days)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, days)))
        frames.append(pd.DataFrame({"date": dates, "symbol": symbol, "open": open_,
                                    "high": high, "low": low, "close": close,
                                    "volume": VOLUME.get(symbol, 5e6)}))
    return pd.concat(frames, ignore_index=True)


def _scores() -> pd.DataFrame:
    return pd.DataFrame({"symbol": SYMBOLS, "score": np.linspace(-1, 1, len(SYMBOLS)),
                         "reasons": [[] for _ in SYMBOLS]})


def _run(ledger, broker, bars, snap):
    return daily.run_ledger_day(ledger, broker, PARAMS, snap, bars, [], _scores(), "1")


def _two_days(tmp_path, second_snap=lambda snap: snap):
    bars = _market()
    d1, d2 = (d.date() for d in sorted(bars["date"].unique())[-2:])
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    broker = PaperBroker(COSTS, schedules=Schedules.from_params(PARAMS.broker.execution))
    first = _run(ledger, broker, bars, daily.market_snapshot(bars, d1))
    second = _run(ledger, broker, bars, second_snap(daily.market_snapshot(bars, d2)))
    return bars, ledger, broker, (d1, d2), first, second


def _styles(ledger, day) -> dict[str, str]:
    return {o.symbol: o.execution_style for o in ledger.orders(day=day)}


def test_a_day_with_large_orders_works_them_by_schedule_and_records_their_tca(tmp_path):
    bars, ledger, broker, (d1, d2), first, second = _two_days(tmp_path)
    assert len(first.placed.sent) == 8 and second.fills == 8
    styles = _styles(ledger, d1)
    assert styles["S19"] == AC and styles["S18"] == VWAP  # 4.2 % and 1.7 % of ADV
    assert {styles[s] for s in styles if s not in VOLUME} == {MOC}
    assert all(o.estimated_slippage > 0 for o in ledger.orders(day=d1))

    tca = ledger.tca(day=d2).set_index("symbol")
    assert len(tca) == 8 and set(tca["style"]) == {MOC, VWAP, AC}
    today = bars[bars["date"] == pd.Timestamp(d2)].set_index("symbol")
    decided = bars[bars["date"] == pd.Timestamp(d1)].set_index("symbol")
    ac = tca.loc["S19"]
    assert ac["arrival_price"] == pytest.approx(decided.loc["S19", "close"])
    assert ac["start_price"] == pytest.approx(today.loc["S19", "open"])
    assert today.loc["S19", "low"] <= ac["average_fill"] <= today.loc["S19", "high"]
    assert ac["average_fill"] != pytest.approx(today.loc["S19", "close"])
    moc = tca[tca["style"] == MOC]
    assert (moc["start_price"] == moc["average_fill"]).all() and (moc["drift"] == 0).all()
    for _, r in tca.iterrows():
        assert sum(r[c] for c in COMPONENTS) == pytest.approx(r["shortfall"], rel=1e-12)
    # the ledger's cash paid for the fills is what the TCA says beyond the arrival value
    fills = ledger.fills(day=d2)
    paid = sum(f.quantity * f.price + f.slippage + f.commission for f in fills)
    at_arrival = float((tca["shares"] * tca["arrival_price"]).sum())
    assert tca["shortfall"].sum() == pytest.approx(paid - at_arrival, rel=1e-9)
    # a calm day: the execution cost about what the cost model estimated
    assert "slippage" not in second.decision.rules
    assert ledger.trading_state() == ACTIVE

    result = daily.DayResult(day=d2, model_version="1", signals=0, fills=second.fills)
    report = daily.report_markdown(result, _scores(), ledger)
    assert "## Transaction costs" in report
    ac_id = next(o.client_order_id for o in ledger.orders(day=d1) if o.symbol == "S19")
    assert f"| {ac_id} | AC |" in report
    assert "realized slippage (spread + impact)" in report
    records = daily.tca_records(ledger, d2)
    assert {r["style"] for r in records} == {MOC, VWAP, AC}

    # a rerun of the fill day writes the same TCA, nothing more
    assert _run(ledger, broker, bars, daily.market_snapshot(bars, d2)).fills == 0
    rerun = ledger.tca(day=d2)
    pd.testing.assert_frame_equal(rerun.drop(columns="created_at"),
                                  tca.reset_index()[rerun.columns].drop(columns="created_at"))


def test_the_slippage_switch_fires_when_realized_cost_exceeds_the_estimate(tmp_path):
    ratio = PARAMS.risk.kill_switches.max_slippage_ratio

    def turbulent(snap):  # the fill day turned far more volatile than the decision assumed
        return dataclasses.replace(snap, daily_vol={s: 40 * v for s, v in snap.daily_vol.items()})

    _, ledger, _, (_, d2), _, second = _two_days(tmp_path, turbulent)
    tca = ledger.tca(day=d2)
    realized = float((tca["spread"] + tca["impact"]).sum())
    estimated = float(tca["estimated_slippage"].sum())
    assert realized > ratio * estimated
    assert "slippage" in second.decision.rules
    assert ledger.trading_state() == REDUCING
    why = second.decision.reasons[second.decision.rules.index("slippage")]
    assert f"{realized:,.2f}" in why and f"{estimated:,.2f}" in why


def test_an_order_from_before_styles_fills_moc_and_gets_its_tca(tmp_path):
    """An order row written without a style or an estimate (a ledger from before 0004) is
    an MOC order; its TCA estimate is the cost model's at the fill day's figures."""
    bars = _market()
    d1, d2 = (d.date() for d in sorted(bars["date"].unique())[-2:])
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    broker = PaperBroker(COSTS)
    _run(ledger, broker, bars, daily.market_snapshot(bars, d1))
    with ledger.session() as s, s.begin():
        for o in s.query(Order):
            o.execution_style, o.estimated_slippage = MOC, None
    snap = daily.market_snapshot(bars, d2)
    daily.settle_day(ledger, broker, snap, PARAMS.data.calendar)
    tca = ledger.tca(day=d2)
    assert len(tca) == 8 and set(tca["style"]) == {MOC}
    assert (tca["average_fill"] == tca["symbol"].map(snap.close)).all()
    expected = [COSTS.slippage(abs(r.shares), r.arrival_price, snap.daily_vol[r.symbol],
                               snap.adv[r.symbol]) for r in tca.itertuples()]
    assert tca["estimated_slippage"].tolist() == pytest.approx(expected)
