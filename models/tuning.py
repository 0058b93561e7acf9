"""Optuna search per ensemble member on purged walk-forward folds.

Each objective gets its own study (TPE, median pruning; in the storage ``storage.optuna_url``
names: SQLite by default, which optuna-dashboard opens, or PostgreSQL that many tuning workers
share), named after the dataset fingerprint so that reruns on the same data add to it. The
objective is the mean out-of-sample rank IC. Every trial's long-short Sharpe is kept (also
for pruned trials, over the folds they reached) so that the Deflated Sharpe Ratio can
count all trials tried.

Trials are asked from the seeded sampler in batches of ``batch``; a batch's trials are
evaluated one after another here, or at once on a Dask cluster (``flows.parallel``), each
worker reporting its folds into the shared study storage. A trial is pruned against the
trials completed before its batch started, so the same seed and batch give the same trials,
values and pruning on any runner and any number of workers.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TypeVar

import numpy as np
import optuna
import pandas as pd

from alphaline.config import SearchSpace
from alphaline.console import Progress
from alphaline.models.cv import Split, cross_val_predict
from alphaline.models.lgbm import LGBMMember
from alphaline.models.metrics import long_short_returns, mean_rank_ic, sharpe


@dataclass
class TuningResult:
    study_name: str
    best_params: dict
    best_value: float
    n_trials: int  # every trial in the study, pruned and failed ones included
    trial_sharpes: list[float] = field(default_factory=list)


class TrialProgress:
    """An Optuna callback any study can take: a bar over the study's ``n_trials`` with the
    time left and the best value so far, and one line per finished trial in the run's log
    file. Close it (or use it as a context manager) when ``optimize`` returns."""

    def __init__(self, label: str, n_trials: int, *, disable: bool | None = None, file=None):
        self.progress = Progress(label, n_trials, "trial", disable=disable, file=file)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = ("pruned" if trial.state == optuna.trial.TrialState.PRUNED
                 else "failed" if trial.state == optuna.trial.TrialState.FAIL
                 else f"value {trial.value:.4f}" if trial.value is not None else "no value")
        try:
            best = f"best {study.best_value:.4f}"
        except ValueError:  # no completed trial yet
            best = "no best yet"
        self.progress.advance(f"{state}, {best}")

    def close(self) -> None:
        self.progress.close()

    def __enter__(self) -> TrialProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict:
    """One point of the LightGBM search space that ``tuning.search_space`` declares."""
    out: dict[str, float | int] = {}
    for name, bounds in space.model_dump().items():
        suggest_fn = trial.suggest_int if isinstance(bounds["low"], int) else trial.suggest_float
        out[name] = suggest_fn(name, bounds["low"], bounds["high"], log=bounds["log"])
    return out


def open_study(study_name: str, storage: str, *, seed: int, pruner_startup_trials: int,
               objective: str, family: str | None) -> optuna.Study:
    """A search's study (TPE seeded, median pruning after the first fold), created or
    reopened, tagged with what it tunes and the recipe family whose trials it adds to."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=pruner_startup_trials,
                                           n_warmup_steps=1),
    )
    study.set_user_attr("objective", objective)
    if family is not None:
        study.set_user_attr("family", family)
    return study


@dataclass
class TrialData:
    """What every trial of a member's search fits on (shipped once to each Dask worker)."""

    X: pd.DataFrame
    y: pd.Series
    dates: pd.Series
    symbols: pd.Series
    splits: list[Split]
    sample_weight: np.ndarray | None


@dataclass
class TrialJob:
    """One asked trial: where it lives in the storage and how to evaluate it."""

    storage: str
    study_name: str
    trial_id: int
    number: int
    params: dict
    batch_start: int  # pruned against the trials completed before this trial number
    pruner_startup_trials: int
    quantile: float
    horizon: int
    n_jobs: int
    data_path: str | None = None  # a pickled TrialData, for a worker in another process


@dataclass
class TrialOutcome:
    number: int
    state: str  # "complete" | "pruned" | "fail"
    value: float | None = None
    error: str | None = None


TrialMap = Callable[[list[TrialJob], TrialData], list[TrialOutcome]]
T = TypeVar("T")


