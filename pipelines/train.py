"""Train: point-in-time training set from Feast → Optuna on purged walk-forward folds →
final LightGBM fit → MLflow run registered as ``challenger``."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import pandas as pd

from alphaline.io import write_json, write_parquet
from alphaline.project import Project
from features import store as feast_store
from features.registry import BY_NAME, feature_names, get
from models import registry
from models.cv import Split, purged_walk_forward
from models.drift import reference_bins
from models.explain import global_importance, importance_figure
from models.lgbm import LGBMScorer
from models.metrics import deflated_sharpe, long_short_returns, probabilistic_sharpe, summarize
from models.tuning import tune
from pipelines.featurize import open_feature_store

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    X: pd.DataFrame
    y: pd.Series
    dates: pd.Series
    symbols: pd.Series
    fingerprint: str

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)


def fingerprint(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def training_set(project: Project, store=None, names: list[str] | None = None) -> TrainingSet:
    """Labelled rows up to ``data.end`` with features joined point-in-time by Feast."""
    names = names or feature_names(project.params.features.sets)
    store = store or open_feature_store(project)
    labels = pd.read_parquet(project.label_table)
    end = pd.Timestamp(project.params.data.end)
    labels = labels[labels["label"].notna() & (labels["date"] <= end)]
    feats = feast_store.historical(store, labels[["symbol", "date"]], names,
                                   project.params.data.calendar)
    frame = labels.merge(feats, on=["symbol", "date"], how="inner")
    # Drop each symbol's warm-up (its first ``longest window`` sessions); later NaNs, e.g. a
    # GARCH fit that did not converge, stay for LightGBM to route.
    warmup = max(d.window for d in get(names))
    frame = frame.sort_values(["symbol", "date"], ignore_index=True)
    frame = frame[frame.groupby("symbol").cumcount() >= warmup]
    frame = frame.sort_values(["date", "symbol"], ignore_index=True)
    if frame.empty:
        raise ValueError("the training set is empty: not enough history after feature warm-up")
    return TrainingSet(X=frame[names], y=frame["label"], dates=frame["date"],
                       symbols=frame["symbol"], fingerprint=fingerprint(frame))


def folds(project: Project, ts: TrainingSet) -> list[Split]:
    cv = project.params.cv
    return purged_walk_forward(ts.dates, cv.n_splits, project.params.features.label_horizon,
                               cv.embargo_days, cv.min_train_days)


def oos_metrics(oos: pd.DataFrame, project: Project, trial_sharpes: list[float],
                n_trials: int) -> dict[str, float]:
    p = project.params
    figures = summarize(oos, p.portfolio.quantile, p.features.label_horizon)
    ls = long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon)
    from scipy import stats

    r = ls.to_numpy()
    figures["probabilistic_sharpe"] = probabilistic_sharpe(
        figures["sharpe"], len(r), float(stats.skew(r)), float(stats.kurtosis(r, fisher=False)))
    figures["deflated_sharpe"] = deflated_sharpe(r, trial_sharpes, n_trials)
    figures["n_trials"] = float(n_trials)
    return figures


def drift_reference(X: pd.DataFrame, scores: pd.Series) -> dict:
    """Distributions the drift check compares live data with."""
    return {"features": {c: reference_bins(X[c]) for c in X.columns},
            "score": reference_bins(scores)}


def run_train(project: Project, callbacks: list | None = None) -> dict:
    p = project.params
    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, p.model.name)
    ts = training_set(project)
    splits = folds(project, ts)
    base = {"n_estimators": p.model.n_estimators, "seed": p.tuning.seed}
    result = tune(ts.X, ts.y, ts.dates, splits, n_trials=p.tuning.n_trials, seed=p.tuning.seed,
                  storage=project.optuna_url, study_name=f"{p.model.name}-{ts.fingerprint[:12]}",
                  base_params=base, quantile=p.portfolio.quantile,
                  horizon=p.features.label_horizon, timeout_s=p.tuning.timeout_s,
                  callbacks=callbacks)
    if result.oos is None:  # the best trial ran in an earlier session of this study
        from models.tuning import out_of_sample

        result.oos = out_of_sample(result.best_params, ts.X, ts.y, ts.dates, splits)
    metrics = oos_metrics(result.oos, project, result.trial_sharpes, result.n_trials)
    write_parquet(result.oos, project.data_dir / "model" / "oos.parquet")
    model = LGBMScorer(**result.best_params).fit(ts.X, ts.y, ts.dates)
    sample = ts.X.sample(min(len(ts.X), 2000), random_state=0)
    importance = global_importance(model.booster_, sample)
    reg = registry.log_candidate(
        p.model.name, model, ts.X.head(50),
        params={"label_horizon": p.features.label_horizon, "n_features": len(ts.features),
                "train_start": str(ts.dates.min().date()), "train_end": str(ts.dates.max().date()),
                "n_rows": len(ts.X), "cv_splits": len(splits), "study": result.study_name},
        metrics={f"oos_{k}": v for k, v in metrics.items()},
        tags={"dataset_fingerprint": ts.fingerprint, "data_source": p.data.source},
        figures={"shap_importance.png": importance_figure(importance)},
        artifacts={"features.json": {"features": ts.features,
                                      "descriptions": {n: BY_NAME[n].description
                                                       for n in ts.features}},
                   "shap_importance.json": importance.round(8).to_dict(),
                   "reference.json": drift_reference(ts.X, result.oos["score"])},
    )
    out = {"model": p.model.name, "version": reg.version, "run_id": reg.run_id,
           "study": result.study_name, "fingerprint": ts.fingerprint,
           "best_params": result.best_params, "oos": metrics,
           "train_rows": len(ts.X), "splits": len(splits)}
    write_json(out, project.metrics_dir / "train.json")
    log.info("registered %s v%s as challenger (rank IC %.4f, DSR %.3f)", p.model.name,
             reg.version, metrics["rank_ic"], metrics["deflated_sharpe"])
    return out
