"""Hand-computed values for the technical, risk, liquidity and cross-sectional families."""

import numpy as np
import pandas as pd
import pytest

from alphaline.errors import ConfigError
from alphaline.features import cross_section, liquidity, risk, technical

DATES = pd.bdate_range("2022-01-03", periods=6)


def wide(values, name="X"):
    return pd.DataFrame({name: np.asarray(values, dtype="float64")},
                        index=pd.bdate_range("2020-01-01", periods=len(values)))


def test_stochastic_k_and_d():
    high, low = wide([10, 11, 12, 13]), wide([8, 9, 10, 11])
    close = wide([9, 10, 11, 12])
    k, d = technical.stochastic(high, low, close, k=3, d=2)
    assert k["X"].iloc[2] == pytest.approx((11 - 8) / (12 - 8))
    assert k["X"].iloc[3] == pytest.approx((12 - 9) / (13 - 9))
    assert d["X"].iloc[3] == pytest.approx((0.75 + 0.75) / 2)


def test_obv_and_accumulation_distribution():
    close, volume = wide([10, 11, 10.5, 10.5]), wide([100, 200, 300, 400])
    assert technical.obv(close, volume)["X"].tolist() == [0, 200, -100, -100]
    high, low = wide([12, 12, 12, 12]), wide([8, 8, 8, 8])
    adl = technical.accumulation_distribution(high, low, wide([12, 8, 10, 11]), volume)
    assert adl["X"].tolist() == pytest.approx([100, -100, -100, -100 + 0.5 * 400])


def test_ttm_squeeze_fires_in_a_quiet_range():
    rng = np.random.default_rng(0)
    quiet = 100 + rng.normal(0, 0.05, 40)
    close = wide(quiet)
    high, low = close + 1.0, close - 1.0  # wide intraday ranges, still closes
    squeeze = technical.ttm_squeeze(high, low, close, 20)["X"]
    assert squeeze.iloc[:20].isna().all() and squeeze.iloc[-1] == 1.0
    loud = wide(100 * np.exp(np.cumsum(rng.normal(0, 0.05, 40))))
    assert technical.ttm_squeeze(loud * 1.001, loud * 0.999, loud, 20)["X"].iloc[-1] == 0.0


def test_hurst_separates_random_walk_trend_and_reversion():
    rng = np.random.default_rng(1)
    n = 3000
    walk = wide(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))
    x = np.zeros(n)
    for t in range(1, n):  # strongly mean-reverting AR(1) in log price
        x[t] = 0.5 * x[t - 1] + rng.normal(0, 0.01)
    reverting = wide(100 * np.exp(x))
    h_walk = technical.hurst(walk, 1000)["X"].iloc[-1]
    h_rev = technical.hurst(reverting, 1000)["X"].iloc[-1]
    assert 0.4 < h_walk < 0.6
    assert h_rev < 0.2


def test_amihud_and_dollar_volume():
    close, volume = wide([10.0, 11.0, 9.9]), wide([1e5, 2e5, 1e5])
    got = liquidity.amihud(close, volume, 2)["X"].iloc[2]
    expected = np.mean([0.1 / (11 * 2e5) * 1e6, 0.1 / (9.9 * 1e5) * 1e6])
    assert got == pytest.approx(expected)


def test_corwin_schultz_matches_the_formula_and_is_never_negative():
    high, low = wide([10.2, 10.3, 10.25]), wide([9.8, 9.9, 9.85])
    got = liquidity.corwin_schultz(high, low, 1)["X"].iloc[1]
    beta = np.log(10.2 / 9.8) ** 2 + np.log(10.3 / 9.9) ** 2
    gamma = np.log(10.3 / 9.8) ** 2
    k = 3 - 2 * np.sqrt(2)
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    assert got == pytest.approx(max(2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha)), 0.0))
    rng = np.random.default_rng(2)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    spread = liquidity.corwin_schultz(wide(c * 1.01), wide(c * 0.99), 20)["X"].dropna()
    assert (spread >= 0).all()


