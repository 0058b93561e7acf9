"""The daily risk report: VaR methods against closed forms, stress maths on a toy book."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alphaline.config import load_params
from alphaline.trading.kill_switches import DayFacts, evaluate_kill_switches
from alphaline.trading.risk_report import (
    SCENARIOS,
    Scenario,
    cornish_fisher_var,
    exposures,
    historical_var,
    monte_carlo_var,
    parametric_var,
    risk_markdown,
    risk_report,
    stress,
)
from tests.conftest import REPO

REPORT = load_params(REPO / "params.yaml").risk.report
C = 0.99
Z = stats.norm.ppf(1 - C)


def test_parametric_matches_the_normal_closed_form():
    var, cvar = parametric_var(mu=100.0, sigma=1_000.0, confidence=C)
    assert var == pytest.approx(-100.0 + 2.326348 * 1_000.0, rel=1e-6)
    assert cvar == pytest.approx(-100.0 + 1_000.0 * stats.norm.pdf(Z) / 0.01, rel=1e-9)
    assert cvar == pytest.approx(-100.0 + 2.665214 * 1_000.0, rel=1e-6)


def test_historical_converges_to_the_closed_form_on_normal_data():
    pnl = np.random.default_rng(0).normal(50.0, 2_000.0, 400_000)
    var, cvar = historical_var(pnl, C)
    exact_var, exact_cvar = parametric_var(50.0, 2_000.0, C)
    assert var == pytest.approx(exact_var, rel=0.02)
    assert cvar == pytest.approx(exact_cvar, rel=0.02)


def test_cornish_fisher_is_normal_without_skew_or_kurtosis_and_heavier_with_them():
    normal = parametric_var(0.0, 1.0, C)
    var, cvar = cornish_fisher_var(0.0, 1.0, 0.0, 0.0, C)
    assert var == pytest.approx(normal[0], rel=1e-9)
    assert cvar == pytest.approx(normal[1], rel=2e-3)  # a midpoint sum of the tail
    # z' = z + (z²−1)S/6 + (z³−3z)K/24 − (2z³−5z)S²/36, by hand
    s, k = -0.5, 3.0
    z_cf = Z + (Z**2 - 1) * s / 6 + (Z**3 - 3 * Z) * k / 24 - (2 * Z**3 - 5 * Z) * s**2 / 36
    assert cornish_fisher_var(0.0, 1.0, s, k, C)[0] == pytest.approx(-z_cf, rel=1e-12)
    assert cornish_fisher_var(0.0, 1.0, s, k, C)[0] > normal[0]  # fat left tail: larger loss


def test_monte_carlo_matches_the_portfolio_normal_and_is_seeded():
    values = pd.Series({"A": 100_000.0, "B": -50_000.0, "C": 30_000.0})
    vols = np.array([0.02, 0.03, 0.01])
    corr = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.1], [0.2, 0.1, 1.0]])
    cov = pd.DataFrame(np.outer(vols, vols) * corr, index=values.index, columns=values.index)
    sigma = float(np.sqrt(values.to_numpy() @ cov.to_numpy() @ values.to_numpy()))
    var, cvar = monte_carlo_var(values, cov, C, 200_000, seed=3)
    exact_var, exact_cvar = parametric_var(0.0, sigma, C)
    assert var == pytest.approx(exact_var, rel=0.02)
    assert cvar == pytest.approx(exact_cvar, rel=0.03)
    assert monte_carlo_var(values, cov, C, 5_000, seed=3) == \
        monte_carlo_var(values, cov, C, 5_000, seed=3)


def test_stress_applies_beta_times_the_market_and_sector_shocks():
    values = pd.Series({"A": 100_000.0, "B": -50_000.0, "C": 20_000.0})
    betas = {"A": 1.2, "B": 0.8}  # C has none: it moves with the market
    crash = Scenario("toy", "t0 → t1", -0.10, "test", sectors={"tech": -0.05})
    row = stress(values, betas, {"A": "tech", "B": "energy"}, 1_000_000.0, [crash])[0]
    expected = 100_000 * (1.2 * -0.10 - 0.05) + -50_000 * (0.8 * -0.10) + 20_000 * -0.10
    assert row["pnl"] == pytest.approx(expected)  # −17,000 + 4,000 − 2,000
    assert row["pnl_pct_nav"] == pytest.approx(expected / 1e6)


def test_documented_scenarios_carry_their_index_moves():
    moves = {s.name: round(s.market, 3) for s in SCENARIOS}
    assert moves == {"2008 Lehman week": -0.076, "2010 flash crash": -0.086,
                     "March 2020": -0.339, "2022 rates shock": -0.254}
    assert all(s.source for s in SCENARIOS)


def test_exposures_of_a_toy_book():
    values = pd.Series({"A": 60_000.0, "B": -40_000.0, "C": 20_000.0})
    e = exposures(values, 1_000_000.0, {"A": 1.5, "B": 1.0, "C": 0.5},
                  {"A": "tech", "B": "tech", "C": "energy"}, top=2)
    assert e["gross"] == pytest.approx(0.12) and e["net"] == pytest.approx(0.04)
    assert e["beta"] == pytest.approx(0.09 - 0.04 + 0.01)
    assert e["sectors"]["tech"] == pytest.approx({"net": 0.02, "gross": 0.10})
    assert [t["symbol"] for t in e["top"]] == ["A", "B"]


def test_the_report_on_a_small_market():
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2023-01-02", periods=300)
    closes = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 4)), axis=0)),
                          index=dates, columns=["A", "B", "C", "D"])
    positions = {"A": 500.0, "B": -300.0, "C": 200.0}
    headroom = [{"rule": "daily_loss", "value": 0.01, "limit": 0.05, "headroom": 0.04}]
    state = {"state": "ACTIVE", "reason": "none", "actor": "rule", "since": "2024-01-02"}
    report = risk_report(positions, closes, 100_000.0, REPORT, state=state, headroom=headroom)
    assert set(report["var"]) == {"historical", "parametric", "cornish_fisher", "monte_carlo"}
    assert all(v["cvar"] >= v["var"] > 0 for v in report["var"].values())
    assert report["history_sessions"] == REPORT.history_sessions
    assert len(report["stress"]) == len(SCENARIOS)
    md = risk_markdown(report)
    for text in ("## Risk", "trading state: **ACTIVE**", "| monte_carlo |", "March 2020",
                 "| daily_loss |", "| top names |"):
        assert text in md
    empty = risk_report({}, closes, 100_000.0, REPORT)
    assert empty["var"] == {} and "## Risk" in risk_markdown(empty)


def test_the_report_carries_the_days_kill_switch_verdict():
    day = dt.date(2024, 1, 2)
    stale = evaluate_kill_switches(pd.DataFrame({"day": [day], "nav": [1e6]}),
                                   DayFacts(day, dt.date(2023, 12, 29)),
                                   load_params(REPO / "params.yaml").risk.kill_switches)
    closes = pd.DataFrame({"A": [10.0, 10.5]}, index=pd.bdate_range("2023-12-28", periods=2))
    report = risk_report({"A": 10.0}, closes, 1e6, REPORT, decision=stale)
    assert report["kill_switches"]["rules"] == ["stale_data"]
    assert "**no trading today**: stale data: the newest validated bar is from 2023-12-29" \
        in risk_markdown(report)
