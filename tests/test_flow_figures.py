"""The key figures each flow publishes as a table artifact: the same numbers as its report."""

import math

import pytest

from alphaline.flows.backtest import backtest_figures
from alphaline.flows.retrain import retrain_figures
from alphaline.reporting import stats as st
from tests.report_fixtures import synthetic_result


def test_backtest_figures_are_the_reports_headline_after_costs():
    result = synthetic_result(n_days=80)
    rows = backtest_figures(result)
    figures = {r["metric"]: r["value"] for r in rows}
    assert len(figures) == len(rows)  # one row per metric
    daily = result.daily
    headline = st.headline(daily["returns"], st.SESSIONS_PER_YEAR)
    for key in ("sharpe", "max_drawdown", "total_return", "cagr"):
        assert figures[key] == pytest.approx(headline[key]), key
    assert figures["sessions"] == len(daily) and figures["fills"] == len(result.trades)
    assert figures["nav_end"] == pytest.approx(daily["nav"].iloc[-1])
    assert figures["cost_commission"] == pytest.approx(daily["commission"].sum())
    assert math.isfinite(figures["equal_weight_sharpe"])
    # the book's planted edge shows against the equal-weight universe on the same days
    assert figures["sharpe"] > figures["equal_weight_sharpe"]


def test_retrain_figures_carry_the_verdict_and_the_recorded_walk_forward_only():
    oos = {"rank_ic": 0.05, "deflated_sharpe": 0.97, "n_trials": 12.0, "unrelated": 1.0}
    rows = retrain_figures("4", oos, {"promoted": True, "reasons": ["ok"]})
    assert rows == [{"metric": "version", "value": "4"}, {"metric": "promoted", "value": True},
                    {"metric": "rank_ic", "value": 0.05},
                    {"metric": "deflated_sharpe", "value": 0.97},
                    {"metric": "n_trials", "value": 12.0}]
