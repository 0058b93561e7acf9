"""Evaluate: the challenger and the champion refitted on identical Combinatorial Purged CV
splits and scored on the same backtest paths; the gate decides, and the decision with its
reasons goes onto the model version.

:func:`cpcv_path_scores` and :func:`gate` are the steps; :func:`run_evaluate` is the edge
that reads the challenger's :class:`TrainResult`, asks the registry and writes the outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from alphaline.calendar import sessions_per_year
from alphaline.config import Params
from alphaline.console import Progress, track
from alphaline.errors import MissingPrerequisite
from alphaline.models.cv import (
    CPCVSplit,
    FoldMap,
    cpcv_paths,
    cross_val_predict,
    holdout_cpcv,
    holdout_start,
    path_predictions,
    purged_walk_forward,
    session_groups,
)
from alphaline.models.gate import GateDecision, decide
from alphaline.models.meta_label import MetaLabeler, with_primary_score
from alphaline.models.metrics import (
    annualize,
    deflated_sharpe,
    long_short_returns,
    mean_rank_ic,
    probabilistic_sharpe,
    sharpe,
)
from alphaline.models.recipes import estimator_from, kind_of, recipe_inputs, tree_recipe
from alphaline.models.registry import CHAMPION, Registry
from alphaline.models.significance import paired_bootstrap
from alphaline.models.tuning import FamilyTrials, family_trials
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.results import EvaluateResult, TrainingSet, TrainResult
from alphaline.pipelines.train import (
    catalog_costs,
    meta_labeler,
    scores_book,
    weights_for,
)
from alphaline.project import Project
from alphaline.trading.backtest.baselines import baseline_returns, nav_returns
from alphaline.trading.backtest.vectorized import book_backtest, market_grids
from alphaline.trading.costs import ResearchCosts

log = logging.getLogger(__name__)


@dataclass
class PathScores:
    """One recipe on the gate's CPCV paths: per path its rank IC and annualized after-cost
    Sharpe (``table``), and its after-cost daily returns (sessions × paths). With the
    meta-sized book, ``meta_rows`` holds, per split, the rows its meta-labeler was fitted
    on (all inside the split's training rows)."""

    table: pd.DataFrame
    returns: pd.DataFrame
    meta_rows: dict[int, np.ndarray] | None = None

    @property
    def mean_path(self) -> pd.Series:
        """The average path's daily return: the paths share their days."""
        return self.returns.mean(axis=1)


def recipe_weights(recipe: dict, ts: TrainingSet) -> np.ndarray | None:
    """The sample weights the recipe's trees train with (the TFT takes none)."""
    trees = tree_recipe(recipe)
    return None if trees is None else weights_for(trees, ts)


def market_for(cost: ResearchCosts | None) -> dict[str, pd.DataFrame]:
    if cost is None or cost.market is None:
        raise MissingPrerequisite("the gate scores the traded book after costs and needs the "
                                  "bars' closes (and volumes for impact)")
    return market_grids(cost.market)


def recipe_meta_labeler(recipe: dict, p: Params) -> MetaLabeler:
    """The meta-labeler the recipe was trained with (its own ``meta_label`` settings when it
    records them, else the current params')."""
    settings = {k: v for k, v in recipe.get("meta_label", {}).items() if k != "enabled"}
    if not settings:
        return meta_labeler(p)
    return meta_labeler(p.with_overrides({f"model.meta_label.{k}": v
                                          for k, v in settings.items()}))


def cpcv_meta_sizes(recipe: dict, ts: TrainingSet, splits: list[CPCVSplit],
                    primary: pd.DataFrame, p: Params, label: str = "model",
                    close: pd.DataFrame | None = None
                    ) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Meta-label sizes of each CPCV split's test rows, as training makes them, inside the
    split: the recipe's purged walk-forward over the split's training rows alone gives
    out-of-fold primary scores, the meta-labeler is fitted on those, then sizes the test
    rows' primary scores (``primary``: :func:`cross_val_predict`'s rows, ``fold`` = split).
    No test row, and no row within the purge and embargo of one, reaches a meta-labeler.
    Returns ``primary`` with ``side, probability, size`` and each split's meta rows."""
    X = ts.X[recipe["features"]]
    inputs = recipe_inputs(recipe, ts.X, ts.symbols, ts.dates, close)
    w = recipe_weights(recipe, ts)
    h = p.features.label_horizon
    embargo = p.cv.embargo_days
    sized, fitted_on = [], {}
    for k, split in enumerate(track(splits, f"CPCV {label} meta-labeler", "split")):
        train = np.sort(split.train)
        inner_ts = TrainingSet(X=inputs.iloc[train].reset_index(drop=True),
                               y=ts.y.iloc[train].reset_index(drop=True),
                               dates=ts.dates.iloc[train].reset_index(drop=True),
                               symbols=ts.symbols.iloc[train].reset_index(drop=True),
                               fingerprint=ts.fingerprint)
        inner = purged_walk_forward(inner_ts.dates, p.cv.n_splits, h, embargo,
                                    p.cv.min_train_days)
        oos = cross_val_predict(
            lambda: estimator_from(recipe, p.model.n_jobs), inner_ts.X, inner_ts.y,
            dates=inner_ts.dates, symbols=inner_ts.symbols, splits=inner,
            sample_weight=None if w is None else w[train]).predictions.dropna(subset=["score"])
        if oos["date"].nunique() < p.model.meta_label.min_train_dates:
            raise ValueError(
                f"CPCV split {k}: the inner walk-forward scored {oos['date'].nunique()} "
                f"sessions, fewer than model.meta_label.min_train_dates "
                f"({p.model.meta_label.min_train_dates}) the meta-labeler needs")
        rows = train[oos["row"].to_numpy()]
        meta = recipe_meta_labeler(recipe, p).fit(
            with_primary_score(X.iloc[rows], oos["score"]), oos["label"],
            dates=oos["date"].to_numpy(), sample_weight=None if w is None else w[rows])
        test = primary[primary["fold"] == k].reset_index(drop=True)
        sizes = meta.size(with_primary_score(X.iloc[test["row"].to_numpy()], test["score"]),
                          dates=test["date"].to_numpy())
        sized.append(pd.concat([test, sizes], axis=1))
        fitted_on[k] = rows
        log.info("CPCV %s: split %d/%d meta-labeler fitted on %d out-of-fold rows", label,
                 k + 1, len(splits), len(rows))
    return pd.concat(sized, ignore_index=True), fitted_on


