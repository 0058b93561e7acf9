"""Train: point-in-time training set from Feast → Optuna per ensemble member on purged
walk-forward folds → stacked ensemble (+ meta-labeler) → feature validation → SHAP →
MLflow run registered as ``challenger``."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from alphaline.features import store as feast_store
from alphaline.features.definitions import BY_NAME, feature_names, get
from alphaline.models import registry
from alphaline.models.cv import Split, purged_walk_forward
from alphaline.models.drift import reference_bins
from alphaline.models.ensemble import TreeEnsemble, member_name
from alphaline.models.explain import global_importance, importance_figure
from alphaline.models.feature_report import FeatureReport, permutation_importance, validate_features
from alphaline.models.lgbm import LGBMMember
from alphaline.models.meta_label import MetaLabeler, meta_label_summary, walk_forward_meta
from alphaline.models.metrics import (
    deflated_sharpe,
    fold_metrics,
    long_short_returns,
    mean_rank_ic,
    probabilistic_sharpe,
    sharpe,
    sized_long_short_returns,
    summarize,
)
from alphaline.models.signal import SignalModel
from alphaline.models.tuning import TuningResult, out_of_sample, record_ensemble, tune_member
from alphaline.models.weights import sample_weights
from alphaline.pipelines.featurize import open_feature_store
from alphaline.trading.costs import CostModel
from scipy import stats

from alphaline.config import Params
from alphaline.io import write_json, write_parquet, write_text
from alphaline.project import Project

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


def weights_for(recipe: dict, ts: TrainingSet) -> np.ndarray:
    sw = recipe["sample_weights"]
    return sample_weights(ts.dates, ts.symbols, recipe["horizon"],
                          uniqueness=sw["uniqueness"], half_life_days=sw["half_life_days"])


def cost_per_turnover(project: Project) -> float:
    """Research cost of trading one unit of notional: half-spread + commission at the
    universe's median price. Impact depends on book size, which research does not fix."""
    bars = pd.read_parquet(project.validated_bars, columns=["close"])
    return CostModel.from_params(project.params.broker).per_turnover(float(bars["close"].median()))


def ensemble_from(recipe: dict) -> TreeEnsemble:
    return TreeEnsemble(recipe["members"], recipe["stack_folds"], recipe["horizon"],
                        recipe["embargo"], recipe["redundancy_corr"])


def make_recipe(p: Params, tuned: dict[str, TuningResult], features: list[str]) -> dict:
    """Everything needed to refit the model on other folds; members = objectives × seeds."""
    members = [{**tuned[obj].best_params, "seed": seed}
               for obj in p.model.objectives for seed in p.model.seeds]
    return {"members": members, "stack_folds": p.model.stack_folds,
            "horizon": p.features.label_horizon, "embargo": p.cv.embargo_days,
            "redundancy_corr": p.model.redundancy_corr, "features": features,
            "sample_weights": p.model.sample_weights.model_dump(),
            "meta_label": p.model.meta_label.model_dump(), "quantile": p.portfolio.quantile}


def oos_metrics(oos: pd.DataFrame, project: Project, trial_sharpes: list[float],
                n_trials: int, cost: float = 0.0) -> dict[str, float]:
    p = project.params
    figures = summarize(oos, p.portfolio.quantile, p.features.label_horizon, cost)
    r = long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon).to_numpy()
    figures["probabilistic_sharpe"] = probabilistic_sharpe(
        figures["sharpe"], len(r), float(stats.skew(r)), float(stats.kurtosis(r, fisher=False)))
    figures["deflated_sharpe"] = deflated_sharpe(r, trial_sharpes, n_trials)
    figures["n_trials"] = float(n_trials)
    return figures


def drift_reference(X: pd.DataFrame, scores: pd.Series) -> dict:
    """Distributions the drift check compares live data with."""
    return {"features": {c: reference_bins(X[c]) for c in X.columns},
            "score": reference_bins(scores)}


def tune_members(project: Project, ts: TrainingSet, splits: list[Split], w: np.ndarray,
                 callbacks: list | None = None) -> dict[str, TuningResult]:
    p = project.params
    base = {"n_estimators": p.model.n_estimators, "seed": p.tuning.seed}
    return {obj: tune_member(
        obj, ts.X, ts.y, ts.dates, ts.symbols, splits, sample_weight=w,
        n_trials=p.tuning.n_trials, seed=p.tuning.seed, storage=project.optuna_url,
        study_name=f"{p.model.name}-{ts.fingerprint[:12]}-{obj}", base_params=base,
        quantile=p.portfolio.quantile, horizon=p.features.label_horizon,
        timeout_s=p.tuning.timeout_s, callbacks=callbacks) for obj in p.model.objectives}


