"""Optuna trials in batches: evaluated here or on a real local Dask cluster through Prefect's
Dask task runner, with the same trials, values, pruning and champion decision."""

import os

import numpy as np
import optuna
import pandas as pd
import pytest

from alphaline.config import TuningParallelParams, load_params
from alphaline.flows.parallel import run_here, trial_runner
from alphaline.models.cv import purged_walk_forward
from alphaline.models.registry import Registry
from alphaline.models.tuning import tune_member
from tests.conftest import REPO, make_project

PARAMS = load_params(REPO / "params.yaml")


def _problem(seed: int = 3):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=160)
    frame = pd.DataFrame([(d, f"S{i:02d}") for d in dates for i in range(12)],
                         columns=["date", "symbol"])
    frame["f1"] = rng.standard_normal(len(frame))
    frame["f2"] = rng.standard_normal(len(frame))
    y = pd.Series(0.02 * frame["f1"] + 0.05 * rng.standard_normal(len(frame)), name="label")
    splits = purged_walk_forward(frame["date"], n_splits=3, horizon=1, embargo=1,
                                 min_train_days=60)
    return frame[["f1", "f2"]], y, frame["date"], frame["symbol"], splits


def _search(storage: str, run, *, n_trials: int, batch: int, X=None):
    X0, y, dates, symbols, splits = _problem()
    common = dict(sample_weight=None, seed=5, storage=storage, study_name="s-regression",
                  base_params={"n_estimators": 15, "seed": 0, "rank_levels": 5,
                               "rank_truncation": 3}, space=PARAMS.tuning.search_space,
                  pruner_startup_trials=2, n_jobs=1, quantile=0.25, horizon=1, batch=batch)
    return run(lambda map_trials: tune_member(
        "regression", X0 if X is None else X, y, dates, symbols, splits, n_trials=n_trials,
        map_trials=map_trials, **common))


def _trials(storage: str, study: str) -> list[tuple]:
    loaded = optuna.load_study(study_name=study, storage=storage)
    return [(t.number, t.state.name, t.params, t.value, dict(t.intermediate_values),
             t.user_attrs.get("sharpe")) for t in loaded.get_trials()]


def test_dask_workers_run_the_same_trials_as_one_process(tmp_path, prefect_harness):
    here = f"sqlite:///{tmp_path / 'here.db'}"
    cluster = f"sqlite:///{tmp_path / 'cluster.db'}"
    one = _search(here, run_here, n_trials=8, batch=4)
    two = _search(cluster, trial_runner(TuningParallelParams(runner="dask", workers=2,
                                                             batch=4)), n_trials=8, batch=4)
    assert (one.n_trials, two.n_trials) == (8, 8)
    assert one.best_params == two.best_params and one.best_value == two.best_value
    assert _trials(here, "s-regression") == _trials(cluster, "s-regression")
    states = [t[1] for t in _trials(here, "s-regression")]
    assert "PRUNED" in states and "COMPLETE" in states  # the batch pruner did prune
    workers = {t.user_attrs["worker"] for t in
               optuna.load_study(study_name="s-regression", storage=cluster).get_trials()}
    assert len(workers) == 2  # two worker processes, neither of them this one
    assert not any(w.endswith(f":{os.getpid()}") for w in workers)


def test_a_failing_trial_is_recorded_and_stops_the_search(tmp_path):
    storage = f"sqlite:///{tmp_path / 'fail.db'}"
    X, *_ = _problem()
    bad = X.assign(f2=["not a number"] * len(X))
    with pytest.raises(RuntimeError, match=r"tuning regression in study s-regression failed: "
                                           r"trial 0: .*trial 1: "):
        _search(storage, run_here, n_trials=4, batch=2, X=bad)
    assert [t[1] for t in _trials(storage, "s-regression")] == ["FAIL", "FAIL"]


def test_retrain_on_two_dask_workers_decides_as_one_process(trained_project, tmp_path):
    """The fixture's retrain ran its trials and its CPCV splits in this process; the same
    project with both on 2-worker clusters tunes the same trials and the gate takes the same
    decision on the same figures."""
    from alphaline.flows.retrain import retrain

    assert trained_project.params.tuning.parallel.runner == "none"
    assert trained_project.params.cv.parallel.runner == "none"
    assert trained_project.params.tuning.parallel.batch > 1
    project = make_project(tmp_path / "dask", tuning__parallel__runner="dask",
                           tuning__parallel__workers=2, cv__parallel__runner="dask",
                           cv__parallel__workers=2)
    out = retrain(root=str(project.root), as_of=project.params.data.end, reason="test")

    name = project.params.model.name
    single = Registry.for_project(trained_project).client.get_model_version(name, "1")
    dask = Registry.for_project(project).client.get_model_version(name, "1")
    gate = {k: v for k, v in single.tags.items() if k.startswith("gate.")}
    assert gate and gate == {k: v for k, v in dask.tags.items() if k.startswith("gate.")}
    assert out["promoted"] == (single.tags["gate.decision"] == "promote")
    # every study of the dask run (the members' and the ensemble's) as the first trials of
    # the single run's study of the same name (later tests may add trials to the fixture's)
    studies = [s.study_name for s in optuna.get_all_study_summaries(project.optuna_url)]
    assert len(studies) == len(project.params.model.objectives) + 1
    for study in studies:
        ran = _trials(project.optuna_url, study)
        assert _trials(trained_project.optuna_url, study)[:len(ran)] == ran
