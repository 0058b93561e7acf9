"""The rows the trees' tuning fits on: before the gate's held-out period, every k-th session
with ``tuning.date_stride``, folds purged in those sessions."""

import numpy as np
import pandas as pd

from alphaline.config import load_params
from alphaline.models.cv import holdout_start
from alphaline.pipelines.results import TrainingSet
from alphaline.pipelines.train import folds, tuning_set
from tests.conftest import REPO, SMALL


def _set(n_days: int = 300, n_symbols: int = 4) -> TrainingSet:
    days = pd.bdate_range("2021-01-04", periods=n_days)
    dates = pd.Series(np.repeat(days, n_symbols))
    rng = np.random.default_rng(0)
    return TrainingSet(X=pd.DataFrame({"f": rng.standard_normal(len(dates))}),
                       y=pd.Series(rng.standard_normal(len(dates))), dates=dates,
                       symbols=pd.Series(np.tile([f"S{i}" for i in range(n_symbols)], n_days)),
                       fingerprint="f" * 64)


def test_stride_one_is_the_sessions_before_the_holdout_with_the_usual_folds():
    p = load_params(REPO / "params.yaml").with_overrides({**SMALL, "tuning.date_stride": 1})
    ts = _set()
    sub, keep, splits = tuning_set(ts, p)
    assert (sub.dates < holdout_start(ts.dates, p.gate.holdout_fraction)).all()
    assert keep.sum() == len(sub.dates) and sub.dates.nunique() < ts.dates.nunique()
    want = folds(p, sub)
    assert [(s.train.tolist(), s.test.tolist()) for s in splits] == \
        [(s.train.tolist(), s.test.tolist()) for s in want]


def test_stride_keeps_every_kth_session_and_purges_at_least_the_real_horizon():
    p = load_params(REPO / "params.yaml").with_overrides({
        **SMALL, "tuning.date_stride": 3, "features.label_horizon": 5, "cv.embargo_days": 2})
    ts = _set()
    full, _, _ = tuning_set(ts, p.with_overrides({"tuning.date_stride": 1}))
    sub, keep, splits = tuning_set(ts, p)
    kept = np.sort(sub.dates.unique())
    assert np.array_equal(kept, np.sort(full.dates.unique())[::3])
    assert (ts.dates[keep].reset_index(drop=True) == sub.dates).all()
    assert splits and all(len(s.train) and len(s.test) for s in splits)
    sessions = pd.DatetimeIndex(np.sort(ts.dates.unique()))
    for s in splits:
        # the last training label ends (real sessions) before the first test label starts
        last_train = sessions.get_loc(sub.dates.iloc[s.train].max())
        first_test = sessions.get_loc(sub.dates.iloc[s.test].min())
        assert last_train + 1 + 5 < first_test + 1