def serial_trials(jobs: list[TrialJob], data: TrialData) -> list[TrialOutcome]:
    """Evaluate a batch here, one trial after another."""
    return [run_trial(job, data) for job in jobs]


def run_here(search: Callable[[TrialMap], T]) -> T:
    """Run a search's trial batches in this process (``flows.parallel.trial_runner`` runs
    them on a Dask cluster instead)."""
    return search(serial_trials)


class _CompletedBefore:
    """A study as a pruner sees it when only the trials numbered below ``before`` exist."""

    def __init__(self, study: optuna.Study, before: int):
        self._study, self._before = study, before

    def get_trials(self, deepcopy: bool = True, states=None):
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states)
                if t.number < self._before]

    def __getattr__(self, name: str):
        return getattr(self._study, name)


class BatchPruner(optuna.pruners.BasePruner):
    """Median pruning against the trials completed before the trial's batch started: what
    a batch-mate finishes first cannot change the decision, so runs are reproducible."""

    def __init__(self, n_startup_trials: int, batch_start: int):
        self._median = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                                   n_warmup_steps=1)
        self._batch_start = batch_start

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self._median.prune(_CompletedBefore(study, self._batch_start), trial)


@lru_cache(maxsize=1)
def _shipped(path: str) -> TrialData:
    return pd.read_pickle(path)


