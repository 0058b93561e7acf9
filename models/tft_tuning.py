"""Optuna search of the Temporal Fusion Transformer's hyperparameters on purged walk-forward
folds, in a study of its own.

The study works like the tree members' (``alphaline.models.tuning``): TPE seeded, median
pruning on the running mean out-of-sample rank IC reported after each fold, every trial's
long-short Sharpe kept (pruned ones too) and the study tagged with its recipe family, so the
gate's trial ledger (:func:`alphaline.models.tuning.family_trials`) counts TFT trials like
every other. A trial whose training loss is not finite is recorded as failed and the search
goes on: a learning rate at the top of a range can diverge without the range being wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import fields, replace

import numpy as np
import optuna
import pandas as pd

from alphaline.config import TFTSearchSpace
from alphaline.models.cv import Split, cross_val_predict
from alphaline.models.metrics import long_short_returns, mean_rank_ic, sharpe
from alphaline.models.tft import TFTConfig, TFTForecaster
from alphaline.models.tuning import TuningResult, open_study

# pytorch-forecasting replaces a non-finite loss by a constant and warns with this text; the
# backward pass then fails with an unrelated message, so the warning is turned into the error
NON_FINITE_LOSS = "Loss is not finite"


class NonFiniteLoss(FloatingPointError):
    """A trial's training diverged: its loss or every score of a fold is not finite."""


def suggest_tft(trial: optuna.Trial, space: TFTSearchSpace) -> dict:
    """One point of ``model.tft.search``: ``TFTConfig`` field name → value."""
    out: dict[str, float | int] = {}
    for name, spec in space:
        if isinstance(spec, list):
            out[name] = trial.suggest_categorical(name, spec)
        else:
            suggest_fn = trial.suggest_int if isinstance(spec.low, int) else \
                trial.suggest_float
            out[name] = suggest_fn(name, spec.low, spec.high, log=spec.log)
    return out


def _check_space(space: TFTSearchSpace) -> None:
    known = {f.name for f in fields(TFTConfig)}
    unknown = [name for name, _ in space if name not in known]
    if unknown:
        raise ValueError(f"model.tft.search names {unknown}, which are not TFT settings")


def tune_tft(X: pd.DataFrame, y: pd.Series, dates: pd.Series, symbols: pd.Series,
             splits: list[Split], *, base: TFTConfig, space: TFTSearchSpace, n_trials: int,
             seed: int, storage: str, study_name: str, family: str,
             pruner_startup_trials: int, quantile: float, horizon: int,
             timeout_s: float | None = None, callbacks: list | None = None) -> TuningResult:
    """Search ``space`` around ``base`` (the settings that are not searched).

    ``X`` is the TFT panel (``symbol``, ``ret`` and the features) and ``splits`` its
    walk-forward folds (``pipelines.train_tft.panel_splits``). ``best_params`` holds the
    searched fields only: the tuned config is ``dataclasses.replace(base, **best_params)``.
    Reruns with the same ``study_name`` add to the study. Raises ``RuntimeError`` when no
    trial of the study has completed (all pruned or failed); the trials stay recorded.
    """
    if horizon != base.horizon:
        raise ValueError(f"horizon {horizon} differs from the TFT config's {base.horizon}")
    _check_space(space)
    features = [c for c in X.columns if c not in ("symbol", "ret")]
    study = open_study(study_name, storage, seed=seed,
                       pruner_startup_trials=pruner_startup_trials, objective="tft",
                       family=family)

    def objective_fn(trial: optuna.Trial) -> float:
        config = replace(base, **suggest_tft(trial, space))
        fitted: list[TFTForecaster] = []

        def make_model() -> TFTForecaster:
            fitted.append(TFTForecaster(config=config, features=features))
            return fitted[-1]

        def on_fold(k: int, so_far: pd.DataFrame) -> None:
            # a diverged fold records no Sharpe: a 0 would enter the DSR as if measured
            fold_scores = so_far.loc[so_far["fold"] == k, "score"].to_numpy(dtype="float64")
            loss = getattr(fitted[-1], "epoch_loss_", 0.0)
            if not np.isfinite(loss) or not np.isfinite(fold_scores).any():
                raise NonFiniteLoss(f"diverged in fold {k + 1}: training loss {loss}, "
                                    f"{int(np.isfinite(fold_scores).sum())} of "
                                    f"{len(fold_scores)} scores finite")
            trial.set_user_attr("sharpe", sharpe(long_short_returns(so_far, quantile, horizon)))
            trial.set_user_attr("folds", k + 1)
            trial.report(mean_rank_ic(so_far["score"], so_far["label"], so_far["date"]),
                         step=k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("error", message=NON_FINITE_LOSS, category=UserWarning)
                oos = cross_val_predict(make_model, X, y, dates=dates, symbols=symbols,
                                        splits=splits, on_fold=on_fold).predictions
        except UserWarning as exc:
            if NON_FINITE_LOSS not in str(exc):
                raise
            reason = f"diverged in fold {len(fitted)}: non-finite training loss"
            trial.set_user_attr("failure", reason)
            raise NonFiniteLoss(reason) from exc
        except NonFiniteLoss as exc:
            trial.set_user_attr("failure", str(exc))
            raise
        return mean_rank_ic(oos["score"], oos["label"], oos["date"])

    study.optimize(objective_fn, n_trials=n_trials, timeout=timeout_s, callbacks=callbacks,
                   gc_after_trial=True, catch=(NonFiniteLoss,))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        states = pd.Series([t.state.name for t in trials]).value_counts().to_dict()
        raise RuntimeError(f"TFT study {study_name!r}: no trial completed ({states}); "
                           f"widen or move model.tft.search")
    best = study.best_trial
    sharpes = [t.user_attrs["sharpe"] for t in trials if "sharpe" in t.user_attrs]
    return TuningResult(
        study_name=study_name,
        best_params={name: best.params[name] for name, _ in space},
        best_value=float(best.value),
        n_trials=len(trials),
        trial_sharpes=[float(s) for s in sharpes if np.isfinite(s)],
    )
