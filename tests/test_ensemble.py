"""Ensemble members, stacking without in-fold leakage, sample weights, meta-labeling."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from alphaline.models.ensemble import TreeEnsemble, per_date_zscore, stack_weights
from alphaline.models.lgbm import LGBMMember
from alphaline.models.meta_label import (
    MetaLabeler,
    bet_size,
    side_correct,
    sides,
    walk_forward_meta,
    with_primary_score,
)
from alphaline.models.metrics import mean_rank_ic
from alphaline.models.weights import label_uniqueness, sample_weights, time_decay


def panel(n_dates: int = 300, n_symbols: int = 40, seed: int = 0, signal: float = 0.3):
    """Rows (date, symbol); label = signal × f0 + noise; f1..f5 are noise."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_symbols)]],
                                     names=["date", "symbol"]).to_frame(index=False)
    X = pd.DataFrame(rng.normal(size=(len(idx), 6)), columns=[f"f{i}" for i in range(6)])
    y = pd.Series(signal * X["f0"] + rng.normal(size=len(idx)))
    return X, y, idx["date"], idx["symbol"]


SMALL = {"n_estimators": 40, "num_leaves": 7, "min_child_samples": 50, "learning_rate": 0.05,
         "feature_fraction": 0.8, "bagging_fraction": 0.8, "lambda_l2": 1.0, "rank_levels": 5,
         "rank_truncation": 30}


def member(objective: str, seed: int = 1, **overrides) -> LGBMMember:
    return LGBMMember(**{**SMALL, "objective": objective, "seed": seed, **overrides}, n_jobs=2)


def ensemble(members: list[dict], *, stack_folds: int = 2, horizon: int = 1, embargo: int = 5,
             redundancy_corr: float = 0.95) -> TreeEnsemble:
    return TreeEnsemble(members, stack_folds=stack_folds, horizon=horizon, embargo=embargo,
                        redundancy_corr=redundancy_corr, n_jobs=2)


def meta_labeler(**overrides) -> MetaLabeler:
    return MetaLabeler(**{"quantile": 0.2, "threshold": 0.5, "n_estimators": 100,
                          "num_leaves": 7, "min_child_samples": 200, "learning_rate": 0.05,
                          "seed": 0, "n_jobs": 2, **overrides})


@pytest.mark.parametrize("objective", ["regression", "lambdarank", "binary"])
def test_each_objective_learns_the_signal(objective):
    X, y, dates, _ = panel()
    train = dates < dates.unique()[200]
    model = member(objective).fit(X[train], y[train], dates=dates[train])
    test = ~train
    ic = mean_rank_ic(model.predict(X[test]), y[test], dates[test])
    assert ic > 0.1, (objective, ic)


def test_lambdarank_accepts_rows_in_any_order():
    """Rows arrive in any order; each date must still be one query."""
    X, y, dates, _ = panel(n_dates=250)
    train = (dates < dates.unique()[180]).to_numpy()
    rows = np.flatnonzero(train)
    shuffled = np.random.default_rng(1).permutation(rows)
    ics = []
    for order in (rows, shuffled):
        m = member("lambdarank").fit(X.iloc[order], y.iloc[order], dates=dates.iloc[order])
        ics.append(mean_rank_ic(m.predict(X[~train]), y[~train], dates[~train]))
    assert min(ics) > 0.15 and abs(ics[0] - ics[1]) < 0.03, ics


def test_stacking_is_fitted_only_on_out_of_fold_predictions():
    X, y, dates, _ = panel(n_dates=200)
    members = [{"objective": "regression", "seed": 1, **SMALL},
               {"objective": "binary", "seed": 2, **SMALL}]
    model = ensemble(members, stack_folds=3, horizon=2, embargo=3).fit(X, y, dates=dates)
    sessions = np.unique(dates)
    pos = np.searchsorted(sessions, dates.to_numpy())
    covered = np.zeros(len(X), dtype=int)
    for split in model.stack_splits_:
        assert not set(split.train) & set(split.test)
        a, b = pos[split.test].min(), pos[split.test].max()
        train_pos = pos[split.train]
        # no training label overlaps the test block's labels, nor its embargo
        assert not ((train_pos >= a - 2) & (train_pos <= b + 2 + 3)).any()
        covered[split.test] += 1
    assert (covered == 1).all()  # every row gets exactly one out-of-fold prediction


