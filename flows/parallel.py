"""Work fanned out through Prefect's Dask task runner.

Features: the flow runs the same ``compute_features`` call on groups of symbols that the
single-process path runs on all of them; ``featurize.build`` joins the parts.
Tuning: a member's Optuna search evaluates each batch of asked trials on the cluster
(``models.tuning``); the same seed and batch give the same trials as in one process.
The gate: the CPCV splits of a recipe are fitted as one task each (``models.cv``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from alphaline.config import ParallelParams, TuningParallelParams, WorkersParams
from alphaline.models.cv import FoldMap
from alphaline.models.tuning import (
    TrialData,
    TrialJob,
    TrialMap,
    TrialOutcome,
    run_here,
    run_trial,
    shipped_jobs,
)
from alphaline.pipelines.featurize import ChunkFn, Mapper, serial

T = TypeVar("T")


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


# --- Optuna trials: a batch of asked trials evaluated at once on the cluster ------------

TrialRunner = Callable[[Callable[[TrialMap], T]], T]


@task(cache_policy=NO_CACHE)
def tuning_trial(job: TrialJob) -> TrialOutcome:
    return run_trial(job)


def trial_runner(parallel: TuningParallelParams) -> TrialRunner:
    """How a search evaluates its batches: ``run(search)`` calls ``search(map_trials)``.

    With ``dask`` the whole search runs in one flow on one local cluster of ``workers``
    processes (started once, not per batch); the training rows are pickled once to a
    scratch folder that each worker reads once, and each worker reports its trial's folds
    into the study storage the driver asked the trial from (SQLite here, PostgreSQL when
    ``storage.optuna_url`` names one)."""
    if parallel.runner == "none":
        return run_here
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": parallel.workers,
                                            "threads_per_worker": 1, "processes": True})

    @flow(name="tuning_trials", task_runner=runner)
    def tuning_trials(search: Callable[[TrialMap], T]) -> T:
        scratch = Path(tempfile.mkdtemp(prefix="alphaline-trials-"))
        shipped: dict[int, str] = {}

        def on_cluster(jobs: list[TrialJob], data: TrialData) -> list[TrialOutcome]:
            if id(data) not in shipped:
                path = scratch / f"data-{len(shipped)}.pkl"
                pd.to_pickle(data, path)
                shipped[id(data)] = str(path)
            futures = [tuning_trial.submit(job)
                       for job in shipped_jobs(jobs, shipped[id(data)])]
            return [f.result() for f in futures]

        try:
            return search(on_cluster)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return tuning_trials


# --- CV folds: the gate's CPCV splits fitted at once on the cluster ---------------------

@task(cache_policy=NO_CACHE)
def cv_fold(fit_fold: Callable[[int], T], k: int) -> T:
    return fit_fold(k)


def fold_mapper(parallel: WorkersParams) -> FoldMap | None:
    """Where ``cross_val_predict`` fits its folds: here (None), or with ``dask`` one Prefect
    task per fold on a local cluster of ``workers`` processes (one cluster per call: the
    challenger's CPCV, then the champion's)."""
    if parallel.runner == "none":
        return None
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": parallel.workers,
                                            "threads_per_worker": 1, "processes": True})

    @flow(name="cv_folds", task_runner=runner)
    def cv_folds(fit_fold: Callable[[int], T], folds: list[int]) -> list[T]:
        futures = [cv_fold.submit(fit_fold, k) for k in folds]
        return [f.result() for f in futures]

    return cv_folds
