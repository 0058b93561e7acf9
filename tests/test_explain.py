"""Serving reasons: LightGBM's own TreeSHAP equals shap's, and the ensemble's contributions
decompose its score exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from alphaline.models.ensemble import TreeEnsemble, per_date_zscore
from alphaline.models.explain import top_contributions, tree_shap

SMALL = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 40, "learning_rate": 0.05,
         "feature_fraction": 0.8, "bagging_fraction": 0.8, "lambda_l2": 1.0, "rank_levels": 5,
         "rank_truncation": 30}


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    dates = np.repeat(pd.bdate_range("2022-01-03", periods=90), 30)
    X = pd.DataFrame(rng.normal(size=(len(dates), 6)), columns=[f"f{i}" for i in range(6)])
    X.iloc[rng.choice(len(X), 200, replace=False), 2] = np.nan  # LightGBM routes NaNs
    y = pd.Series(0.4 * X["f0"] - 0.2 * X["f1"] * X["f3"] + rng.normal(size=len(X)))
    members = [{"objective": o, "seed": 1, **SMALL}
               for o in ("regression", "lambdarank", "binary")]
    model = TreeEnsemble(members, stack_folds=2, horizon=1, embargo=0, redundancy_corr=0.99,
                         n_jobs=1).fit(X, y, dates=pd.Series(dates))
    model.weights_ = np.array([0.5, 0.3, 0.2])  # every member counts, whatever the stacking
    return model, X, pd.Series(dates)


def test_lightgbm_treeshap_equals_shaps(fitted):
    model, X, _ = fitted
    values = X.to_numpy(dtype="float32")[-300:]
    for member in model.members_:
        phi, margin = tree_shap(member.booster_, values, 1)
        expected = np.asarray(shap.TreeExplainer(member.booster_).shap_values(values))
        assert phi.shape == expected.shape == values.shape
        np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-9, err_msg=member.objective)
        raw = member.booster_.predict(values, raw_score=True)
        np.testing.assert_allclose(margin, raw, rtol=0, atol=1e-9, err_msg=member.objective)
        assert np.abs(phi).max() > 1e-3  # the model really uses its features


def shap_decomposition(model: TreeEnsemble, X: pd.DataFrame, dates) -> np.ndarray:
    """The decomposition through shap's TreeExplainer, as serving computed it before."""
    values = X.to_numpy(dtype="float32")
    _, std = per_date_zscore(model.member_predictions(X), dates)
    total = np.zeros(values.shape)
    for m, member in enumerate(model.members_):
        phi = np.asarray(shap.TreeExplainer(member.booster_).shap_values(values))
        total += phi * (model.weights_[m] / std[:, m])[:, None]
    return total


@pytest.mark.parametrize("cross_sections", [1, 4])
def test_ensemble_contributions_decompose_its_score(fitted, cross_sections):
    model, X, dates = fitted
    last = dates.isin(dates.drop_duplicates().iloc[-cross_sections:]).to_numpy()
    rows, day = X[last], None if cross_sections == 1 else dates[last].to_numpy()
    phi = model.contributions(rows, dates=day)
    np.testing.assert_allclose(phi, shap_decomposition(model, rows, day), rtol=0, atol=1e-9)
    offset = pd.Series(phi.sum(axis=1) - model.predict(rows, dates=day))
    per_date = offset.groupby(np.zeros(len(rows)) if day is None else day)
    assert per_date.agg(np.ptp).max() < 1e-9  # within a date the ranks are explained exactly
    if cross_sections > 1:
        assert per_date.mean().nunique() > 1  # dates really are scaled apart


def test_a_member_without_weight_adds_nothing(fitted):
    model, X, dates = fitted
    rows = X[(dates == dates.max()).to_numpy()]
    full = model.contributions(rows, dates=None)
    weights = model.weights_.copy()
    try:
        model.weights_ = np.array([1.0, 0.0, 0.0])
        alone = model.contributions(rows, dates=None)
    finally:
        model.weights_ = weights
    std = per_date_zscore(model.member_predictions(rows), None)[1][0, 0]
    phi, _ = tree_shap(model.members_[0].booster_, rows.to_numpy(dtype="float32"), 1)
    np.testing.assert_allclose(alone, phi / std, rtol=1e-12)
    assert not np.allclose(alone, full)


def test_top_contributions_are_the_largest_by_magnitude():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(50, 8)), columns=[f"x{i}" for i in range(8)])
    values = rng.normal(size=X.shape)
    reasons = top_contributions(values, X, 3)
    assert len(reasons) == 50
    for i, row in enumerate(reasons):
        order = np.argsort(-np.abs(values[i]))[:3]
        assert [r["feature"] for r in row] == [X.columns[j] for j in order]
        assert [r["shap"] for r in row] == [values[i, j] for j in order]
        assert [r["value"] for r in row] == [X.iat[i, j] for j in order]
    assert all(len(r) == 8 for r in top_contributions(values, X, 20))
    assert top_contributions(values[:0], X.iloc[:0], 5) == []


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"max_depth": 12,
                                                                     "num_leaves": 63}])
def test_leaf_tables_equal_lightgbms_treeshap(params):
    """Missing values both ways (NaN, and zero as missing), exact zeros, long paths."""
    import lightgbm as lgb

    from alphaline.models import treeshap

    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, 5)).astype("float32")
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    y = np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) \
        + rng.normal(size=len(X))
    booster = lgb.train({"objective": "regression", "num_leaves": 15, "verbosity": -1,
                         "min_data_in_leaf": 20, "num_threads": 1, **params},
                        lgb.Dataset(X, y), 40)
    tables = treeshap.build(booster)
    assert tables is not None
    rows = X[:300]
    expected = booster.predict(rows, pred_contrib=True, num_threads=1)
    np.testing.assert_allclose(treeshap.contributions(tables, rows), expected, rtol=0,
                               atol=1e-9)


def test_a_categorical_booster_goes_to_lightgbm():
    import lightgbm as lgb

    from alphaline.models import treeshap

    rng = np.random.default_rng(8)
    X = np.column_stack([rng.integers(0, 6, 3000), rng.normal(size=3000)]).astype("float32")
    y = (X[:, 0] == 3) * 2.0 + X[:, 1] + rng.normal(size=3000)
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X, y, categorical_feature=[0]), 20)
    assert treeshap.build(booster) is None
    phi, margin = tree_shap(booster, X[:100], 1)
    expected = booster.predict(X[:100], pred_contrib=True)
    np.testing.assert_allclose(phi, expected[:, :-1], atol=1e-12)
    np.testing.assert_allclose(margin, booster.predict(X[:100]), atol=1e-9)


def test_saved_model_carries_its_tables(fitted, tmp_path):
    """A loaded model's first reasons read the tables saved with it: no rebuild."""
    from alphaline.models.explain import shap_tables

    model, X, dates = fitted
    loaded = TreeEnsemble.load(model.save(tmp_path / "ens"))
    assert sorted(p.name for p in (tmp_path / "ens").glob("*.treeshap.npz")) == sorted(
        f"{n}.treeshap.npz" for n in model.member_names)
    for member in loaded.members_:
        assert hasattr(member.booster_, "_alphaline_treeshap_tables")  # read, not built
        assert shap_tables(member.booster_) is not None
    rows = X[(dates == dates.max()).to_numpy()]
    np.testing.assert_allclose(loaded.contributions(rows, dates=None),
                               model.contributions(rows, dates=None), rtol=0, atol=1e-12)