def feature_validation(project: Project, ts: TrainingSet, splits: list[Split],
                       recipe: dict, w: np.ndarray, top: int = 20) -> FeatureReport:
    """Permutation importance of the first member refitted on the last walk-forward fold:
    on the newest training sessions (in-sample) against its test block (out-of-sample)."""
    split = splits[-1]
    member = LGBMMember(**recipe["members"][0]).fit(
        ts.X.iloc[split.train], ts.y.iloc[split.train], ts.dates.iloc[split.train],
        w[split.train])
    gain = pd.Series(member.booster_.feature_importance("gain"), index=ts.features)
    candidates = list(gain.sort_values(ascending=False).index[:top])
    train_dates = np.unique(ts.dates.iloc[split.train])
    recent = split.train[ts.dates.iloc[split.train].to_numpy() >= train_dates[-min(
        len(train_dates), 250)]]

    def importance(rows: np.ndarray) -> pd.Series:
        return permutation_importance(member.predict, ts.X.iloc[rows].reset_index(drop=True),
                                      ts.y.iloc[rows].reset_index(drop=True),
                                      ts.dates.iloc[rows].to_numpy(), candidates)
    return validate_features(ts.X, ts.y, project.params.feature_validation,
                             in_sample=importance(recent), out_of_sample=importance(split.test))


def run_train(project: Project, callbacks: list | None = None) -> dict:
    return train_candidate(project, training_set(project), callbacks)