def cpcv_path_scores(recipe: dict, ts: TrainingSet, splits: list[CPCVSplit],
                     paths: list[list[tuple[int, int]]], groups: np.ndarray, p: Params,
                     market: dict[str, pd.DataFrame], label: str = "model",
                     map_folds: FoldMap | None = None) -> PathScores:
    """Fit the recipe on each CPCV split; each backtest path's scores go through the one
    book, the rebalance rules and the cost model (:func:`book_backtest`). With
    ``portfolio.method: meta_sized_long_short`` each split also fits its own meta-labeler
    (:func:`cpcv_meta_sizes`) and the path trades the meta-sized book. ``map_folds``: where
    the splits' fits run (``flows.parallel.fold_mapper``; here, one after another, by
    default)."""
    close = market.get("close")
    with Progress(f"CPCV {label}", len(splits), "split") as bar:
        scores = cross_val_predict(
            lambda: estimator_from(recipe, p.model.n_jobs),
            recipe_inputs(recipe, ts.X, ts.symbols, ts.dates, close), ts.y,
            dates=ts.dates, symbols=ts.symbols, splits=splits,
            sample_weight=recipe_weights(recipe, ts),
            on_fold=lambda k, _: bar.advance(), map_folds=map_folds).predictions
    meta_rows, columns = None, ["date", "symbol", "score"]
    if p.portfolio.method == "meta_sized_long_short":
        scores, meta_rows = cpcv_meta_sizes(recipe, ts, splits, scores, p, label, close)
        columns += ["size", "probability"]
    scores["group"] = groups[scores["row"].to_numpy()]
    per_year = sessions_per_year(p.data.calendar)
    last = scores["date"].max()
    window = {k: v.loc[v.index <= last] for k, v in market.items()}
    rows, returns = [], {}
    for k, f in enumerate(path_predictions(scores, paths)):
        run = book_backtest(f[columns], window, p)
        r = nav_returns(run.daily["nav"], p.broker.initial_cash)
        returns[k] = r
        rows.append({"path": k, "rank_ic": mean_rank_ic(f["score"], f["label"], f["date"]),
                     "sharpe_net": annualize(sharpe(r), per_year)})
    return PathScores(pd.DataFrame(rows), pd.DataFrame(returns), meta_rows)


def baseline_figures(market: dict[str, pd.DataFrame], p: Params, sessions: pd.DatetimeIndex
                     ) -> dict[str, float]:
    """Annualized after-cost Sharpe of each baseline over ``sessions`` (same book, rules and
    costs as the models; a baseline's score has no meta-label sizes, so with the meta-sized
    book it trades the quantile book of the same gross and caps)."""
    window = {k: v.loc[v.index <= sessions.max()] for k, v in market.items()}
    base = baseline_returns(window, scores_book(p), sessions.min()).reindex(
        sessions).fillna(0.0)
    per_year = sessions_per_year(p.data.calendar)
    return {name: annualize(sharpe(base[name]), per_year) for name in base.columns}


