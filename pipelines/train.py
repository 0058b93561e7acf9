"""Train: point-in-time training set from Feast → Optuna per ensemble member on purged
walk-forward folds → stacked ensemble (+ meta-labeler) → feature validation → SHAP →
MLflow run registered as ``challenger``.

:func:`fit_candidate` is the step (a training set and params in, a :class:`Candidate` out;
its only side effect is the Optuna study it adds trials to); :func:`register_candidate`
and :func:`run_train` are the edges that log, register and write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from alphaline.calendar import sessions_per_year
from alphaline.config import Params
from alphaline.console import Progress
from alphaline.features.definitions import BY_NAME
from alphaline.models.cv import (
    CVResult,
    Split,
    cross_val_predict,
    holdout_start,
    purged_walk_forward,
)
from alphaline.models.drift import reference_bins
from alphaline.models.ensemble import TreeEnsemble, member_name
from alphaline.models.explain import global_importance, importance_figure
from alphaline.models.feature_report import (
    FeatureReport,
    permutation_importance,
    validate_features,
)
from alphaline.models.lgbm import LGBMMember
from alphaline.models.meta_label import (
    MetaLabeler,
    meta_label_summary,
    walk_forward_meta,
    with_primary_score,
)
from alphaline.models.metrics import (
    annualize,
    deflated_sharpe,
    fold_metrics,
    long_short_returns,
    mean_rank_ic,
    probabilistic_sharpe,
    sharpe,
    sized_long_short_returns,
    summarize,
)
from alphaline.models.registry import Registry
from alphaline.models.signal import SignalModel
from alphaline.models.tuning import (
    FamilyTrials,
    TrialMap,
    TuningResult,
    family_trials,
    recipe_family,
    record_ensemble,
    run_here,
    tune_member,
)
from alphaline.models.weights import sample_weights
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.results import FeatureValidationSummary, TrainingSet, TrainResult
from alphaline.project import Project
from alphaline.trading.backtest.baselines import nav_returns
from alphaline.trading.backtest.vectorized import book_backtest, market_grids
from alphaline.trading.book import BookLimits
from alphaline.trading.costs import CostModel, ResearchCosts, market_panel

log = logging.getLogger(__name__)


def folds(p: Params, ts: TrainingSet) -> list[Split]:
    cv = p.cv
    return purged_walk_forward(ts.dates, cv.n_splits, p.features.label_horizon,
                               cv.embargo_days, cv.min_train_days)


def weights_for(recipe: dict, ts: TrainingSet) -> np.ndarray:
    sw = recipe["sample_weights"]
    return sample_weights(ts.dates, ts.symbols, recipe["horizon"],
                          uniqueness=sw["uniqueness"], half_life_days=sw["half_life_days"])


def research_costs(p: Params, bars: pd.DataFrame | None) -> ResearchCosts:
    """What research charges the book: the broker's cost model on a NAV of
    ``broker.initial_cash``, with each bar's close, volatility and ADV (as the daily flow's
    snapshot takes them). Without bars, only the half spread and the borrow fee."""
    costs = ResearchCosts(CostModel.from_params(p.broker), p.broker.initial_cash,
                          market_panel(bars) if bars is not None and len(bars) else None,
                          sessions_per_year(p.data.calendar))
    if costs.omits:
        log.warning("research costs omit %s: the bars lack the prices or volumes they need",
                    " and ".join(costs.omits))
    return costs


def catalog_costs(p: Params, catalog: Catalog) -> ResearchCosts:
    return research_costs(p, catalog.validated_bars())


def book_size(p: Params) -> dict[str, float]:
    """The research book's gross and per-name cap: the daily book's (:class:`BookLimits`)."""
    limits = BookLimits.from_params(p)
    return {"gross": limits.gross, "max_weight": limits.name}


def member_base(p: Params) -> dict:
    """Member parameters Optuna does not search."""
    return {"n_estimators": p.model.n_estimators, "seed": p.tuning.seed,
            "rank_levels": p.model.lambdarank.levels,
            "rank_truncation": p.model.lambdarank.truncation}


def ensemble_from(recipe: dict, n_jobs: int) -> TreeEnsemble:
    return TreeEnsemble(recipe["members"], stack_folds=recipe["stack_folds"],
                        horizon=recipe["horizon"], embargo=recipe["embargo"],
                        redundancy_corr=recipe["redundancy_corr"], n_jobs=n_jobs)


def meta_labeler(p: Params) -> MetaLabeler:
    m = p.model.meta_label
    return MetaLabeler(quantile=p.portfolio.quantile, threshold=m.threshold,
                       n_estimators=m.n_estimators, num_leaves=m.num_leaves,
                       min_child_samples=m.min_child_samples, learning_rate=m.learning_rate,
                       seed=p.tuning.seed, n_jobs=p.model.n_jobs)


def make_recipe(p: Params, tuned: dict[str, TuningResult], features: list[str]) -> dict:
    """Everything needed to refit the model on other folds; members = objectives × seeds."""
    members = [{**tuned[obj].best_params, "seed": seed}
               for obj in p.model.objectives for seed in p.model.seeds]
    return {"members": members, "stack_folds": p.model.stack_folds,
            "horizon": p.features.label_horizon, "embargo": p.cv.embargo_days,
            "redundancy_corr": p.model.redundancy_corr, "features": features,
            "sample_weights": p.model.sample_weights.model_dump(),
            "meta_label": p.model.meta_label.model_dump(), "quantile": p.portfolio.quantile}


def scores_book(p: Params) -> Params:
    """The params research runs a panel of primary scores through: the meta-sized book needs
    the meta-labeler's sizes, which such a panel does not carry, so it is scored with the
    quantile book of the same gross and caps (the gate's CPCV paths carry sizes and trade
    the meta-sized book: :func:`alphaline.pipelines.evaluate.cpcv_meta_sizes`)."""
    if p.portfolio.method == "meta_sized_long_short":
        return p.with_overrides({"portfolio.method": "quantile_long_short"})
    return p


def traded_returns(oos: pd.DataFrame, p: Params, costs: ResearchCosts | None
                   ) -> pd.Series | None:
    """Daily after-cost returns of the book the daily flow would have run on ``oos``'s
    scores (the one book, the rebalance rules, the cost model); None without prices."""
    if costs is None or costs.market is None or oos.empty:
        return None
    market = market_grids(costs.market)
    last = oos["date"].max()
    run = book_backtest(oos[["date", "symbol", "score"]], {
        k: v.loc[v.index <= last] for k, v in market.items()}, scores_book(p))
    return nav_returns(run.daily["nav"], p.broker.initial_cash)


def oos_metrics(oos: pd.DataFrame, p: Params, trials: FamilyTrials,
                costs: ResearchCosts | None) -> dict[str, float]:
    """Walk-forward figures. The DSR is on the traded book's after-cost daily returns when
    the bars carry prices (else on the long-short label returns), deflated by every trial
    of the recipe family."""
    q, h = p.portfolio.quantile, p.features.label_horizon
    per_year = sessions_per_year(p.data.calendar)
    figures = summarize(oos, q, h, per_year, costs, **book_size(p))
    gross = long_short_returns(oos, q, h, **book_size(p)).to_numpy()
    n_trials = max(trials.n_trials, 1)
    figures["deflated_sharpe_before_costs"] = deflated_sharpe(gross, trials.trial_sharpes,
                                                              n_trials)
    traded = traded_returns(oos, p, costs)
    r = gross if traded is None else traded.to_numpy()
    figures["probabilistic_sharpe"] = probabilistic_sharpe(
        sharpe(r), len(r), float(stats.skew(r)), float(stats.kurtosis(r, fisher=False)))
    figures["deflated_sharpe"] = deflated_sharpe(r, trials.trial_sharpes, n_trials)
    if traded is not None:
        figures["traded_sharpe_net_annualized"] = annualize(sharpe(r), per_year)
    figures["n_trials"] = float(n_trials)
    figures["trial_sharpe_variance"] = trials.sharpe_variance
    return figures


def drift_reference(X: pd.DataFrame, scores: pd.Series, bins: int) -> dict:
    """Distributions the drift check compares live data with; a feature with no finite
    value (dead in this history) has none and is named in the feature report instead."""
    usable = [c for c in X.columns if np.isfinite(X[c].to_numpy(dtype="float64")).any()]
    return {"features": {c: reference_bins(X[c], bins) for c in usable},
            "score": reference_bins(scores, bins)}


def tune_members(p: Params, ts: TrainingSet, splits: list[Split], w: np.ndarray,
                 storage: str, callbacks: list | None = None, family: str | None = None,
                 run: Callable = run_here) -> dict[str, TuningResult]:
    """Each objective's search in turn, all inside one ``run`` (one cluster for the three)."""
    def search(map_trials: TrialMap) -> dict[str, TuningResult]:
        return {obj: tune_member(
            obj, ts.X, ts.y, ts.dates, ts.symbols, splits, sample_weight=w,
            n_trials=p.tuning.n_trials, seed=p.tuning.seed, storage=storage,
            study_name=f"{p.model.name}-{ts.fingerprint[:12]}-{obj}",
            base_params=member_base(p), space=p.tuning.search_space,
            pruner_startup_trials=p.tuning.pruner_startup_trials, n_jobs=p.model.n_jobs,
            quantile=p.portfolio.quantile, horizon=p.features.label_horizon,
            timeout_s=p.tuning.timeout_s, callbacks=callbacks, family=family,
            batch=p.tuning.parallel.batch, map_trials=map_trials)
            for obj in p.model.objectives}

    return run(search)


