import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alphaline.models.cv import purged_walk_forward
from alphaline.models.metrics import (
    daily_ic,
    deflated_sharpe,
    expected_max_sharpe,
    long_short_returns,
    probabilistic_sharpe,
    sharpe,
)


def panel(n_dates=300, n_symbols=4):
    dates = pd.bdate_range("2022-01-03", periods=n_dates)
    return pd.Series(np.repeat(dates, n_symbols))


@pytest.mark.parametrize(("horizon", "embargo"), [(1, 0), (5, 3), (10, 10)])
def test_no_training_label_reaches_into_the_test_window(horizon, embargo):
    dates = panel()
    unique = np.unique(dates)
    splits = purged_walk_forward(dates, n_splits=4, horizon=horizon, embargo=embargo,
                                 min_train_days=100)
    assert len(splits) == 4
    for s in splits:
        train_pos = np.searchsorted(unique, dates.iloc[s.train].unique())
        test_pos = np.searchsorted(unique, dates.iloc[s.test].unique())
        # a train row at j has its label over j+1 .. j+1+h; the test's first label starts at a+1
        assert train_pos.max() + 1 + horizon < test_pos.min() + 1
        assert test_pos.min() - train_pos.max() - 1 >= horizon + embargo
        assert not set(s.train) & set(s.test)
    tests = np.concatenate([s.test for s in splits])
    assert len(tests) == len(set(tests))  # every test row once
    assert splits[0].test_start == pd.Timestamp(unique[100])


def test_too_little_history_is_an_error():
    with pytest.raises(ValueError, match="cannot give"):
        purged_walk_forward(panel(50), n_splits=5, horizon=1, embargo=0, min_train_days=60)


def test_ic_and_long_short_on_a_known_case():
    dates = pd.Series(np.repeat(pd.bdate_range("2022-01-03", periods=3), 5))
    label = pd.Series([0.01, 0.02, 0.03, 0.04, 0.05] * 3)
    frame = pd.DataFrame({"date": dates, "score": label * 10, "label": label})
    assert daily_ic(frame, rank=True).tolist() == pytest.approx([1.0, 1.0, 1.0])
    ls = long_short_returns(frame, quantile=0.2, horizon=1)
    assert ls.tolist() == pytest.approx([0.5 * (0.05 - 0.01)] * 3)
    assert len(long_short_returns(frame, 0.2, horizon=2)) == 2  # non-overlapping


def test_psr_matches_the_closed_form():
    sr, n, skew, kurt = 0.1, 250, -0.5, 5.0
    z = (sr - 0.0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert probabilistic_sharpe(sr, n, skew, kurt) == pytest.approx(stats.norm.cdf(z))


def test_deflated_sharpe_worked_example():
    """Bailey & López de Prado (2014), §4: SR 2.5 annual over 1250 days, 100 trials with an
    annualized Sharpe variance of 0.5, skew -3, kurtosis 10: SR0 ≈ 0.1132, DSR ≈ 0.90."""
    daily_var = 0.5 / 250
    sr0 = expected_max_sharpe(daily_var, 100)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert dsr == pytest.approx(0.90, abs=0.01)


def test_more_trials_deflate_more():
    rng = np.random.default_rng(0)
    r = rng.normal(0.002, 0.01, 500)
    trials = list(rng.normal(0, 0.05, 50))
    assert deflated_sharpe(r, trials, 2) > deflated_sharpe(r, trials, 50) > \
        deflated_sharpe(r, trials, 5000)
    assert deflated_sharpe(r, [], 1) == pytest.approx(
        probabilistic_sharpe(sharpe(r), 500, stats.skew(r), stats.kurtosis(r, fisher=False)))


@pytest.mark.parametrize(("horizon", "embargo"), [(1, 0), (5, 3)])
def test_purged_kfold_keeps_labels_apart_on_both_sides(horizon, embargo):
    from alphaline.models.cv import purged_kfold

    dates = panel(200)
    unique = np.unique(dates)
    splits = purged_kfold(dates, n_splits=5, horizon=horizon, embargo=embargo)
    assert len(splits) == 5
    for s in splits:
        train = np.searchsorted(unique, dates.iloc[s.train].to_numpy())
        test = np.searchsorted(unique, dates.iloc[s.test].to_numpy())
        a, b = test.min(), test.max()
        assert not ((train >= a - horizon) & (train <= b + horizon + embargo)).any()
        assert (train < a).any() or (train > b).any()
    assert sorted(np.concatenate([s.test for s in splits])) == list(range(len(dates)))


def test_cpcv_splits_paths_and_purging():
    from math import comb

    from alphaline.models.cv import combinatorial_purged, cpcv_paths

    dates = panel(240)
    unique = np.unique(dates)
    n, k, h, e = 6, 2, 3, 2
    splits = combinatorial_purged(dates, n_groups=n, n_test_groups=k, horizon=h, embargo=e)
    assert len(splits) == comb(n, k) == 15
    for s in splits:
        train = np.searchsorted(unique, dates.iloc[s.train].to_numpy())
        test = np.searchsorted(unique, dates.iloc[s.test].to_numpy())
        assert not set(s.train) & set(s.test)
        # each contiguous test block [a, b]: no training session in [a - h, b + h + e]
        sessions = np.unique(test)
        breaks = np.flatnonzero(np.diff(sessions) > 1)
        starts = np.r_[sessions[0], sessions[breaks + 1]]
        ends = np.r_[sessions[breaks], sessions[-1]]
        assert len(starts) <= k
        for a, b in zip(starts, ends, strict=True):
            assert not ((train >= a - h) & (train <= b + h + e)).any()
    paths = cpcv_paths(splits, n)
    assert len(paths) == comb(n - 1, k - 1) == 5
    for path in paths:
        assert [g for _, g in path] == list(range(n))  # each group once, in time order
        assert all(g in splits[i].test_groups for i, g in path)
    with pytest.raises(ValueError, match="n_test_groups"):
        combinatorial_purged(dates, n_groups=4, n_test_groups=4, horizon=1, embargo=0)
