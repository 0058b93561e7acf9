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
