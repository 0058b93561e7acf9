import numpy as np
import pandas as pd

from alphaline.features.compute import compute_labels
from alphaline.pipelines.synthetic import generate_market, oracle_ic


def test_same_seed_same_market_and_stable_prefix():
    a, _ = generate_market(8, "2022-01-03", "2022-06-30", seed=3)
    b, _ = generate_market(8, "2022-01-03", "2022-06-30", seed=3)
    longer, _ = generate_market(8, "2022-01-03", "2022-09-30", seed=3)
    pd.testing.assert_frame_equal(a, b)
    prefix = longer[longer["date"] <= "2022-06-30"].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, prefix)
    c, _ = generate_market(8, "2022-01-03", "2022-06-30", seed=4)
    assert not np.allclose(a["close"], c["close"])


def test_bars_are_consistent_and_on_the_calendar():
    bars, _ = generate_market(10, "2022-01-03", "2022-12-30", seed=1)
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["volume"] >= 0).all()
    assert pd.Timestamp("2022-07-04") not in set(bars["date"])  # Independence Day
    assert bars["date"].nunique() == 251


def test_returns_have_fat_tails_and_volatility_clustering():
    bars, _ = generate_market(40, "2019-01-02", "2023-12-29", seed=5)
    r = np.log(bars.pivot(index="date", columns="symbol", values="close")).diff().iloc[1:]
    assert r.kurt().mean() > 1.0  # excess kurtosis: fatter than normal
    abs_r = r.abs()
    clustering = np.mean([abs_r[c].autocorr(1) for c in abs_r.columns])
    assert clustering > 0.03


def test_planted_alpha_is_measurable_and_absent_in_noise():
    kwargs = dict(n_symbols=50, start="2021-01-04", end="2022-12-30", seed=9)
    bars, signal = generate_market(alpha_strength=0.1, mode="alpha", **kwargs)
    ic = oracle_ic(signal, compute_labels(bars, 1))
    assert 0.06 < ic < 0.16
    bars, signal = generate_market(alpha_strength=0.1, mode="noise", **kwargs)
    assert abs(oracle_ic(signal, compute_labels(bars, 1))) < 0.02


def test_large_long_market_stays_finite_and_plausible():
    """500 symbols over ten years: the signal must not feed back into volatility."""
    bars, _ = generate_market(500, "2014-01-02", "2023-12-29", seed=3)
    r = np.log(bars.pivot(index="date", columns="symbol", values="close")).diff().iloc[1:]
    assert np.isfinite(r.to_numpy()).all()
    assert np.abs(r.to_numpy()).max() <= 0.4
    assert 0.01 < r.std().mean() < 0.04
