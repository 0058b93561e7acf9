"""Feature validation: dead features, correlated groups, suspected leaks; version pruning;
fold metrics and the meta-labeled portfolio."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.config import load_params
from alphaline.models.feature_report import (
    correlated_groups,
    dead_features,
    leak_rules,
    permutation_importance,
    validate_features,
)
from alphaline.models.metrics import fold_metrics, long_short_returns, turnover
from alphaline.trading.costs import CostModel, ResearchCosts
from alphaline.trading.portfolio import sized_long_short_weights
from tests.conftest import REPO
from tests.test_ensemble import member, panel

PARAMS = load_params(REPO / "params.yaml")
BARS = PARAMS.feature_validation


def test_dead_and_correlated_features():
    X, _, _, _ = panel(n_dates=60)
    X["flat"] = 1.0
    X["f0_copy"] = X["f0"] * 2 + 0.01 * np.random.default_rng(0).normal(size=len(X))
    X["f0_rank"] = X["f0"].rank()
    assert dead_features(X, BARS.dead_std) == ["flat"]
    groups = correlated_groups(X.drop(columns="flat"), 0.9)
    assert groups == [["f0", "f0_copy", "f0_rank"]]


def test_the_label_shifted_into_the_features_is_a_suspected_leak():
    X, y, _, _ = panel(n_dates=100)
    X["leaked"] = y.to_numpy()  # tomorrow's return, as if it were known today
    report = validate_features(X, y, BARS)
    assert report.suspected_leak
    assert [x["feature"] for x in report.leaks] == ["leaked"]
    assert "with the label" in report.leaks[0]["rule"]
    assert "leaked" in report.markdown()


def test_an_honest_signal_is_not_flagged():
    X, y, dates, _ = panel(n_dates=200, signal=0.3)
    train = (dates < dates.unique()[150]).to_numpy()
    model = member("regression").fit(X[train], y[train], dates=dates[train])
    feats = list(X.columns)
    ins = permutation_importance(model.predict, X[train].reset_index(drop=True),
                                 y[train].reset_index(drop=True), dates[train].to_numpy(), feats)
    oos = permutation_importance(model.predict, X[~train].reset_index(drop=True),
                                 y[~train].reset_index(drop=True), dates[~train].to_numpy(),
                                 feats)
    assert ins.idxmax() == "f0" and oos.idxmax() == "f0" and oos["f0"] > 0.05
    report = validate_features(X, y, BARS, in_sample=ins, out_of_sample=oos)
    assert not report.suspected_leak, report.leaks


def test_importance_only_in_sample_is_a_suspected_leak():
    ins = pd.Series({"a": 0.30, "b": 0.02, "c": 0.01})
    oos = pd.Series({"a": 0.01, "b": 0.02, "c": 0.0})
    leaks = leak_rules(pd.Series({"a": 0.1, "b": 0.0, "c": 0.0}), ins, oos, BARS)
    assert [x["feature"] for x in leaks] == ["a"]
    # the same feature with comparable importance out of sample is fine
    assert not leak_rules(pd.Series({"a": 0.1}), ins, pd.Series({"a": 0.2, "b": 0.02}), BARS)


def test_fold_metrics_and_turnover():
    dates = pd.bdate_range("2022-01-03", periods=4)
    rows = []
    for k, d in enumerate(dates):
        for s, sc in zip("ABCDE", [5, 4, 3, 2, 1] if k < 2 else [1, 2, 3, 4, 5], strict=True):
            rows.append({"fold": k // 2, "date": d, "symbol": s, "score": sc,
                         "label": sc / 100})
    oos = pd.DataFrame(rows)
    t = turnover(oos, 0.2)
    assert t.tolist() == [1.0, 0.0, 2.0, 0.0]  # enter, hold, flip both legs, hold
    gross = long_short_returns(oos, 0.2)
    assert np.allclose(gross, 0.5 * (0.05 - 0.01))
    spread_only = ResearchCosts(CostModel.from_params(PARAMS.broker), 1e6, None, 252.0)
    table = fold_metrics(oos, 0.2, 1, 252.0, spread_only)
    assert list(table["fold"]) == [0, 1]
    assert np.allclose(table["rank_ic"], 1.0) and (table["hit_rate"] == 1.0).all()
    assert (table["turnover"] == 0.5).all()  # each fold enters once, then holds


def test_sized_weights_follow_the_bets_and_stay_neutral():
    sizes = pd.Series({"A": 0.8, "B": 0.6, "C": 0.0, "D": -0.7})
    w = sized_long_short_weights(sizes, gross=1.0, max_weight=0.5)
    assert np.isclose(w["A"], 0.5 * 0.8 / 1.4) and np.isclose(w["D"], -0.5)
    assert w["C"] == 0 and np.isclose(w[w > 0].sum(), 0.5)
    one_sided = sized_long_short_weights(pd.Series({"A": 0.9, "B": 0.6}), 1.0, 0.5)
    assert (one_sided == 0).all()