def test_roll_spread_recovers_a_bid_ask_bounce():
    rng = np.random.default_rng(3)
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, 5000)))
    spread = 0.01  # 1 % quoted spread, trades at bid or ask at random
    trade = mid * (1 + spread / 2 * rng.choice([-1, 1], 5000))
    est = liquidity.roll_spread(wide(trade), 4000)["X"].iloc[-1]
    assert est == pytest.approx(spread, rel=0.15)


def test_historical_var_and_cvar():
    r = wide(np.r_[np.zeros(10), [-0.05, -0.04, -0.03, -0.02, -0.01, 0.01, 0.02, 0.03, 0.04,
                                  0.05]])
    var = risk.historical_var(r, 10, 0.8)["X"].iloc[-1]
    assert var == pytest.approx(-np.quantile(r["X"].iloc[-10:], 0.2))
    cvar = risk.historical_cvar(r, 10, 0.8)["X"].iloc[-1]
    assert cvar == pytest.approx(0.045)  # mean of the two worst: -0.05, -0.04
    assert cvar >= var


def test_beta_and_correlation_to_the_benchmark():
    rng = np.random.default_rng(4)
    bench = pd.Series(rng.normal(0, 0.01, 200), index=pd.bdate_range("2020-01-01",
                                                                       periods=200))
    returns = pd.DataFrame({"A": 2 * bench, "B": -0.5 * bench + rng.normal(0, 0.01, 200)})
    beta, corr = risk.beta_and_correlation(returns, bench, 60)
    assert beta["A"].iloc[-1] == pytest.approx(2.0)
    assert corr["A"].iloc[-1] == pytest.approx(1.0)
    assert beta["A"].iloc[:59].isna().all()
    assert -1 < beta["B"].iloc[-1] < 0
    with pytest.raises(ConfigError, match="symbol 'SPY' is not in the data"):
        risk.benchmark_returns(returns, "SPY")


def test_garch_recovers_persistence_and_forecasts_positive_volatility():
    rng = np.random.default_rng(5)
    n, omega, alpha, beta = 1500, 0.02, 0.08, 0.9
    r, var = np.zeros(n), omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = np.sqrt(var) * rng.standard_normal()
        var = omega + alpha * r[t] ** 2 + beta * var
    params = risk._fit(r)
    assert params is not None and 0.9 < params[1] + params[2] < 1.0
    close = wide(100 * np.exp(np.cumsum(r / 100)))
    forecast = risk.garch_forecast(close, refit_every=63)["X"]
    assert forecast.iloc[: risk.GARCH_MIN_OBS - 1].isna().all()
    assert (forecast.dropna() > 0).all()
    realized = np.std(r[-500:]) / 100
    assert forecast.iloc[-500:].mean() == pytest.approx(realized, rel=0.3)


def test_cross_sectional_transforms_use_each_date_alone():
    frame = pd.DataFrame({
        "date": np.repeat(DATES[:2], 5), "symbol": list("ABCDE") * 2,
        "sector": ["x", "x", "y", "y", "y"] * 2,
        "f": [1.0, 2.0, 3.0, 4.0, 100.0, 10.0, 20.0, 30.0, 40.0, 50.0],
    })
    ranked = cross_section.rank(frame, ["f"])
    assert ranked["f"].tolist()[:5] == pytest.approx([-0.3, -0.1, 0.1, 0.3, 0.5])
    z = cross_section.zscore(frame, ["f"])
    assert z.groupby("date")["f"].mean().abs().max() < 1e-12
    clipped = cross_section.winsorize(frame, ["f"], 0.25)
    assert clipped["f"].iloc[4] == pytest.approx(frame["f"].iloc[:5].quantile(0.75))
    assert clipped["f"].iloc[5:].tolist() == [20.0, 20.0, 30.0, 40.0, 40.0]  # own date's tails
    by_sector = cross_section.neutralize(frame, ["f"], ["market", "sector"])
    assert by_sector.groupby(["date", "sector"])["f"].mean().abs().max() < 1e-12
    by_market = cross_section.neutralize(frame.drop(columns="sector"), ["f"], ["market", "sector"])
    assert by_market.groupby("date")["f"].mean().abs().max() < 1e-12
