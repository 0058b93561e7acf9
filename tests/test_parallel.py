"""Per-symbol fan-out: Prefect's Dask task runner on a real local cluster gives exactly the
single-process result."""

import pandas as pd

from alphaline.config import ParallelParams
from alphaline.flows.parallel import mapper
from alphaline.pipelines import featurize
from alphaline.pipelines.synthetic import generate_market
from tests.conftest import REPO


def test_dask_fanout_equals_single_process(prefect_harness):
    from alphaline.config import load_params

    params = load_params(REPO / "params.yaml").features.model_copy(
        update={"sets": ["core", "alpha158", "risk", "liquidity"]})
    bars, _ = generate_market(6, "2021-01-04", "2022-06-30", seed=4)
    single = featurize.build(bars, params)
    chunked = featurize.build(bars, params, featurize.serial, chunks=4)
    dask = featurize.build(bars, params, mapper(ParallelParams(runner="dask", workers=2,
                                                               chunks=3)), chunks=3)
    pd.testing.assert_frame_equal(single.features, chunked.features)
    pd.testing.assert_frame_equal(single.features, dask.features)
    pd.testing.assert_frame_equal(single.labels, dask.labels)
    assert single.features["beta_60"].notna().sum() > 0


def test_split_keeps_whole_symbols():
    bars, _ = generate_market(7, "2022-01-03", "2022-03-31", seed=4)
    parts = featurize.split_by_symbol(bars, 3)
    assert len(parts) == 3
    assert sum(len(p) for p in parts) == len(bars)
    seen = [set(p["symbol"]) for p in parts]
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])


def test_cpcv_folds_on_dask_equal_the_folds_here(prefect_harness):
    """The gate's CPCV splits fitted as one Prefect task each on a 2-worker cluster give the
    predictions and fold figures of the loop in this process, and the progress callback
    still sees every fold in order."""
    import numpy as np

    from alphaline.config import WorkersParams
    from alphaline.flows.parallel import fold_mapper
    from alphaline.models.cv import combinatorial_purged, cross_val_predict
    from alphaline.models.ensemble import TreeEnsemble

    rng = np.random.default_rng(2)
    days = pd.bdate_range("2022-01-03", periods=120)
    frame = pd.DataFrame([(d, f"S{i:02d}") for d in days for i in range(10)],
                         columns=["date", "symbol"])
    frame["f1"] = rng.standard_normal(len(frame))
    frame["f2"] = rng.standard_normal(len(frame))
    y = 0.02 * frame["f1"] + 0.05 * rng.standard_normal(len(frame))
    splits = combinatorial_purged(frame["date"], 4, 2, 1, 1)
    member = {"objective": "regression", "n_estimators": 15, "seed": 1, "learning_rate": 0.1,
              "num_leaves": 7, "min_child_samples": 20, "feature_fraction": 1.0,
              "bagging_fraction": 1.0, "lambda_l2": 1.0, "rank_levels": 5,
              "rank_truncation": 3}

    def run(map_folds):
        seen = []
        out = cross_val_predict(
            lambda: TreeEnsemble([member, {**member, "objective": "binary"}], stack_folds=2,
                                 horizon=1, embargo=1, redundancy_corr=0.99, n_jobs=1),
            frame[["f1", "f2"]], y, dates=frame["date"], symbols=frame["symbol"],
            splits=splits, on_fold=lambda k, so_far: seen.append((k, len(so_far))),
            map_folds=map_folds)
        return out, seen

    here, seen_here = run(None)
    there, seen_there = run(fold_mapper(WorkersParams(runner="dask", workers=2)))
    assert len(splits) == 6 and seen_here == seen_there
    assert [k for k, _ in seen_there] == list(range(6))
    pd.testing.assert_frame_equal(here.predictions, there.predictions)
    pd.testing.assert_frame_equal(here.folds, there.folds)
    assert fold_mapper(WorkersParams(runner="none", workers=2)) is None
