import numpy as np
import pandas as pd
import pytest

from features import technical as ta
from features.compute import compute_features, compute_labels
from features.registry import FEATURES, feature_names, get
from pipelines.synthetic import generate_market


@pytest.fixture(scope="module")
def market():
    bars, _ = generate_market(6, "2022-01-03", "2022-12-30", seed=2)
    return bars


def test_registry_has_at_least_twenty_documented_features():
    assert len(FEATURES) >= 20
    assert len(set(feature_names())) == len(FEATURES)
    for f in FEATURES:
        assert f.description and f.window >= 1 and f.inputs


def test_unknown_feature_is_an_error():
    with pytest.raises(KeyError, match="unknown features"):
        get(["ret_5", "alpha_from_the_future"])


def test_every_feature_ignores_data_after_t(market):
    """Altering or truncating the future never changes a value at or before t."""
    cut = pd.Timestamp("2022-08-15")
    full = compute_features(market)
    truncated = compute_features(market[market["date"] <= cut])
    altered_bars = market.copy()
    later = altered_bars["date"] > cut
    rng = np.random.default_rng(0)
    for col in ("open", "high", "low", "close"):
        altered_bars.loc[later, col] *= rng.uniform(0.5, 2.0, later.sum())
    prices = altered_bars.loc[later, ["open", "high", "low", "close"]]
    altered_bars.loc[later, "high"] = prices.max(axis=1)
    altered_bars.loc[later, "volume"] *= 7
    altered = compute_features(altered_bars)
    past = full["date"] <= cut
    for name in feature_names():
        a = full.loc[past, name].to_numpy()
        np.testing.assert_allclose(a, truncated[name].to_numpy(), equal_nan=True, err_msg=name)
        np.testing.assert_allclose(a, altered.loc[past, name].to_numpy(), equal_nan=True,
                                   err_msg=name)
    # and the future really was changed, so the check above could fail
    assert not np.allclose(full.loc[~past, "ret_5"], altered.loc[~past, "ret_5"], equal_nan=True)


def test_warm_up_rows_are_nan(market):
    feats = compute_features(market).sort_values(["symbol", "date"])
    first = feats.groupby("symbol").head(1)
    assert first["ret_5"].isna().all() and first["vol_20"].isna().all()
    tail = feats.groupby("symbol").nth(100)
    assert tail[feature_names()].notna().all().all()


def test_hand_computed_values():
    dates = pd.bdate_range("2022-01-03", periods=30)
    close = pd.DataFrame({"X": np.arange(100.0, 130.0)}, index=dates)
    assert ta.log_return(close, 5)["X"].iloc[10] == pytest.approx(np.log(110 / 105))
    # a steady rise: RSI is 1 (no losses)
    assert ta.rsi(close, 14)["X"].iloc[-1] == pytest.approx(1.0)
    falling = pd.DataFrame({"X": np.arange(130.0, 100.0, -1)}, index=dates)
    assert ta.rsi(falling, 14)["X"].iloc[-1] == pytest.approx(0.0)
    # Bollinger position of the last point of a line: (x - mean) / (2 sd)
    window = close["X"].iloc[-20:]
    expected = (window.iloc[-1] - window.mean()) / (2 * window.std())
    assert ta.bollinger(close, 20)[0]["X"].iloc[-1] == pytest.approx(expected)
    assert ta.ma_ratio(close, 5, 20)["X"].iloc[-1] == pytest.approx(
        close["X"].iloc[-5:].mean() / close["X"].iloc[-20:].mean() - 1)


def test_label_is_forward_return_from_the_next_bar():
    bars, _ = generate_market(3, "2022-01-03", "2022-03-31", seed=4)
    labels = compute_labels(bars, horizon=3)
    sym = bars[bars["symbol"] == "SYN001"].reset_index(drop=True)
    lab = labels[labels["symbol"] == "SYN001"].reset_index(drop=True)
    t = 10
    expected = sym.loc[t + 4, "close"] / sym.loc[t + 1, "close"] - 1
    assert lab.loc[t, "label"] == pytest.approx(expected)
    assert lab["label"].tail(4).isna().all()  # the last 1 + h days have no label


def test_adjustment_factor_applies_before_features():
    bars, _ = generate_market(2, "2022-01-03", "2022-03-31", seed=4)
    adjusted = bars.copy()
    adjusted["adj_factor"] = 0.5
    a = compute_features(bars)
    b = compute_features(adjusted)
    np.testing.assert_allclose(a["ret_5"], b["ret_5"], equal_nan=True)  # scale-free
    np.testing.assert_allclose(a["dollar_volume_20"], b["dollar_volume_20"], equal_nan=True)
