"""Live performance: the champion's signals against realized labels, its book against the
walk-forward's expectation, and the daily page that shows both."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from alphaline.calendar import sessions
from alphaline.features.compute import compute_labels
from alphaline.models.live_performance import (
    expected_sharpe,
    live_performance,
    walk_forward_expectation,
)
from alphaline.pipelines.synthetic import generate_market
from alphaline.reporting.daily import write_daily_report
from alphaline.trading.daily import DayResult
from tests.chromium import Browser, ensure_chromium

PER_YEAR = 252.0


@pytest.fixture(scope="module")
def market():
    bars, planted = generate_market(30, "2023-01-02", "2023-04-28", seed=5, alpha_strength=0.3)
    signals = planted.dropna().rename(columns={"signal": "score"})
    return bars, signals, compute_labels(bars, 1)


def nav_from(returns: np.ndarray, days: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"day": [d.date() for d in days],
                         "nav": 1e6 * np.cumprod(np.r_[1.0, 1 + returns]),
                         "gross_exposure": 1.0, "net_exposure": 0.0})


def test_the_expectation_is_the_walk_forward_sharpe_at_the_books_own_volatility():
    days = sessions("XNYS", "2023-01-03", "2023-03-31")
    r = np.random.default_rng(0).normal(0.001, 0.01, len(days) - 1)
    nav = nav_from(r, days)
    out = walk_forward_expectation(nav, days[0] - pd.Timedelta(days=1), days, 2.0, PER_YEAR)
    # the first signal's book is filled at the next session's close: returns from then on
    assert out["sessions"] == len(days) - 1 and out["first"] == str(days[1].date())
    assert out["realized_return"] == pytest.approx(np.prod(1 + r) - 1)
    sd = r.std(ddof=1)
    expected_daily = 2.0 / math.sqrt(PER_YEAR) * sd
    assert out["expected_return"] == pytest.approx((1 + expected_daily) ** len(r) - 1)
    assert out["realized_sharpe"] == pytest.approx(r.mean() / sd * math.sqrt(PER_YEAR))
    assert out["t_stat"] == pytest.approx((r.mean() - expected_daily) / (sd / math.sqrt(len(r))))
    # a book earning far less than promised shows a strongly negative t
    worse = walk_forward_expectation(nav_from(r - 0.006, days), days[0], days, 2.0, PER_YEAR)
    assert worse["t_stat"] < -3
    # nothing recorded: the realized side only, no invented expectation
    bare = walk_forward_expectation(nav, days[0], days, None, PER_YEAR)
    assert bare["expected_return"] is None and bare["realized_return"] is not None
    # no NAV after the first signal yet
    assert walk_forward_expectation(nav, days[-1], days, 2.0, PER_YEAR)["sessions"] == 0


def test_the_registry_metric_read_is_the_traded_book_after_costs_first():
    assert expected_sharpe({"oos_traded_sharpe_net_annualized": 1.5,
                            "oos_sharpe_net_annualized": 3.0}) == (
        "oos_traded_sharpe_net_annualized", 1.5)
    assert expected_sharpe({"oos_sharpe_net_annualized": 3.0}) == (
        "oos_sharpe_net_annualized", 3.0)
    assert expected_sharpe({"oos_rank_ic": 0.05}) == (None, None)


def test_live_performance_measures_the_planted_signal_and_waits_for_labels(market):
    bars, signals, labels = market
    days = pd.DatetimeIndex(sorted(bars["date"].unique()))
    nav = nav_from(np.random.default_rng(1).normal(0.002, 0.005, len(days) - 1), days)
    metrics = {"oos_traded_sharpe_net_annualized": 2.5, "oos_rank_ic": 0.2}
    live = live_performance("7", signals, labels, nav, days, metrics, 1, 0.2, PER_YEAR)
    assert live.enough and live.summary["rank_ic"] > 0.1 and live.summary["hit_rate"] > 0.6
    # every signal day but the last 1 + h has its label
    assert live.summary["sessions"] == signals["date"].nunique() - 2
    assert live.expectation_metric == "oos_traded_sharpe_net_annualized"
    assert live.research_book["sessions"] > 0 and live.expectation["sessions"] > 0
    text = live.markdown()
    assert "## Live performance" in text and "hit rate" in text and "walk-forward 0.2000" in text
    figures = {r["metric"]: r["value"] for r in live.figures()}
    assert figures["live_rank_ic"] == pytest.approx(live.summary["rank_ic"])

    # three signal days, labels realized for one: say so, show no figure
    recent = signals[signals["date"] >= days[-3]]
    early = live_performance("7", recent, labels, nav, days, metrics, 1, 0.2, PER_YEAR)
    assert not early.enough and early.summary["sessions"] == 1
    assert "Too few labels have realized yet: 1 of the champion v7's 3 signal days" in \
        early.markdown()
    assert {r["metric"]: r["value"] for r in early.figures()}["live_rank_ic"] is None


@pytest.fixture(scope="module")
def browser():
    b = Browser(ensure_chromium())
    yield b
    b.close()


def _day(day: dt.date) -> DayResult:
    return DayResult(day=day, model_version="7", signals=30, fills=12,
                     orders_submitted=["a"], orders_rejected=[], nav=1_010_000.0,
                     gross_exposure=1.0, net_exposure=0.0, kill_switches=[], risk={})


def test_the_daily_page_shows_the_live_ic_chart_or_says_why_not(market, browser, tmp_path):
    bars, signals, labels = market
    days = pd.DatetimeIndex(sorted(bars["date"].unique()))
    nav = nav_from(np.random.default_rng(2).normal(0.001, 0.005, len(days) - 1), days)
    metrics = {"oos_traded_sharpe_net_annualized": 2.5, "oos_rank_ic": 0.2}
    scores = pd.DataFrame(columns=["symbol", "score", "reasons"])
    orders = pd.DataFrame(columns=["order", "symbol", "side", "quantity", "reference_price",
                                   "status", "reason"])
    book = pd.Series(dtype="float64")
    day = days[-1].date()

    live = live_performance("7", signals, labels, nav, days, metrics, 1, 0.2, PER_YEAR)
    page = write_daily_report(_day(day), scores, nav, book, orders, tmp_path / "full.html",
                              live)
    load = browser.open(page)
    assert load.errors == []
    assert {c["id"]: c["rendered"] for c in load.charts} == {"nav": True, "live-ic": True}
    html = page.read_text()
    for text in ("Live performance", "Live rank IC", "hit rate",
                 "expected at the walk-forward", "oos_traded_sharpe_net_annualized"):
        assert text in html, text

    recent = signals[signals["date"] >= days[-3]]
    early = live_performance("7", recent, labels, nav, days, metrics, 1, 0.2, PER_YEAR)
    page = write_daily_report(_day(day), scores, nav, book, orders, tmp_path / "early.html",
                              early)
    load = browser.open(page)
    assert {c["id"] for c in load.charts} == {"nav"}  # no empty chart
    assert "Too few labels have realized yet" in page.read_text()
