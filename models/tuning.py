"""Optuna search per ensemble member on purged walk-forward folds.

Each objective gets its own study (TPE, median pruning, SQLite: optuna-dashboard opens the
file), named after the dataset fingerprint so that reruns on the same data add to it. The
objective is the mean out-of-sample rank IC. Every trial's long-short Sharpe is kept (also
for pruned trials, over the folds they reached) so that the Deflated Sharpe Ratio can
count all trials tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd
from alphaline.models.cv import Split
from alphaline.models.lgbm import LGBMMember
from alphaline.models.metrics import daily_ic, long_short_returns, sharpe


@dataclass
class TuningResult:
    study_name: str
    best_params: dict
    best_value: float
    n_trials: int  # every trial in the study, pruned and failed ones included
    trial_sharpes: list[float] = field(default_factory=list)


def search_space(trial: optuna.Trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def out_of_sample(make_model: Callable[[], object], X: pd.DataFrame, y: pd.Series,
                  dates: pd.Series, symbols: pd.Series, splits: list[Split],
                  sample_weight: np.ndarray | None = None,
                  on_fold: Callable[[int, pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """Fit a fresh model on each fold's training rows and score its test rows.

    Returns ``fold, row, date, symbol, score, label`` (``row``: position in ``X``).
    """
    parts = []
    for k, split in enumerate(splits):
        w = None if sample_weight is None else np.asarray(sample_weight)[split.train]
        model = make_model().fit(X.iloc[split.train], y.iloc[split.train],
                                 dates.iloc[split.train], w)
        test_dates = dates.iloc[split.test].to_numpy()
        parts.append(pd.DataFrame({
            "fold": k, "row": split.test, "date": test_dates,
            "symbol": symbols.iloc[split.test].to_numpy(),
            "score": predict(model, X.iloc[split.test], test_dates),
            "label": y.iloc[split.test].to_numpy(),
        }))
        if on_fold is not None:
            on_fold(k, pd.concat(parts, ignore_index=True))
    return pd.concat(parts, ignore_index=True)


def predict(model, X: pd.DataFrame, dates: np.ndarray) -> np.ndarray:
    """Member margins need no dates; an ensemble standardizes within each date."""
    if isinstance(model, LGBMMember):
        return model.predict(X)
    return model.predict(X, dates)


def tune_member(objective: str, X: pd.DataFrame, y: pd.Series, dates: pd.Series,
                symbols: pd.Series, splits: list[Split], *, sample_weight: np.ndarray | None,
                n_trials: int, seed: int, storage: str, study_name: str, base_params: dict,
                quantile: float, horizon: int, timeout_s: float | None = None,
                callbacks: list | None = None) -> TuningResult:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.set_user_attr("objective", objective)

    def objective_fn(trial: optuna.Trial) -> float:
        params = {**base_params, **search_space(trial), "objective": objective}

        def on_fold(k: int, so_far: pd.DataFrame) -> None:
            ls = long_short_returns(so_far, quantile, horizon)
            trial.set_user_attr("sharpe", sharpe(ls))
            trial.set_user_attr("folds", k + 1)
            trial.report(float(daily_ic(so_far, rank=True).mean()), step=k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        oos = out_of_sample(lambda: LGBMMember(**params), X, y, dates, symbols, splits,
                            sample_weight, on_fold)
        return float(daily_ic(oos, rank=True).mean())

    study.optimize(objective_fn, n_trials=n_trials, timeout=timeout_s, callbacks=callbacks,
                   gc_after_trial=True)
    best = study.best_trial
    sharpes = [t.user_attrs["sharpe"] for t in study.trials if "sharpe" in t.user_attrs]
    return TuningResult(
        study_name=study_name,
        best_params={**base_params, **best.params, "objective": objective},
        best_value=float(best.value),
        n_trials=len(study.trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)],
    )


def record_ensemble(storage: str, study_name: str, rank_ic: float, sharpe_ratio: float
                    ) -> TuningResult:
    """Add the stacked ensemble's own walk-forward result as a trial of its own study, so
    that every ensemble ever evaluated on this dataset counts towards the DSR too."""
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                load_if_exists=True)
    study.set_user_attr("objective", "ensemble")
    study.add_trial(optuna.trial.create_trial(value=rank_ic, params={}, distributions={},
                                              user_attrs={"sharpe": sharpe_ratio}))
    sharpes = [t.user_attrs["sharpe"] for t in study.trials if "sharpe" in t.user_attrs]
    return TuningResult(study_name=study_name, best_params={}, best_value=float(
        study.best_value), n_trials=len(study.trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)])
