"""Per-symbol feature work fanned out through Prefect's Dask task runner.

The flow runs the same ``compute_features`` call on groups of symbols that the
single-process path runs on all of them; ``featurize.build`` joins the parts.
"""

from __future__ import annotations

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from alphaline.config import ParallelParams
from alphaline.pipelines.featurize import ChunkFn, Mapper, serial


@task(cache_policy=NO_CACHE)
def feature_chunk(fn: ChunkFn, part: pd.DataFrame) -> pd.DataFrame:
    return fn(part)


def mapper(parallel: ParallelParams) -> Mapper:
    if parallel.runner == "none":
        return serial
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": parallel.workers,
                                            "threads_per_worker": 1, "processes": True})

    @flow(name="feature_chunks", task_runner=runner)
    def feature_chunks(fn: ChunkFn, parts: list[pd.DataFrame]) -> list[pd.DataFrame]:
        futures = [feature_chunk.submit(fn, part) for part in parts]
        return [f.result() for f in futures]

    return feature_chunks
