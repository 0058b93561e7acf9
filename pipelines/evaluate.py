"""Evaluate: the challenger and the champion refitted on identical Combinatorial Purged CV
splits and scored on the same backtest paths; the gate decides, and the decision with its
reasons goes onto the model version.

:func:`cpcv_path_table` and :func:`gate` are the steps; :func:`run_evaluate` is the edge
that reads the challenger's :class:`TrainResult`, asks the registry and writes the outputs.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from alphaline.calendar import sessions_per_year
from alphaline.config import Params
from alphaline.models.cv import (
    CPCVSplit,
    combinatorial_purged,
    cpcv_paths,
    cross_val_predict,
    path_predictions,
    session_groups,
)
from alphaline.models.gate import GateDecision, decide
from alphaline.models.metrics import (
    annualize,
    long_short_returns,
    mean_rank_ic,
    net_long_short_returns,
    sharpe,
)
from alphaline.models.registry import CHAMPION, Registry
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.results import EvaluateResult, TrainingSet, TrainResult
from alphaline.pipelines.train import book_size, catalog_costs, ensemble_from, weights_for
from alphaline.project import Project
from alphaline.trading.costs import ResearchCosts

log = logging.getLogger(__name__)


def cpcv_path_table(recipe: dict, ts: TrainingSet, splits: list[CPCVSplit],
                    paths: list[list[tuple[int, int]]], groups: np.ndarray, p: Params,
                    cost: ResearchCosts | None, label: str = "model") -> pd.DataFrame:
    """Fit the recipe on each CPCV split; per backtest path, the mean daily rank IC and the
    annualized long-short Sharpe after costs."""
    def progress(k: int, _: pd.DataFrame) -> None:
        log.info("CPCV %s: split %d/%d fitted", label, k + 1, len(splits))

    scores = cross_val_predict(
        lambda: ensemble_from(recipe, p.model.n_jobs), ts.X[recipe["features"]], ts.y,
        dates=ts.dates, symbols=ts.symbols, splits=splits,
        sample_weight=weights_for(recipe, ts), on_fold=progress).predictions
    scores["group"] = groups[scores["row"].to_numpy()]
    q, h = p.portfolio.quantile, p.features.label_horizon
    per_year = sessions_per_year(p.data.calendar) / h
    rows = []
    for k, f in enumerate(path_predictions(scores, paths)):
        rows.append({"path": k, "rank_ic": mean_rank_ic(f["score"], f["label"], f["date"]),
                     "sharpe_net": annualize(sharpe(net_long_short_returns(
                         f, q, h, cost, **book_size(p))), per_year)})
    return pd.DataFrame(rows)


def gate(trained: TrainResult, ts: TrainingSet, p: Params, cost: ResearchCosts | None,
         champion_recipe: dict | None, champion_version: str | None,
         champion_problem: str | None = None) -> EvaluateResult:
    """The decision on ``trained``: the cheap limits first (a suspected leak or a DSR below
    its limit refuses whatever the paths say, so the CPCV fits are not spent), then the
    challenger's and the champion's recipes on the same CPCV paths."""
    h = p.features.label_horizon
    splits = combinatorial_purged(ts.dates, p.cv.cpcv_groups, p.cv.cpcv_test_groups, h,
                                  p.cv.embargo_days)
    paths = cpcv_paths(splits, p.cv.cpcv_groups)
    groups = session_groups(ts.dates, p.cv.cpcv_groups)
    log.info("CPCV: %d splits, %d backtest paths", len(splits), len(paths))
    leaks = trained.feature_validation.leaks
    dsr = trained.oos["deflated_sharpe"]
    skip = ("a suspected leak" if leaks else
            "the DSR is below the limit" if dsr < p.gate.min_deflated_sharpe else None)
    challenger = {"deflated_sharpe": dsr, "n_trials": trained.oos["n_trials"]}
    champion, champion_paths, unusable = None, None, champion_problem
    if skip:
        log.info("%s: the CPCV comparison is skipped and the gate refuses", skip)
        challenger_paths = pd.DataFrame({"path": [], "rank_ic": [], "sharpe_net": []})
        challenger.update({"rank_ic": trained.oos["rank_ic"], "sharpe_net": float("nan"),
                           "n_paths": 0})
    else:
        challenger_paths = cpcv_path_table(trained.recipe, ts, splits, paths, groups, p, cost,
                                           "challenger")
        challenger.update({"rank_ic": float(challenger_paths["rank_ic"].mean()),
                           "sharpe_net": float(challenger_paths["sharpe_net"].mean()),
                           "n_paths": len(paths)})
        if champion_recipe is not None:
            missing = [f for f in champion_recipe["features"] if f not in ts.X.columns]
            if missing:
                unusable = f"champion v{champion_version} uses features no longer computed"
                log.warning("%s: %s", unusable, missing)
            else:
                champion_paths = cpcv_path_table(champion_recipe, ts, splits, paths, groups, p,
                                                 cost, "champion")
                champion = {"rank_ic": float(champion_paths["rank_ic"].mean()),
                            "sharpe_net": float(champion_paths["sharpe_net"].mean())}
                challenger["paths_won"] = int(
                    (challenger_paths["rank_ic"] > champion_paths["rank_ic"]).sum())
    decision = decide(challenger, champion, p.gate, leaks)
    if skip:
        decision.reasons.append(f"CPCV comparison skipped: {skip} (rank IC above is "
                                f"walk-forward)")
    if unusable and not skip:
        decision.reasons.append(f"{unusable}: compared with the limits only")
    table = challenger_paths.rename(columns={"rank_ic": "challenger_rank_ic",
                                             "sharpe_net": "challenger_sharpe_net"})
    table["champion_rank_ic"] = np.nan if champion_paths is None else champion_paths["rank_ic"]
    table["champion_sharpe_net"] = (np.nan if champion_paths is None
                                    else champion_paths["sharpe_net"])
    return EvaluateResult(
        model=trained.model, version=trained.version, promoted=decision.promote,
        reasons=decision.reasons, champion_before=champion_version,
        champion_after=trained.version if decision.promote else champion_version,
        cpcv={"splits": len(splits), "paths": len(paths), "groups": p.cv.cpcv_groups,
              "test_groups": p.cv.cpcv_test_groups},
        challenger=challenger, champion=champion, paths=table.to_dict(orient="records"))


def run_evaluate(project: Project, ts: TrainingSet | None = None) -> GateDecision:
    """Gate the challenger that the train stage recorded; ``ts``: the training set it was
    trained on (default: rebuilt from the feature store)."""
    p = project.params
    catalog = Catalog(project)
    trained = catalog.train()
    registry = Registry.for_project(project)
    ts = ts if ts is not None else catalog.training_set()
    champion_version = registry.alias_version(trained.model, CHAMPION)
    recipe, problem = None, None
    if champion_version is not None and champion_version != trained.version:
        try:
            recipe = registry.recipe(trained.model, champion_version)
        except Exception as exc:
            problem = f"champion v{champion_version} has no recipe ({exc})"
    result = gate(trained, ts, p, catalog_costs(p, catalog),
                  recipe, champion_version, problem)
    decision = GateDecision(promote=result.promoted, reasons=result.reasons)
    registry.record_decision(trained.model, trained.version, decision, {
        "rank_ic_cpcv": result.challenger["rank_ic"],
        "sharpe_net_cpcv": result.challenger["sharpe_net"],
        "deflated_sharpe": result.challenger["deflated_sharpe"],
        **({"champion_rank_ic_cpcv": result.champion["rank_ic"]} if result.champion else {}),
    })
    catalog.save_evaluation(result)
    paths = pd.DataFrame(result.paths, columns=["path", "challenger_rank_ic",
                                                "challenger_sharpe_net", "champion_rank_ic",
                                                "champion_sharpe_net"])
    catalog.save_plot("cpcv_paths.csv", paths)
    oos = catalog.oos()
    curve = long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon).cumsum()
    catalog.save_plot("oos_long_short.csv", pd.DataFrame({"date": curve.index.date,
                                                          "challenger": curve.to_numpy()}))
    log.info("gate: %s v%s — %s", "promote" if decision.promote else "reject",
             trained.version, "; ".join(decision.reasons))
    return decision