def family_of(p: Params) -> str:
    return recipe_family(p.model.name, p.model.objectives, p.features.sets,
                         p.features.label_horizon)


def before_holdout(ts: TrainingSet, p: Params) -> tuple[TrainingSet, np.ndarray]:
    """The rows tuning may see: those before the gate's held-out period."""
    keep = (ts.dates < holdout_start(ts.dates, p.gate.holdout_fraction)).to_numpy()
    return rows_of(ts, keep), keep


def rows_of(ts: TrainingSet, keep: np.ndarray) -> TrainingSet:
    """The rows of ``ts`` where ``keep`` (same fingerprint: a view of the same data)."""
    return TrainingSet(X=ts.X[keep].reset_index(drop=True), y=ts.y[keep].reset_index(drop=True),
                       dates=ts.dates[keep].reset_index(drop=True),
                       symbols=ts.symbols[keep].reset_index(drop=True),
                       fingerprint=ts.fingerprint)


def tuning_set(ts: TrainingSet, p: Params) -> tuple[TrainingSet, np.ndarray, list[Split]]:
    """The rows the trees' tuning fits on, and its folds: the sessions before the gate's
    held-out period and, with ``tuning.date_stride`` k, every k-th of them (k times fewer
    rows per trial; consecutive sessions' cross-sections say much the same about the
    hyperparameters). The folds count, purge and embargo in those sessions, so a purge of h
    of them spans at least h real sessions; ``cv.min_train_days`` is scaled by 1/k."""
    keep = (ts.dates < holdout_start(ts.dates, p.gate.holdout_fraction)).to_numpy()
    stride = p.tuning.date_stride
    if stride > 1:
        days = np.sort(ts.dates[keep].unique())
        keep &= ts.dates.isin(days[::stride]).to_numpy()
    sub = rows_of(ts, keep)
    splits = purged_walk_forward(sub.dates, p.cv.n_splits, p.features.label_horizon,
                                 p.cv.embargo_days, -(-p.cv.min_train_days // stride))
    return sub, keep, splits


def walk_forward(recipe: dict, ts: TrainingSet, splits: list[Split], w: np.ndarray,
                 n_jobs: int, progress: str | None = None) -> CVResult:
    """The ensemble's own walk-forward predictions: stacking inside each fold's training
    rows. ``progress``: the label of a bar over the folds (none when None)."""
    bar = Progress(progress, len(splits), "fold", disable=True if progress is None else None)
    with bar:
        return cross_val_predict(lambda: ensemble_from(recipe, n_jobs),
                                 ts.X[recipe["features"]], ts.y, dates=ts.dates,
                                 symbols=ts.symbols, splits=splits, sample_weight=w,
                                 on_fold=None if progress is None else lambda k, _: bar.advance())


def feature_validation(p: Params, ts: TrainingSet, splits: list[Split], recipe: dict,
                       w: np.ndarray, top: int = 20) -> FeatureReport:
    """Permutation importance of the first member refitted on the last walk-forward fold:
    on the newest training sessions (in-sample) against its test block (out-of-sample)."""
    split = splits[-1]
    member = LGBMMember(**recipe["members"][0], n_jobs=p.model.n_jobs).fit(
        ts.X.iloc[split.train], ts.y.iloc[split.train], dates=ts.dates.iloc[split.train],
        sample_weight=w[split.train])
    gain = pd.Series(member.booster_.feature_importance("gain"), index=ts.features)
    candidates = list(gain.sort_values(ascending=False).index[:top])
    train_dates = np.unique(ts.dates.iloc[split.train])
    recent = split.train[ts.dates.iloc[split.train].to_numpy() >= train_dates[-min(
        len(train_dates), 250)]]

    def importance(rows: np.ndarray) -> pd.Series:
        return permutation_importance(member.predict, ts.X.iloc[rows].reset_index(drop=True),
                                      ts.y.iloc[rows].reset_index(drop=True),
                                      ts.dates.iloc[rows].to_numpy(), candidates)
    return validate_features(ts.X, ts.y, p.feature_validation,
                             in_sample=importance(recent), out_of_sample=importance(split.test))


@dataclass
class Candidate:
    """A fitted challenger and everything measured about it, before it is registered."""

    signal: SignalModel
    recipe: dict
    tuned: dict[str, TuningResult]
    oos: pd.DataFrame
    metrics: dict[str, float]
    per_fold: pd.DataFrame
    report: FeatureReport
    importance: pd.Series
    reference: dict
    splits: int


def fit_candidate(ts: TrainingSet, p: Params, *, storage: str, cost: ResearchCosts | None,
                  callbacks: list | None = None, run_trials: Callable = run_here) -> Candidate:
    """Tune, fit, validate and explain one challenger on ``ts``. ``run_trials``: where the
    tuning trials run (``flows.parallel.trial_runner``; here by default)."""
    splits = folds(p, ts)
    horizon, q = p.features.label_horizon, p.portfolio.quantile
    per_year = sessions_per_year(p.data.calendar) / horizon
    # the recipe's weighting scheme comes from the same params: one set of weights for all
    w = weights_for({"sample_weights": p.model.sample_weights.model_dump(),
                     "horizon": horizon}, ts)
    # tuning never sees the gate's held-out period, so no CPCV test group chose the
    # hyperparameters the gate then scores
    family = family_of(p)
    tune_set, tune_rows, tune_splits = tuning_set(ts, p)
    tuned = tune_members(p, tune_set, tune_splits, w[tune_rows], storage, callbacks,
                         family, run_trials)
    recipe = make_recipe(p, tuned, ts.features)

    oos = walk_forward(recipe, ts, splits, w, p.model.n_jobs, "walk-forward").predictions
    record_ensemble(
        storage, f"{p.model.name}-{ts.fingerprint[:12]}-ensemble",
        mean_rank_ic(oos["score"], oos["label"], oos["date"]),
        sharpe(long_short_returns(oos, q, horizon)), family=family)
    metrics = oos_metrics(oos, p, family_trials(storage, family), cost)
    per_fold = fold_metrics(oos, q, horizon, sessions_per_year(p.data.calendar), cost,
                            **book_size(p))

    meta = None
    if p.model.meta_label.enabled:
        gap = horizon + p.cv.embargo_days
        meta_oos = walk_forward_meta(oos, ts.X, lambda: meta_labeler(p), gap,
                                     p.model.meta_label.min_train_dates)
        metrics.update({f"meta_{k}": v for k, v in meta_label_summary(
            meta_oos, p.model.meta_label.threshold).items()})
        if not meta_oos.empty:
            metrics["meta_sized_sharpe_annualized"] = annualize(sharpe(
                sized_long_short_returns(meta_oos, horizon)), per_year)
            metrics["meta_unsized_sharpe_annualized"] = annualize(sharpe(
                long_short_returns(meta_oos, q, horizon)), per_year)
        rows = oos["row"].to_numpy()
        meta = meta_labeler(p).fit(with_primary_score(ts.X.iloc[rows], oos["score"]),
                                   oos["label"], dates=oos["date"].to_numpy(),
                                   sample_weight=w[rows])

    ensemble = ensemble_from(recipe, p.model.n_jobs).fit(ts.X, ts.y, dates=ts.dates,
                                                         sample_weight=w)
    for a, b, rho in ensemble.redundant_:
        log.warning("ensemble members %s and %s are redundant: out-of-fold correlation %.3f "
                    "> model.redundancy_corr %.2f; consider dropping one", a, b, rho,
                    p.model.redundancy_corr)
    signal = SignalModel(ensemble, meta)
    report = feature_validation(p, ts, splits, recipe, w)
    for leak in report.leaks:
        log.warning("suspected leak in %s: %s", leak["feature"], leak["rule"])

    sample_dates = np.sort(ts.dates.unique())[-min(ts.dates.nunique(), 40):]
    sample = ts.dates.isin(sample_dates).to_numpy()
    contributions = signal.contributions(ts.X[sample], ts.dates[sample].to_numpy())
    return Candidate(signal=signal, recipe=recipe, tuned=tuned, oos=oos, metrics=metrics,
                     per_fold=per_fold, report=report,
                     importance=global_importance(contributions, ts.features),
                     reference=drift_reference(ts.X, oos["score"], p.drift.bins),
                     splits=len(splits))


def _records(per_fold: pd.DataFrame) -> list[dict]:
    return per_fold.assign(start=per_fold["start"].astype(str),
                           end=per_fold["end"].astype(str)).to_dict(orient="records")


def register_candidate(registry: Registry, p: Params, ts: TrainingSet, c: Candidate
                       ) -> TrainResult:
    """One MLflow run with the candidate and its audit trail, registered as challenger."""
    ensemble = c.signal.ensemble
    labels = {n: BY_NAME[n].description for n in ts.features if n in BY_NAME}
    last = ts.dates == ts.dates.max()
    reg = registry.log_candidate(
        p.model.name, c.signal, ts.X[last].head(50),
        params={"label_horizon": p.features.label_horizon, "n_features": len(ts.features),
                "train_start": str(ts.dates.min().date()), "train_end": str(ts.dates.max().date()),
                "n_rows": len(ts.X), "cv_splits": c.splits,
                "members": ",".join(ensemble.member_names),
                "studies": ",".join(r.study_name for r in c.tuned.values())},
        hyperparameters={f"{member_name(m)}.{k}": v for m in c.recipe["members"]
                         for k, v in m.items() if k not in ("objective", "seed")},
        metrics={**{f"oos_{k}": v for k, v in c.metrics.items()},
                 **{f"stack_weight_{n}": float(wt) for n, wt in
                    zip(ensemble.member_names, ensemble.weights_, strict=True)}},
        tags={"dataset_fingerprint": ts.fingerprint, "data_source": p.data.source,
              "feature_validation.suspected_leak": str(c.report.suspected_leak).lower(),
              "ensemble.redundant_pairs": "; ".join(f"{a}~{b} ρ={r:.3f}"
                                                    for a, b, r in ensemble.redundant_)},
        figures={"shap_importance.png": importance_figure(c.importance, labels)},
        artifacts={"recipe.json": c.recipe,
                   "features.json": {"features": ts.features, "descriptions": labels},
                   "shap_importance.json": c.importance.round(8).to_dict(),
                   "ensemble_diversity.json": ensemble.diversity_.round(6).to_dict(),
                   "fold_metrics.json": _records(c.per_fold),
                   "feature_validation.json": c.report.as_dict(),
                   "reference.json": c.reference},
        texts={"feature_validation.md": c.report.markdown(),
               "fold_metrics.md": c.per_fold.to_markdown(index=False, floatfmt=".4f")},
    )
    deleted = registry.prune_versions(p.model.name, p.model.keep_versions)
    if deleted:
        log.info("registry keeps %d versions: deleted v%s", p.model.keep_versions,
                 ", v".join(deleted))
    return TrainResult(
        model=p.model.name, version=reg.version, run_id=reg.run_id,
        studies={o: r.study_name for o, r in c.tuned.items()}, fingerprint=ts.fingerprint,
        recipe=c.recipe, oos=c.metrics,
        stack_weights=dict(zip(ensemble.member_names, [float(x) for x in ensemble.weights_],
                               strict=True)),
        redundant_members=list(ensemble.redundant_), fold_metrics=_records(c.per_fold),
        feature_validation=FeatureValidationSummary(
            suspected_leak=c.report.suspected_leak, leaks=c.report.leaks, dead=c.report.dead,
            correlated_groups=c.report.correlated_groups),
        train_rows=len(ts.X), splits=c.splits, family=family_of(p))


def run_train(project: Project, callbacks: list | None = None,
              ts: TrainingSet | None = None, run_trials: Callable = run_here) -> TrainResult:
    """The train stage: training set from the catalog, fit, register, write its outputs."""
    p = project.params
    catalog = Catalog(project)
    ts = ts if ts is not None else catalog.training_set()
    candidate = fit_candidate(ts, p, storage=project.optuna_url,
                              cost=catalog_costs(p, catalog),
                              callbacks=callbacks, run_trials=run_trials)
    catalog.save_oos(candidate.oos)
    result = register_candidate(Registry.for_project(project), p, ts, candidate)
    catalog.save_report("feature_validation.md", candidate.report.markdown())
    catalog.save_train(result)
    page = walk_forward_report(project, candidate, result)
    if page is not None:
        log.info("walk-forward report: %s", page)
    log.info("registered %s v%s as challenger (rank IC %.4f, DSR %.3f)", p.model.name,
             result.version, candidate.metrics["rank_ic"], candidate.metrics["deflated_sharpe"])
    return result


def walk_forward_report(project: Project, c: Candidate, result: TrainResult):
    """The walk-forward's HTML report: its out-of-fold scores through the one book and the
    cost model (the vectorized engine), beside the baselines on the same sessions; written
    under ``reports/train/v<version>/`` and logged to the training run. None without
    prices."""
    from alphaline.reporting.backtest import write_backtest_report
    from alphaline.reporting.publish import log_to_mlflow
    from alphaline.trading.backtest.assemble import from_engine

    p = project.params
    cost = catalog_costs(p, Catalog(project))
    if cost.market is None or c.oos.empty:
        return None
    market = market_grids(cost.market)
    last = c.oos["date"].max()
    market = {k: v.loc[v.index <= last] for k, v in market.items()}
    run = book_backtest(c.oos[["date", "symbol", "score"]], market, scores_book(p))
    bt = from_engine(run, c.oos, market, scores_book(p), version=f"v{result.version}",
                     meta={"run_id": f"train-v{result.version}",
                           "sessions_per_year": sessions_per_year(p.data.calendar)})
    directory = project.reports_dir / "train" / f"v{result.version}"
    shap = {f"v{result.version}": pd.DataFrame({"feature": c.importance.index,
                                                "mean_abs_shap": c.importance.to_numpy()})}
    page = write_backtest_report(
        bt, directory, title=f"{p.model.name} v{result.version}: walk-forward, after costs",
        shap_by_version=shap, dsr={"deflated_sharpe": c.metrics["deflated_sharpe"],
                                   "n_trials": c.metrics["n_trials"]})
    log_to_mlflow(directory, Registry.for_project(project), result.run_id)
    return page