def gate_splits(ts: TrainingSet, p: Params):
    """The held-out period, its CPCV splits and paths, and each row's group (−1 before the
    period)."""
    h = p.features.label_horizon
    start = holdout_start(ts.dates, p.gate.holdout_fraction)
    splits = holdout_cpcv(ts.dates, start, p.cv.cpcv_groups, p.cv.cpcv_test_groups, h,
                          p.cv.embargo_days)
    paths = cpcv_paths(splits, p.cv.cpcv_groups)
    held = (ts.dates >= start).to_numpy()
    groups = np.full(len(ts.dates), -1)
    groups[held] = session_groups(ts.dates[held].reset_index(drop=True), p.cv.cpcv_groups)
    return start, splits, paths, groups


def gate(trained: TrainResult, ts: TrainingSet, p: Params, cost: ResearchCosts | None,
         champion_recipe: dict | None, champion_version: str | None,
         champion_problem: str | None = None, storage: str | None = None,
         map_folds: FoldMap | None = None) -> EvaluateResult:
    """The decision on ``trained``, on the traded recipe after every cost.

    The cheap limits first (a suspected leak or a walk-forward DSR below its limit refuses
    whatever the paths say, so the CPCV fits are not spent); then the challenger's and the
    champion's recipes on the same CPCV paths of the held-out period, each path's scores run
    through the book and the cost model; DSR on the after-cost returns, deflated by every
    trial of the recipe family; the baselines on the same sessions; and a paired bootstrap
    of the after-cost edge over the champion."""
    start, splits, paths, groups = gate_splits(ts, p)
    log.info("CPCV on the held-out period from %s: %d splits, %d backtest paths",
             start.date(), len(splits), len(paths))
    leaks = trained.feature_validation.leaks
    dsr = trained.oos["deflated_sharpe"]
    skip = ("a suspected leak" if leaks else
            "the walk-forward DSR is below the limit" if dsr < p.gate.min_deflated_sharpe
            else None)
    family = trained.family
    challenger = {"deflated_sharpe": dsr, "n_trials": trained.oos["n_trials"],
                  "trial_sharpe_variance": trained.oos.get("trial_sharpe_variance", 0.0),
                  "dsr_source": "walk-forward"}
    champion, champion_paths, unusable, baselines = None, None, champion_problem, {}
    cpcv = {"splits": len(splits), "paths": len(paths), "groups": p.cv.cpcv_groups,
            "test_groups": p.cv.cpcv_test_groups, "holdout_start": str(start.date())}
    if skip:
        log.info("%s: the CPCV comparison is skipped and the gate refuses", skip)
        table = pd.DataFrame({"path": [], "rank_ic": [], "sharpe_net": []})
        challenger.update({"rank_ic": trained.oos["rank_ic"], "sharpe_net": float("nan"),
                           "n_paths": 0})
    else:
        market = market_for(cost)
        ours = cpcv_path_scores(trained.recipe, ts, splits, paths, groups, p, market,
                                "challenger", map_folds)
        table = ours.table
        mean_path = ours.mean_path
        per_year = sessions_per_year(p.data.calendar)
        trials = (family_trials(storage, family) if storage and family
                  else FamilyTrials("", int(trained.oos["n_trials"]), [], 0))
        n_trials = max(trials.n_trials, 1)
        challenger.update({
            "rank_ic": float(table["rank_ic"].mean()),
            "sharpe_net": annualize(sharpe(mean_path), per_year),
            "path_sharpe_net_mean": float(table["sharpe_net"].mean()),
            "probabilistic_sharpe": probabilistic_sharpe_of(mean_path),
            "deflated_sharpe": deflated_sharpe(mean_path, trials.trial_sharpes, n_trials),
            "n_trials": float(n_trials), "trial_sharpe_variance": trials.sharpe_variance,
            "n_paths": len(paths), "dsr_source": "CPCV after costs"})
        baselines = baseline_figures(market, p, pd.DatetimeIndex(mean_path.index))
        if champion_recipe is not None:
            missing = [f for f in champion_recipe["features"] if f not in ts.X.columns]
            if missing:
                unusable = f"champion v{champion_version} uses features no longer computed"
                log.warning("%s: %s", unusable, missing)
            else:
                theirs = cpcv_path_scores(champion_recipe, ts, splits, paths, groups, p,
                                          market, "champion", map_folds)
                champion_paths = theirs.table
                test = paired_bootstrap(mean_path, theirs.mean_path,
                                        draws=p.gate.bootstrap_draws, seed=p.tuning.seed)
                champion = {"rank_ic": float(champion_paths["rank_ic"].mean()),
                            "sharpe_net": annualize(sharpe(theirs.mean_path), per_year),
                            "edge_per_session": test.mean_difference,
                            "p_value": test.p_value, "block_length": test.block_length}
                challenger["paths_won"] = int(
                    (table["sharpe_net"] > champion_paths["sharpe_net"]).sum())
    decision = decide(challenger, champion, p.gate, leaks, baselines)
    if skip:
        decision.reasons.append(f"CPCV comparison skipped: {skip} (figures above are "
                                f"walk-forward)")
    if unusable and not skip:
        decision.reasons.append(f"{unusable}: compared with the limits only")
    out = table.rename(columns={"rank_ic": "challenger_rank_ic",
                                "sharpe_net": "challenger_sharpe_net"})
    out["champion_rank_ic"] = (np.nan if champion_paths is None
                               else champion_paths["rank_ic"])
    out["champion_sharpe_net"] = (np.nan if champion_paths is None
                                  else champion_paths["sharpe_net"])
    return EvaluateResult(
        model=trained.model, version=trained.version, promoted=decision.promote,
        reasons=decision.reasons, champion_before=champion_version,
        champion_after=trained.version if decision.promote else champion_version,
        cpcv=cpcv, challenger=challenger, champion=champion,
        paths=out.to_dict(orient="records"), baselines=baselines)