def test_stacking_does_not_reward_a_member_that_memorizes():
    """A member that memorizes its training rows looks perfect in-fold and is useless out of
    fold: stacking on in-fold predictions would give it the weight."""
    X, y, dates, _ = panel(n_dates=200, signal=0.2)
    honest = {"objective": "regression", "seed": 1, **SMALL}
    memorizer = {"objective": "regression", "seed": 2, "n_estimators": 300, "num_leaves": 255,
                 "min_child_samples": 1, "learning_rate": 0.3, "feature_fraction": 1.0,
                 "bagging_fraction": 1.0, "lambda_l2": 0.0, "rank_levels": 5,
                 "rank_truncation": 30}
    model = ensemble([honest, memorizer], stack_folds=3, horizon=1, embargo=2
                     ).fit(X, y, dates=dates)
    assert model.weights_[0] > model.weights_[1]
    # the same meta-learner fitted on in-fold (training) predictions prefers the memorizer
    Z, _ = per_date_zscore(model.member_predictions(X), dates.to_numpy())
    from alphaline.models.lgbm import cross_sectional_rank

    in_fold, _ = stack_weights(Z, cross_sectional_rank(y, dates).to_numpy(), None)
    assert in_fold[1] > in_fold[0]


def test_contributions_decompose_the_score_exactly():
    X, y, dates, _ = panel(n_dates=120)
    members = [{"objective": o, "seed": 1, **SMALL} for o in ("regression", "binary")]
    model = ensemble(members).fit(X, y, dates=dates)
    day = dates == dates.max()
    score = model.predict(X[day], dates=None)
    phi = model.contributions(X[day], dates=None)
    offset = phi.sum(axis=1) - score
    assert np.ptp(offset) < 1e-9  # a per-date constant: ranks are explained exactly
    assert np.abs(phi[:, 0]).mean() > np.abs(phi[:, 1:]).mean(axis=0).max()


def test_save_and_load_give_identical_scores(tmp_path):
    X, y, dates, _ = panel(n_dates=100)
    members = [{"objective": o, "seed": 1, **SMALL} for o in ("regression", "lambdarank")]
    model = ensemble(members).fit(X, y, dates=dates)
    loaded = TreeEnsemble.load(model.save(tmp_path / "ens"))
    assert np.array_equal(model.predict(X[:40], dates=None), loaded.predict(X[:40], dates=None))
    assert np.array_equal(model.weights_, loaded.weights_)


def test_redundant_members_are_logged(caplog):
    X, y, dates, _ = panel(n_dates=120, signal=0.6)
    same = [{"objective": "regression", "seed": s, **SMALL, "bagging_fraction": 1.0,
             "feature_fraction": 1.0} for s in (1, 2)]
    with caplog.at_level(logging.INFO, logger="alphaline.models.ensemble"):
        model = ensemble(same, redundancy_corr=0.9).fit(X, y, dates=dates)
    assert model.redundant_ and model.diversity_.iloc[0, 1] > 0.9
    assert "redundant" in caplog.text


def test_uniqueness_of_overlapping_labels():
    dates = pd.Series(pd.bdate_range("2022-01-03", periods=10))
    symbols = pd.Series(["A"] * 10)
    u = label_uniqueness(dates, symbols, horizon=3)
    # interior rows share each of their 3 returns with 2 other labels: uniqueness 1/3
    assert np.allclose(u[3:7], 1 / 3)
    # the first row's first return is its alone (1), the second shared by 2, the third by 3
    assert np.isclose(u[0], (1 + 1 / 2 + 1 / 3) / 3)
    assert np.allclose(label_uniqueness(dates, symbols, horizon=1), 1.0)
    # a second symbol does not change the first's concurrency
    both = label_uniqueness(pd.concat([dates, dates]), pd.Series(["A"] * 10 + ["B"] * 10), 3)
    assert np.allclose(both[:10], u) and np.allclose(both[10:], u)


