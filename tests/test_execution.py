"""Execution schedules (trading/execution.py) and how the paper broker fills with them."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from alphaline.config import ExecutionParams, load_params
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import (
    AC,
    MOC,
    TWAP,
    VWAP,
    Bar,
    Schedules,
    ac_holdings,
    ac_kappa,
    ac_slices,
    execution_style,
    interval_prices,
    intraday_path,
    linear_impact_eta,
    path_rng,
    profile_from_intraday,
    schedule_fill,
    twap_slices,
    u_shaped_profile,
    vwap_slices,
)
from alphaline.trading.ledger.models import Order
from alphaline.trading.portfolio import OrderIntent
from alphaline.trading.risk_engine import check_orders
from tests.conftest import REPO

PARAMS = load_params(REPO / "params.yaml")
EXECUTION = PARAMS.broker.execution
COSTS = CostModel.from_params(PARAMS.broker)
DAY = dt.date(2024, 1, 3)


# volume profile


@pytest.mark.parametrize("bins", [1, 2, 7, 13, 26])
def test_u_shaped_profile_sums_to_one_and_is_u_shaped(bins):
    p = u_shaped_profile(bins, 3.0)
    assert p.sum() == pytest.approx(1.0, abs=1e-15) and (p > 0).all()
    half = (bins + 1) // 2
    assert (np.diff(p[:half]) < 0).all()  # falls to the middle …
    assert (np.diff(p[bins // 2:]) > 0).all()  # … and rises to the close
    if bins >= 3 and bins % 2:  # the first interval trades 3 × the middle one
        assert p[0] / p[bins // 2] == pytest.approx(3.0)
    assert p == pytest.approx(p[::-1])


def test_profile_is_estimated_from_intraday_bars():
    truth = np.array([0.3, 0.1, 0.1, 0.2, 0.3])
    rows = []
    for day in pd.date_range("2024-01-02", periods=3, freq="B"):
        start = day + pd.Timedelta(hours=9, minutes=30)
        for minute in range(0, 391, 1):  # one bar a minute, 09:30 … 16:00
            slot = min(int(minute / 390 * 5), 4)
            rows.append({"timestamp": start + pd.Timedelta(minutes=minute),
                         "volume": 1_000.0 * truth[slot] / np.sum(
                             [min(int(m / 390 * 5), 4) == slot for m in range(391)])})
    profile = profile_from_intraday(pd.DataFrame(rows), 5)
    assert profile == pytest.approx(truth, rel=1e-9)
    with pytest.raises(ValueError, match="timestamp"):
        profile_from_intraday(pd.DataFrame({"volume": [1.0]}), 5)


# slices


@pytest.mark.parametrize("quantity", [1.0, 1234.0, 50_000.0])
def test_twap_and_vwap_slices_sum_to_the_order(quantity):
    profile = u_shaped_profile(13)
    assert twap_slices(quantity, 13).sum() == pytest.approx(quantity, rel=1e-14)
    assert np.ptp(twap_slices(quantity, 13)) == 0
    vwap = vwap_slices(quantity, profile)
    assert vwap.sum() == pytest.approx(quantity, rel=1e-14)
    assert vwap / quantity == pytest.approx(profile)


def _ac_by_quadratic_program(quantity, bins, risk_aversion, sigma, eta):
    """The discrete Almgren–Chriss problem solved directly: minimize
    Σ η n_j² / τ + λ σ² τ Σ x_j² over x_1 … x_{N−1} (x_0 = X, x_N = 0). Its first-order
    conditions are a tridiagonal linear system."""
    tau = 1 / bins
    m = bins - 1
    a = 2 * eta / tau + risk_aversion * sigma**2 * tau  # (∂/∂x_k) / 2
    off = -eta / tau
    system = np.diag(np.full(m, a)) + np.diag(np.full(m - 1, off), 1) \
        + np.diag(np.full(m - 1, off), -1)
    rhs = np.zeros(m)
    rhs[0] = eta / tau * quantity
    inner = np.linalg.solve(system, rhs)
    return np.concatenate([[quantity], inner, [0.0]])


@pytest.mark.parametrize("risk_aversion", [1e-8, 1e-6, 1e-5])
def test_almgren_chriss_trajectory_is_the_closed_form_and_the_optimum(risk_aversion):
    X, bins, price, vol, adv = 60_000.0, 13, 50.0, 0.025, 1.5e6
    sigma = vol * price
    eta = linear_impact_eta(COSTS, X, price, vol, adv)
    kappa = ac_kappa(risk_aversion, sigma, eta, 1 / bins)
    x = ac_holdings(X, bins, kappa)
    t = np.arange(bins + 1) / bins
    assert x == pytest.approx(X * np.sinh(kappa * (1 - t)) / np.sinh(kappa), rel=1e-10)
    assert x == pytest.approx(_ac_by_quadratic_program(X, bins, risk_aversion, sigma, eta),
                              rel=1e-8, abs=1e-6)
    assert ac_slices(X, bins, kappa).sum() == pytest.approx(X, rel=1e-13)
    assert (ac_slices(X, bins, kappa) > 0).all()


def test_almgren_chriss_limits():
    X, bins = 10_000.0, 13
    # no risk aversion: the straight line, TWAP
    assert ac_kappa(0.0, 2.0, 1e-6, 1 / bins) == 0
    assert ac_slices(X, bins, 0.0) == pytest.approx(twap_slices(X, bins))
    assert ac_slices(X, bins, 1e-9) == pytest.approx(twap_slices(X, bins), rel=1e-9)
    # more risk aversion: more traded early, monotonically
    firsts = [ac_slices(X, bins, ac_kappa(lam, 2.0, 1e-6, 1 / bins))[0]
              for lam in (1e-9, 1e-7, 1e-6, 1e-5, 1e-3)]
    assert (np.diff(firsts) > 0).all()
    # extreme urgency does not overflow; costless trading is done at once
    huge = ac_slices(X, bins, 5_000.0)
    assert np.isfinite(huge).all() and huge[0] == pytest.approx(X)
    assert ac_kappa(1e-6, 2.0, 0.0, 1 / bins) == math.inf
    assert ac_slices(X, bins, math.inf) == pytest.approx([X] + [0.0] * (bins - 1))


# intraday price path


def test_intraday_path_runs_open_to_close_within_the_bar_and_touches_high_and_low():
    for seed in range(20):
        path = intraday_path(100.0, 104.0, 97.0, 101.0, 130, np.random.default_rng(seed))
        assert path[0] == 100.0 and path[-1] == 101.0
        assert path.max() == pytest.approx(104.0) and path.min() == pytest.approx(97.0)
    prices = interval_prices(path, 13)
    assert len(prices) == 13 and (prices >= 97.0).all() and (prices <= 104.0).all()


def test_intraday_path_is_seeded_by_symbol_and_day():
    def path(symbol, day):
        return intraday_path(10.0, 11.0, 9.0, 10.5, 50, path_rng(0, symbol, day))
    assert np.array_equal(path("A", DAY), path("A", DAY))
    assert not np.array_equal(path("A", DAY), path("B", DAY))
    assert not np.array_equal(path("A", DAY), path("A", DAY + dt.timedelta(days=1)))


# which style


def test_execution_style_by_size_against_adv():
    p = EXECUTION
    adv = 1e6
    assert execution_style(0.5 * p.algo_participation * adv, adv, p) == MOC
    assert execution_style(p.algo_participation * adv, adv, p) == p.algo
    assert execution_style(-p.algo_participation * adv * 1.5, adv, p) == p.algo  # a sell
    assert execution_style(p.ac_participation * adv, adv, p) == AC
    assert execution_style(1e9, float("nan"), p) == MOC  # no ADV: nothing to size a schedule
    assert execution_style(1e9, 0.0, p) == MOC
    twap = p.model_copy(update={"algo": "TWAP"})
    assert execution_style(p.algo_participation * adv, adv, twap) == TWAP


def test_execution_params_are_validated():
    good = EXECUTION.model_dump()
    with pytest.raises(ValidationError, match="ac_participation"):
        ExecutionParams(**{**good, "ac_participation": good["algo_participation"] / 2})
    with pytest.raises(ValidationError):
        ExecutionParams(**{**good, "algo": "ICEBERG"})
    with pytest.raises(ValidationError):
        ExecutionParams(**{**good, "surprise": 1})


def test_the_brokers_default_schedules_are_the_params_defaults():
    default, configured = Schedules(), Schedules.from_params(EXECUTION)
    for name in ("bins", "steps_per_bin", "risk_aversion", "seed"):
        assert getattr(default, name) == getattr(configured, name), name
    assert np.array_equal(default.profile, configured.profile)


# the cost model's split


def test_half_spread_and_impact_add_up_to_the_cost_models_slippage():
    q = np.array([0.0, 100.0, -2_500.0, 40_000.0, 10.0])
    price = np.array([10.0, 50.0, 20.0, 75.0, 5.0])
    vol = np.array([0.02, np.nan, 0.03, 0.015, 0.02])
    adv = np.array([1e6, 1e6, 0.0, 2e6, np.nan])
    split = COSTS.half_spreads(q, price) + COSTS.impacts(q, price, vol, adv)
    assert np.array_equal(split, COSTS.slippages(q, price, vol, adv))


# the paper broker


def _order(cid, symbol, side, qty, style, price=10.0):
    return Order(client_order_id=cid, trading_day=DAY - dt.timedelta(days=1), symbol=symbol,
                 intent="rebalance", side=side, quantity=qty, reference_price=price,
                 status="SUBMITTED", broker="paper", approved=True, filled_quantity=0.0,
                 execution_style=style)


def _broker(orders):
    broker = PaperBroker(COSTS)
    intents = [OrderIntent(o.client_order_id, o.trading_day, o.symbol, o.side, o.quantity,
                           o.reference_price, o.intent) for o in orders]
    verdict = check_orders(intents, holdings={}, working={}, nav=1e7,
                           prev_close={o.symbol: 10.0 for o in orders},
                           adv={o.symbol: 1e6 for o in orders}, limits=PARAMS.risk,
                           known_ids=set(), trading_state="ACTIVE", placed_today=0)
    assert len(verdict.approved) == len(orders), verdict.rejected
    broker.submit(verdict.approved)
    return broker


def test_moc_fills_at_the_close_with_the_cost_models_slippage_as_before():
    orders = [_order("1-A", "A", "BUY", 1_000.0, None), _order("1-B", "B", "SELL", 700.0, MOC)]
    broker = _broker(orders)
    closes, vol, adv = {"A": 10.1, "B": 9.9}, {"A": 0.02, "B": 0.03}, {"A": 1e6, "B": 5e5}
    bars = {"A": Bar(10.0, 10.3, 9.8, 10.1), "B": Bar(10.0, 10.1, 9.7, 9.9)}
    for given in (None, bars):  # an MOC order never reads the intraday bar
        fills = broker.fills_at_close(DAY, orders, closes, vol, adv, given)
        assert [(f.quantity, f.price) for f in fills] == [(1_000.0, 10.1), (-700.0, 9.9)]
        assert [f.slippage for f in fills] == [
            COSTS.slippage(1_000.0, 10.1, 0.02, 1e6), COSTS.slippage(700.0, 9.9, 0.03, 5e5)]
        assert [f.commission for f in fills] == [COSTS.commission(1_000.0),
                                                 COSTS.commission(700.0)]


def test_scheduled_orders_fill_along_the_session():
    qty, adv, vol = 20_000.0, 1e6, 0.02
    orders = [_order(f"1-{s}", s, "BUY", qty, s) for s in (TWAP, VWAP, AC)]
    broker = _broker(orders)
    bar = Bar(10.0, 10.4, 9.9, 10.3)
    symbols = [o.symbol for o in orders]
    fills = broker.fills_at_close(DAY, orders, dict.fromkeys(symbols, 10.3),
                                  dict.fromkeys(symbols, vol), dict.fromkeys(symbols, adv),
                                  dict.fromkeys(symbols, bar))
    by = {f.symbol: f for f in fills}
    for f in fills:
        assert 9.9 <= f.price <= 10.4 and f.price != 10.3 and f.quantity == qty
    # VWAP trades with the volume: its impact is the cost model's for the whole order
    vwap = schedule_fill(VWAP, qty, bar, vol, adv, COSTS, Schedules(), VWAP, DAY, 10.0)
    assert vwap.impact == pytest.approx(float(COSTS.impacts(qty, vwap.price, vol, adv)),
                                        rel=1e-12)
    assert by[VWAP].slippage == pytest.approx(vwap.slippage, rel=1e-15)
    # at one price, VWAP is the least square-root impact there is; TWAP trades against the
    # U-shaped volume and the AC trajectory front-loads, so both pay more
    flat = Bar(float("nan"), float("nan"), float("nan"), 10.3)
    worked = {s: schedule_fill(s, qty, flat, vol, adv, COSTS, Schedules(), "A", DAY, 10.0)
              for s in (TWAP, VWAP, AC)}
    assert worked[AC].slices[0] > worked[AC].slices[-1]
    assert worked[TWAP].impact > worked[VWAP].impact and worked[AC].impact > worked[VWAP].impact
    assert worked[VWAP].impact == pytest.approx(COSTS.impacts(qty, 10.3, vol, adv), rel=1e-12)
    # the same bar, the same fills (a rerun of the day)
    again = broker.fills_at_close(DAY, orders, dict.fromkeys(symbols, 10.3),
                                  dict.fromkeys(symbols, vol), dict.fromkeys(symbols, adv),
                                  dict.fromkeys(symbols, bar))
    assert [(f.price, f.slippage) for f in again] == [(f.price, f.slippage) for f in fills]


def test_a_schedule_without_an_intraday_range_fills_at_the_close():
    order = _order("1-A", "A", "SELL", 20_000.0, VWAP)
    broker = _broker([order])
    fills = broker.fills_at_close(DAY, [order], {"A": 9.7}, {"A": 0.02}, {"A": 1e6})
    assert fills[0].price == pytest.approx(9.7)
    assert fills[0].slippage == pytest.approx(COSTS.slippage(20_000.0, 9.7, 0.02, 1e6))


def test_an_unknown_style_is_refused_with_its_order():
    order = _order("1-A", "A", "BUY", 100.0, "ICEBERG")
    broker = _broker([order])
    with pytest.raises(ValueError, match="1-A: unknown execution style 'ICEBERG'"):
        broker.fills_at_close(DAY, [order], {"A": 9.7}, {}, {})