def train_candidate(project: Project, ts: TrainingSet, callbacks: list | None = None) -> dict:
    """Tune, fit, validate, explain and register one challenger trained on ``ts``."""
    p = project.params
    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, p.model.name)
    splits = folds(project, ts)
    # the recipe's weighting scheme comes from the same params: one set of weights for all
    w = weights_for({"sample_weights": p.model.sample_weights.model_dump(),
                     "horizon": p.features.label_horizon}, ts)
    tuned = tune_members(project, ts, splits, w, callbacks)
    recipe = make_recipe(p, tuned, ts.features)
    cost = cost_per_turnover(project)

    # The ensemble's own walk-forward predictions: stacking inside each fold's training rows.
    oos = out_of_sample(lambda: ensemble_from(recipe), ts.X, ts.y, ts.dates, ts.symbols,
                        splits, w)
    ensembles = record_ensemble(
        project.optuna_url, f"{p.model.name}-{ts.fingerprint[:12]}-ensemble",
        mean_rank_ic(oos["score"], oos["label"], oos["date"]),
        sharpe(long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon)))
    studies = [*tuned.values(), ensembles]
    trial_sharpes = [s for r in studies for s in r.trial_sharpes]
    n_trials = sum(r.n_trials for r in studies)
    metrics = oos_metrics(oos, project, trial_sharpes, n_trials, cost)
    per_fold = fold_metrics(oos, p.portfolio.quantile, p.features.label_horizon, cost)

    meta, meta_oos = None, pd.DataFrame()
    if p.model.meta_label.enabled:
        gap = p.features.label_horizon + p.cv.embargo_days
        meta_oos = walk_forward_meta(oos, ts.X, p.portfolio.quantile,
                                     p.model.meta_label.threshold, gap, p.tuning.seed)
        metrics.update({f"meta_{k}": v for k, v in meta_label_summary(
            meta_oos, p.model.meta_label.threshold).items()})
        if not meta_oos.empty:
            per_year = math.sqrt(252 / p.features.label_horizon)
            metrics["meta_sized_sharpe_annualized"] = sharpe(sized_long_short_returns(
                meta_oos, p.features.label_horizon)) * per_year
            metrics["meta_unsized_sharpe_annualized"] = sharpe(long_short_returns(
                meta_oos, p.portfolio.quantile, p.features.label_horizon)) * per_year
        rows = oos["row"].to_numpy()
        meta = MetaLabeler(p.portfolio.quantile, p.model.meta_label.threshold,
                           seed=p.tuning.seed).fit(
            ts.X.iloc[rows], oos["score"].to_numpy(), oos["label"].to_numpy(),
            oos["date"].to_numpy(), w[rows])

    ensemble = ensemble_from(recipe).fit(ts.X, ts.y, ts.dates, w)
    for a, b, rho in ensemble.redundant_:
        log.warning("ensemble members %s and %s are redundant: out-of-fold correlation %.3f "
                    "> model.redundancy_corr %.2f; consider dropping one", a, b, rho,
                    p.model.redundancy_corr)
    signal = SignalModel(ensemble, meta)
    report = feature_validation(project, ts, splits, recipe, w)
    for leak in report.leaks:
        log.warning("suspected leak in %s: %s", leak["feature"], leak["rule"])

    last = ts.dates == ts.dates.max()
    sample_dates = np.sort(ts.dates.unique())[-min(ts.dates.nunique(), 40):]
    sample = ts.dates.isin(sample_dates).to_numpy()
    contributions = signal.contributions(ts.X[sample], ts.dates[sample].to_numpy())
    importance = global_importance(contributions, ts.features)
    labels = {n: BY_NAME[n].description for n in ts.features if n in BY_NAME}
    write_parquet(oos, project.data_dir / "model" / "oos.parquet")
    diversity = ensemble.diversity_
    reg = registry.log_candidate(
        p.model.name, signal, ts.X[last].head(50),
        params={"label_horizon": p.features.label_horizon, "n_features": len(ts.features),
                "train_start": str(ts.dates.min().date()), "train_end": str(ts.dates.max().date()),
                "n_rows": len(ts.X), "cv_splits": len(splits),
                "members": ",".join(ensemble.member_names),
                "studies": ",".join(r.study_name for r in tuned.values())},
        hyperparameters={f"{member_name(m)}.{k}": v for m in recipe["members"]
                         for k, v in m.items() if k not in ("objective", "seed")},
        metrics={**{f"oos_{k}": v for k, v in metrics.items()},
                 **{f"stack_weight_{n}": float(wt) for n, wt in
                    zip(ensemble.member_names, ensemble.weights_, strict=True)}},
        tags={"dataset_fingerprint": ts.fingerprint, "data_source": p.data.source,
              "feature_validation.suspected_leak": str(report.suspected_leak).lower(),
              "ensemble.redundant_pairs": "; ".join(f"{a}~{b} ρ={r:.3f}"
                                                    for a, b, r in ensemble.redundant_)},
        figures={"shap_importance.png": importance_figure(importance, labels)},
        artifacts={"recipe.json": recipe,
                   "features.json": {"features": ts.features, "descriptions": labels},
                   "shap_importance.json": importance.round(8).to_dict(),
                   "ensemble_diversity.json": diversity.round(6).to_dict(),
                   "fold_metrics.json": per_fold.assign(
                       start=per_fold["start"].astype(str), end=per_fold["end"].astype(str)
                   ).to_dict(orient="records"),
                   "feature_validation.json": report.as_dict(),
                   "reference.json": drift_reference(ts.X, oos["score"])},
        texts={"feature_validation.md": report.markdown(),
               "fold_metrics.md": per_fold.to_markdown(index=False, floatfmt=".4f")},
    )
    deleted = registry.prune_versions(p.model.name, p.model.keep_versions)
    if deleted:
        log.info("registry keeps %d versions: deleted v%s", p.model.keep_versions,
                 ", v".join(deleted))
    write_text(report.markdown(), project.reports_dir / "feature_validation.md")
    out = {"model": p.model.name, "version": reg.version, "run_id": reg.run_id,
           "studies": {o: r.study_name for o, r in tuned.items()},
           "fingerprint": ts.fingerprint, "recipe": recipe, "oos": metrics,
           "stack_weights": dict(zip(ensemble.member_names,
                                     [float(x) for x in ensemble.weights_], strict=True)),
           "redundant_members": [list(x) for x in ensemble.redundant_],
           "fold_metrics": per_fold.assign(start=per_fold["start"].astype(str),
                                           end=per_fold["end"].astype(str)
                                           ).to_dict(orient="records"),
           "feature_validation": {"suspected_leak": report.suspected_leak,
                                  "leaks": report.leaks, "dead": report.dead,
                                  "correlated_groups": report.correlated_groups},
           "train_rows": len(ts.X), "splits": len(splits)}
    write_json(out, project.metrics_dir / "train.json")
    log.info("registered %s v%s as challenger (rank IC %.4f, DSR %.3f)", p.model.name,
             reg.version, metrics["rank_ic"], metrics["deflated_sharpe"])
    return out
