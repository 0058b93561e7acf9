import numpy as np
import pandas as pd
import pytest

from alphaline.errors import ConfigError
from alphaline.features import core
from alphaline.features.compute import compute_features, compute_labels
from alphaline.features.definitions import FEATURES, SETS, feature_names, get
from alphaline.pipelines.synthetic import generate_market

ALL = feature_names(SETS)
RISK = {"risk": {"garch_refit_every": 63}}


@pytest.fixture(scope="module")
def market():
    bars, _ = generate_market(6, "2022-01-03", "2022-12-30", seed=2)
    return bars


def test_registry_sets_are_documented_and_disjoint():
    assert len(feature_names(["core"])) >= 20
    assert len(feature_names(["alpha158"])) == 158
    assert len(set(ALL)) == len(FEATURES) == len(ALL)
    for f in FEATURES:
        assert f.description and f.window >= 1 and f.inputs
        assert (f.compute is None) != (f.family is None)
    with pytest.raises(ConfigError, match="unknown feature sets"):
        feature_names(["core", "astrology"])


def test_unknown_feature_is_an_error():
    with pytest.raises(ConfigError, match="unknown features"):
        get(["ret_5", "alpha_from_the_future"])


@pytest.fixture(scope="module")
def long_market():
    bars, _ = generate_market(4, "2021-01-04", "2022-12-30", seed=2)
    return bars


def test_every_feature_ignores_data_after_t(long_market):
    """Altering or truncating the future never changes a value at or before t, for every
    feature of every set (the cut falls after the first GARCH refits)."""
    market = long_market
    cut = pd.Timestamp("2022-08-15")
    defs = get(ALL)
    full = compute_features(market, defs, family_options=RISK)
    truncated = compute_features(market[market["date"] <= cut], defs, family_options=RISK)
    altered_bars = market.copy()
    later = altered_bars["date"] > cut
    rng = np.random.default_rng(0)
    for col in ("open", "high", "low", "close"):
        altered_bars.loc[later, col] *= rng.uniform(0.5, 2.0, later.sum())
    prices = altered_bars.loc[later, ["open", "high", "low", "close"]]
    altered_bars.loc[later, "high"] = prices.max(axis=1)
    altered_bars.loc[later, "volume"] *= 7
    altered = compute_features(altered_bars, defs, family_options=RISK)
    past = full["date"] <= cut
    for name in ALL:
        a = full.loc[past, name].to_numpy()
        assert np.isfinite(a[-50:]).any(), f"{name} is never defined before the cut"
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


def test_alpha158_matches_the_literal_qlib_transcription():
    from alphaline.features.alpha158_reference import alpha158_reference

    bars, _ = generate_market(5, "2022-01-03", "2022-09-30", seed=8)
    bars.loc[bars.index[7], "volume"] = bars.loc[bars.index[6], "volume"]  # a flat volume day
    fast = compute_features(bars, get(feature_names(["alpha158"])))
    ref = alpha158_reference(bars)
    for name in feature_names(["alpha158"]):
        np.testing.assert_allclose(fast[name].to_numpy(dtype="float64"), ref[name].to_numpy(),
                                   rtol=2e-6, atol=1e-7, equal_nan=True, err_msg=name)


def test_suspended_day_is_a_nan_inside_the_window():
    """A symbol missing a session: windows count sessions (Qlib's calendar rule); a
    fixed-lag feature that reaches the gap is NaN, a Qlib mean skips it."""
    bars, _ = generate_market(3, "2022-01-03", "2022-06-30", seed=8)
    days = bars["date"].unique()
    holed = bars[~((bars["symbol"] == "SYN001") & (bars["date"] == days[50]))]
    feats = compute_features(holed, get(["ret_5", "MA5"]))
    assert len(feats) == len(holed)
    sym = feats[feats["symbol"] == "SYN001"].set_index("date")
    assert days[50] not in sym.index
    assert np.isnan(sym.loc[days[55], "ret_5"])  # close[t-5] is the missing day
    assert np.isfinite(sym.loc[days[56], "ret_5"])
    close = holed[holed["symbol"] == "SYN001"].set_index("date")["close"]
    window = close.loc[days[48]:days[52]]  # four closes: the gap is skipped
    assert len(window) == 4
    assert sym.loc[days[52], "MA5"] == pytest.approx(window.mean() / close.loc[days[52]],
                                                      rel=1e-6)


def test_hand_computed_values():
    dates = pd.bdate_range("2022-01-03", periods=30)
    close = pd.DataFrame({"X": np.arange(100.0, 130.0)}, index=dates)
    assert core.log_return(close, 5)["X"].iloc[10] == pytest.approx(np.log(110 / 105))
    # a steady rise: RSI is 1 (no losses)
    assert core.rsi(close, 14)["X"].iloc[-1] == pytest.approx(1.0)
    falling = pd.DataFrame({"X": np.arange(130.0, 100.0, -1)}, index=dates)
    assert core.rsi(falling, 14)["X"].iloc[-1] == pytest.approx(0.0)
    # Bollinger position of the last point of a line: (x - mean) / (2 sd)
    window = close["X"].iloc[-20:]
    expected = (window.iloc[-1] - window.mean()) / (2 * window.std())
    assert core.bollinger(close, 20)[0]["X"].iloc[-1] == pytest.approx(expected)
    assert core.ma_ratio(close, 5, 20)["X"].iloc[-1] == pytest.approx(
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


def test_zero_volume_day_gives_no_infinities(long_market):
    bars = long_market.copy()
    bars.loc[bars.index[300], "volume"] = 0.0
    feats = compute_features(bars, get(ALL), family_options=RISK)
    values = feats[ALL].to_numpy(dtype="float64")
    assert not np.isinf(values).any()
    row = feats[(feats["symbol"] == bars.loc[bars.index[300], "symbol"])
                & (feats["date"] == bars.loc[bars.index[300], "date"])]
    assert np.isnan(row["amihud_20"].item())  # a return per zero dollars is undefined
    assert np.isfinite(row["volume_z_20"].item())