def run_trial(job: TrialJob, data: TrialData | None = None) -> TrialOutcome:
    """Fit the member on each fold, report the running rank IC into the trial's storage and
    stop when pruned. Runs wherever the job is sent; ``data`` None reads ``job.data_path``
    (once per worker process)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = data if data is not None else _shipped(job.data_path)
    study = optuna.load_study(study_name=job.study_name, storage=job.storage,
                              pruner=BatchPruner(job.pruner_startup_trials, job.batch_start))
    trial = optuna.trial.Trial(study, job.trial_id)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

    def on_fold(k: int, so_far: pd.DataFrame) -> None:
        ls = long_short_returns(so_far, job.quantile, job.horizon)
        trial.set_user_attr("sharpe", sharpe(ls))
        trial.set_user_attr("folds", k + 1)
        trial.report(mean_rank_ic(so_far["score"], so_far["label"], so_far["date"]), step=k)
        if trial.should_prune():
            raise optuna.TrialPruned()

    try:
        oos = cross_val_predict(lambda: LGBMMember(**job.params, n_jobs=job.n_jobs), data.X,
                                data.y, dates=data.dates, symbols=data.symbols,
                                splits=data.splits, sample_weight=data.sample_weight,
                                on_fold=on_fold).predictions
    except optuna.TrialPruned:
        return TrialOutcome(job.number, "pruned")
    except Exception as exc:  # recorded as a failed trial; the driver raises it
        return TrialOutcome(job.number, "fail", error=f"{type(exc).__name__}: {exc}")
    return TrialOutcome(job.number, "complete",
                        mean_rank_ic(oos["score"], oos["label"], oos["date"]))


def tune_member(objective: str, X: pd.DataFrame, y: pd.Series, dates: pd.Series,
                symbols: pd.Series, splits: list[Split], *, sample_weight: np.ndarray | None,
                n_trials: int, seed: int, storage: str, study_name: str, base_params: dict,
                space: SearchSpace, pruner_startup_trials: int, n_jobs: int, quantile: float,
                horizon: int, timeout_s: float | None = None,
                callbacks: list | None = None, family: str | None = None, batch: int = 1,
                map_trials: TrialMap = serial_trials) -> TuningResult:
    """``base_params``: the member parameters that are not searched (``n_estimators``,
    ``seed``, the LambdaRank settings). ``n_trials`` more trials are added to the study, in
    batches of ``batch`` that ``map_trials`` evaluates (here, or on a Dask cluster); no new
    batch starts after ``timeout_s``."""
    study = open_study(study_name, storage, seed=seed,
                       pruner_startup_trials=pruner_startup_trials, objective=objective,
                       family=family)
    data = TrialData(X, y, dates, symbols, splits, sample_weight)
    started, asked = time.monotonic(), 0
    with TrialProgress(f"tune {objective}", n_trials) as progress:
        while asked < n_trials and (timeout_s is None
                                    or time.monotonic() - started < timeout_s):
            trials = [study.ask() for _ in range(min(batch, n_trials - asked))]
            asked += len(trials)
            jobs = []
            for trial in trials:
                params = {**base_params, **suggest(trial, space), "objective": objective}
                jobs.append(TrialJob(storage, study_name, trial._trial_id, trial.number,
                                     params, trials[0].number, pruner_startup_trials,
                                     quantile, horizon, n_jobs))
            outcomes = {o.number: o for o in map_trials(jobs, data)}
            failed = []
            for trial in trials:
                outcome = outcomes[trial.number]
                if outcome.state == "complete":
                    frozen = study.tell(trial, outcome.value)
                elif outcome.state == "pruned":
                    frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    frozen = study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    failed.append(f"trial {trial.number}: {outcome.error}")
                for callback in [*(callbacks or []), progress]:
                    callback(study, frozen)
            if failed:
                raise RuntimeError(f"tuning {objective} in study {study_name} failed: "
                                   + "; ".join(failed))
    best = study.best_trial
    sharpes = [t.user_attrs["sharpe"] for t in study.trials if "sharpe" in t.user_attrs]
    return TuningResult(
        study_name=study_name,
        best_params={**base_params, **best.params, "objective": objective},
        best_value=float(best.value),
        n_trials=len(study.trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)],
    )


def shipped_jobs(jobs: list[TrialJob], path: str) -> list[TrialJob]:
    """The jobs pointed at a pickled :class:`TrialData` (for workers in other processes)."""
    return [replace(job, data_path=path) for job in jobs]


def record_ensemble(storage: str, study_name: str, rank_ic: float, sharpe_ratio: float,
                    family: str | None = None) -> TuningResult:
    """Add the stacked ensemble's own walk-forward result as a trial of its own study, so
    that every ensemble ever evaluated on this dataset counts towards the DSR too."""
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                load_if_exists=True)
    study.set_user_attr("objective", "ensemble")
    if family is not None:
        study.set_user_attr("family", family)
    study.add_trial(optuna.trial.create_trial(value=rank_ic, params={}, distributions={},
                                              user_attrs={"sharpe": sharpe_ratio}))
    sharpes = [t.user_attrs["sharpe"] for t in study.trials if "sharpe" in t.user_attrs]
    return TuningResult(study_name=study_name, best_params={}, best_value=float(
        study.best_value), n_trials=len(study.trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)])


@dataclass
class FamilyTrials:
    """Every trial of a recipe family ever recorded in the study storage: the count and the
    per-period Sharpe estimates the Deflated Sharpe Ratio needs."""

    family: str
    n_trials: int
    trial_sharpes: list[float]
    studies: int

    @property
    def sharpe_variance(self) -> float:
        return float(np.var(self.trial_sharpes, ddof=1)) if len(self.trial_sharpes) > 1 else 0.0


def recipe_family(model_name: str, objectives: list[str], feature_sets: list[str],
                  horizon: int) -> str:
    """What makes two trials the same search: the objectives, the feature sets and the
    horizon (not the data: a monthly refresh is the same search run again, so its trials
    add to the multiple-testing penalty instead of restarting it)."""
    return (f"{model_name}|objectives={','.join(sorted(objectives))}"
            f"|features={','.join(sorted(feature_sets))}|h={horizon}")


def family_trials(storage: str, family: str) -> FamilyTrials:
    """The trial ledger of ``family``: every study in ``storage`` tagged with it. A family
    joined with `` + `` (a stack chosen after several searches) counts all of theirs."""
    if " + " in family:
        parts = [family_trials(storage, part) for part in family.split(" + ")]
        return FamilyTrials(family, sum(t.n_trials for t in parts),
                            [s for t in parts for s in t.trial_sharpes],
                            sum(t.studies for t in parts))
    count, sharpes, studies = 0, [], 0
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.user_attrs.get("family") != family:
            continue
        studies += 1
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        count += len(trials)
        sharpes += [float(t.user_attrs["sharpe"]) for t in trials
                    if "sharpe" in t.user_attrs and np.isfinite(t.user_attrs["sharpe"])]
    return FamilyTrials(family, count, sharpes, studies)
