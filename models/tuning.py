"""Optuna search per ensemble member on purged walk-forward folds.

Each objective gets its own study (TPE, median pruning; in the storage ``storage.optuna_url``
names: SQLite by default, which optuna-dashboard opens, or PostgreSQL that many tuning workers
share), named after the dataset fingerprint so that reruns on the same data add to it. The
objective is the mean out-of-sample rank IC. Every trial's long-short Sharpe is kept (also
for pruned trials, over the folds they reached) so that the Deflated Sharpe Ratio can
count all trials tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def tune_member(objective: str, X: pd.DataFrame, y: pd.Series, dates: pd.Series,
                symbols: pd.Series, splits: list[Split], *, sample_weight: np.ndarray | None,
                n_trials: int, seed: int, storage: str, study_name: str, base_params: dict,
                space: SearchSpace, pruner_startup_trials: int, n_jobs: int, quantile: float,
                horizon: int, timeout_s: float | None = None,
                callbacks: list | None = None, family: str | None = None) -> TuningResult:
    """``base_params``: the member parameters that are not searched (``n_estimators``,
    ``seed``, the LambdaRank settings)."""
    study = open_study(study_name, storage, seed=seed,
                       pruner_startup_trials=pruner_startup_trials, objective=objective,
                       family=family)

    def objective_fn(trial: optuna.Trial) -> float:
        params = {**base_params, **suggest(trial, space), "objective": objective}

        def on_fold(k: int, so_far: pd.DataFrame) -> None:
            ls = long_short_returns(so_far, quantile, horizon)
            trial.set_user_attr("sharpe", sharpe(ls))
            trial.set_user_attr("folds", k + 1)
            trial.report(mean_rank_ic(so_far["score"], so_far["label"], so_far["date"]),
                         step=k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        oos = cross_val_predict(lambda: LGBMMember(**params, n_jobs=n_jobs), X, y,
                                dates=dates, symbols=symbols, splits=splits,
                                sample_weight=sample_weight, on_fold=on_fold).predictions
        return mean_rank_ic(oos["score"], oos["label"], oos["date"])

    with TrialProgress(f"tune {objective}", n_trials) as progress:
        study.optimize(objective_fn, n_trials=n_trials, timeout=timeout_s,
                       callbacks=[*(callbacks or []), progress], gc_after_trial=True)
    best = study.best_trial
    sharpes = [t.user_attrs["sharpe"] for t in study.trials if "sharpe" in t.user_attrs]
    return TuningResult(
        study_name=study_name,
        best_params={**base_params, **best.params, "objective": objective},
        best_value=float(best.value),
        n_trials=len(study.trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)],
    )


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