def probabilistic_sharpe_of(returns: pd.Series) -> float:
    r = returns.to_numpy(dtype="float64")
    r = r[np.isfinite(r)]
    if len(r) < 3:
        return 0.0
    return probabilistic_sharpe(sharpe(r), len(r), float(stats.skew(r)),
                                float(stats.kurtosis(r, fisher=False)))


def gate_and_record(project: Project, trained: TrainResult, ts: TrainingSet,
                    map_folds: FoldMap | None = None) -> EvaluateResult:
    """Gate a registered challenger against the champion of the moment, and record the
    decision on its version (a promotion moves the ``champion`` alias)."""
    p = project.params
    catalog = Catalog(project)
    registry = Registry.for_project(project)
    champion_version = registry.alias_version(trained.model, CHAMPION)
    recipe, problem = None, None
    if champion_version is not None and champion_version != trained.version:
        try:
            recipe = registry.recipe(trained.model, champion_version)
        except Exception as exc:
            problem = f"champion v{champion_version} has no recipe ({exc})"
    result = gate(trained, ts, p, catalog_costs(p, catalog),
                  recipe, champion_version, problem, storage=project.optuna_url,
                  map_folds=map_folds)
    decision = GateDecision(promote=result.promoted, reasons=result.reasons)
    registry.record_decision(trained.model, trained.version, decision, {
        "rank_ic_cpcv": result.challenger["rank_ic"],
        "sharpe_net_cpcv": result.challenger["sharpe_net"],
        "deflated_sharpe": result.challenger["deflated_sharpe"],
        "n_trials_family": result.challenger["n_trials"],
        **({"champion_rank_ic_cpcv": result.champion["rank_ic"]} if result.champion else {}),
    })
    log.info("gate: %s v%s (%s) — %s", "promote" if decision.promote else "reject",
             trained.version, kind_of(trained.recipe), "; ".join(decision.reasons))
    return result


def run_evaluate(project: Project, ts: TrainingSet | None = None,
                 map_folds: FoldMap | None = None) -> GateDecision:
    """Gate the challenger that the train stage recorded; ``ts``: the training set it was
    trained on (default: rebuilt from the feature store); ``map_folds``: where the CPCV
    splits' fits run (here by default)."""
    p = project.params
    catalog = Catalog(project)
    trained = catalog.train()
    ts = ts if ts is not None else catalog.training_set()
    result = gate_and_record(project, trained, ts, map_folds)
    decision = GateDecision(promote=result.promoted, reasons=result.reasons)
    catalog.save_evaluation(result)
    paths = pd.DataFrame(result.paths, columns=["path", "challenger_rank_ic",
                                                "challenger_sharpe_net", "champion_rank_ic",
                                                "champion_sharpe_net"])
    catalog.save_plot("cpcv_paths.csv", paths)
    oos = catalog.oos()
    curve = long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon).cumsum()
    catalog.save_plot("oos_long_short.csv", pd.DataFrame({"date": curve.index.date,
                                                          "challenger": curve.to_numpy()}))
    return decision