def test_time_decay_halves_every_half_life():
    dates = pd.Series(pd.bdate_range("2022-01-03", periods=21))
    w = time_decay(dates, half_life_days=10)
    assert w[-1] == 1.0 and np.isclose(w[-11], 0.5) and np.isclose(w[0], 0.25)
    assert (time_decay(dates, None) == 1).all()
    combined = sample_weights(dates, pd.Series(["A"] * 21), 1, uniqueness=True,
                              half_life_days=10)
    assert np.isclose(combined.mean(), 1.0) and combined[-1] > combined[0]


def test_meta_label_sides_and_bet_sizes():
    score = np.array([0.9, 0.1, -0.5, 0.3, -0.9])
    dates = np.zeros(5)
    side = sides(score, dates, quantile=0.2)
    assert side.tolist() == [1, 0, 0, 0, -1]
    right = side_correct(side, np.array([0.02, 0.0, 0.0, 0.0, 0.03]), dates)
    assert right.tolist() == [1, 0, 0, 0, 0]  # the short went up: wrong
    assert bet_size(side, np.array([0.7, 0.9, 0.9, 0.9, 0.4]), 0.5).tolist() == [0.7, 0, 0, 0, 0]


def test_meta_labeler_learns_when_the_primary_is_right():
    """The primary is right only where f1 > 0: the secondary must find that."""
    rng = np.random.default_rng(3)
    X, _, dates, _ = panel(n_dates=250, signal=0.0)
    score = X["f0"].to_numpy()
    y = np.where(X["f1"] > 0, score, -score) + 0.3 * rng.normal(size=len(X))
    train = (dates < dates.unique()[180]).to_numpy()
    meta = meta_labeler().fit(with_primary_score(X[train], score[train]), y[train],
                              dates=dates[train].to_numpy())
    test = ~train
    sized = meta.size(with_primary_score(X[test], score[test]), dates=dates[test].to_numpy())
    traded = sized["side"].to_numpy() != 0
    prob = sized["probability"].to_numpy()[traded]
    f1 = X.loc[test, "f1"].to_numpy()[traded]
    assert prob[f1 > 0].mean() > 0.7 > 0.3 > prob[f1 <= 0].mean()


def test_walk_forward_meta_never_trains_on_its_own_fold():
    X, y, dates, symbols = panel(n_dates=200)
    sessions = dates.unique()
    fold = np.searchsorted(sessions[[50, 100, 150]], dates.to_numpy(), side="right")
    oos = pd.DataFrame({"fold": fold, "row": np.arange(len(X)), "date": dates,
                        "symbol": symbols, "score": X["f0"], "label": y})
    seen = []
    original_fit = MetaLabeler.fit

    def spy(self, X_, y_, *, dates, sample_weight=None):
        seen.append(pd.to_datetime(dates).max())
        return original_fit(self, X_, y_, dates=dates, sample_weight=sample_weight)

    MetaLabeler.fit = spy
    try:
        sized = walk_forward_meta(oos, X, meta_labeler, gap_days=6)
    finally:
        MetaLabeler.fit = original_fit
    assert set(sized["fold"]) == {1, 2, 3}
    for k, last_train in zip([1, 2, 3], seen, strict=True):
        first_test = oos.loc[oos["fold"] == k, "date"].min()
        gap = np.searchsorted(sessions, first_test) - np.searchsorted(sessions, last_train)
        assert gap > 6


def test_every_model_refuses_to_predict_unfitted():
    from sklearn.exceptions import NotFittedError

    X, _, dates, _ = panel(n_dates=5)
    for model in (member("regression"), ensemble([{**SMALL, "objective": "binary", "seed": 1}]),
                  meta_labeler()):
        with pytest.raises(NotFittedError):
            model.predict(with_primary_score(X, X["f0"]) if isinstance(model, MetaLabeler)
                          else X, dates=dates)


def test_members_and_ensembles_clone_with_their_parameters():
    from sklearn.base import clone

    m = member("lambdarank", seed=3)
    assert clone(m).get_params() == m.get_params()
    e = ensemble([{**SMALL, "objective": "binary", "seed": 1}], stack_folds=4)
    assert clone(e).get_params()["stack_folds"] == 4
