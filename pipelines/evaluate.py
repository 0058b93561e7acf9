"""Evaluate: the challenger and the champion refitted on identical Combinatorial Purged CV
splits and scored on the same backtest paths; the gate decides, and the decision with its
reasons goes onto the model version."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
from alphaline.models import registry
from alphaline.models.cv import (
    CPCVSplit,
    combinatorial_purged,
    cpcv_paths,
    path_predictions,
    session_groups,
)
from alphaline.models.gate import GateDecision, decide
from alphaline.models.metrics import (
    PERIODS_PER_YEAR,
    mean_rank_ic,
    net_long_short_returns,
    sharpe,
)
from alphaline.models.tuning import predict
from alphaline.pipelines.train import (
    TrainingSet,
    cost_per_turnover,
    ensemble_from,
    training_set,
    weights_for,
)

from alphaline.io import write_json, write_text
from alphaline.project import Project

log = logging.getLogger(__name__)


def cpcv_scores(recipe: dict, ts: TrainingSet, splits: list[CPCVSplit], groups: np.ndarray,
                label: str = "model") -> pd.DataFrame:
    """Fit the recipe on each split's training rows; ``split, group, date, symbol, score,
    label`` for its test rows."""
    w = weights_for(recipe, ts)
    X = ts.X[recipe["features"]]
    parts = []
    for i, split in enumerate(splits):
        model = ensemble_from(recipe).fit(X.iloc[split.train], ts.y.iloc[split.train],
                                          ts.dates.iloc[split.train], w[split.train])
        test_dates = ts.dates.iloc[split.test].to_numpy()
        parts.append(pd.DataFrame({
            "split": i, "group": groups[split.test], "date": test_dates,
            "symbol": ts.symbols.iloc[split.test].to_numpy(),
            "score": predict(model, X.iloc[split.test], test_dates),
            "label": ts.y.iloc[split.test].to_numpy()}))
        log.info("CPCV %s: split %d/%d fitted", label, i + 1, len(splits))
    return pd.concat(parts, ignore_index=True)


def path_table(frames: list[pd.DataFrame], quantile: float, horizon: int,
               cost: float) -> pd.DataFrame:
    """Per backtest path: mean daily rank IC and annualized long-short Sharpe after costs."""
    rows = []
    for k, f in enumerate(frames):
        net = net_long_short_returns(f, quantile, horizon, cost)
        rows.append({"path": k, "rank_ic": mean_rank_ic(f["score"], f["label"], f["date"]),
                     "sharpe_net": sharpe(net) * math.sqrt(PERIODS_PER_YEAR / horizon)})
    return pd.DataFrame(rows)


def run_evaluate(project: Project, ts: TrainingSet | None = None) -> GateDecision:
    """Gate the challenger that ``metrics/train.json`` names; ``ts``: the training set it
    was trained on (default: rebuilt from the feature store)."""
    p = project.params
    trained = json.loads((project.metrics_dir / "train.json").read_text())
    name, version = trained["model"], trained["version"]
    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, p.model.name)
    ts = ts if ts is not None else training_set(project)
    h, q = p.features.label_horizon, p.portfolio.quantile
    splits = combinatorial_purged(ts.dates, p.cv.cpcv_groups, p.cv.cpcv_test_groups, h,
                                  p.cv.embargo_days)
    paths = cpcv_paths(splits, p.cv.cpcv_groups)
    groups = session_groups(ts.dates, p.cv.cpcv_groups)
    cost = cost_per_turnover(project)
    log.info("CPCV: %d splits, %d backtest paths", len(splits), len(paths))

    leaks = trained["feature_validation"]["leaks"]
    champion_version = registry.alias_version(name, registry.CHAMPION)
    champion, champion_paths, unusable = None, None, None
    # The cheap bars first: a suspected leak or a DSR below the bar refuses whatever the
    # paths say, so the CPCV fits are not spent.
    skip = ("a suspected leak" if leaks else
            "the DSR is below the bar" if trained["oos"]["deflated_sharpe"]
            < p.gate.min_deflated_sharpe else None)
    if skip:
        log.info("%s: the CPCV comparison is skipped and the gate refuses", skip)
        challenger_paths = pd.DataFrame({"path": [], "rank_ic": [], "sharpe_net": []})
        challenger = {"deflated_sharpe": trained["oos"]["deflated_sharpe"],
                      "n_trials": trained["oos"]["n_trials"],
                      "rank_ic": trained["oos"]["rank_ic"], "sharpe_net": float("nan"),
                      "n_paths": 0}
    else:
        challenger_paths = path_table(path_predictions(
            cpcv_scores(trained["recipe"], ts, splits, groups, "challenger"), paths), q, h,
            cost)
        challenger = {"deflated_sharpe": trained["oos"]["deflated_sharpe"],
                      "n_trials": trained["oos"]["n_trials"],
                      "rank_ic": float(challenger_paths["rank_ic"].mean()),
                      "sharpe_net": float(challenger_paths["sharpe_net"].mean()),
                      "n_paths": len(paths)}
    if not skip and champion_version is not None and champion_version != version:
        try:
            recipe = registry.recipe(name, champion_version)
        except Exception as exc:  # an older version may lack a recipe
            recipe, unusable = None, f"champion v{champion_version} has no recipe ({exc})"
        if recipe is not None:
            missing = [f for f in recipe["features"] if f not in ts.X.columns]
            if missing:
                unusable = f"champion v{champion_version} uses features no longer computed"
                log.warning("%s: %s", unusable, missing)
            else:
                champion_paths = path_table(path_predictions(
                    cpcv_scores(recipe, ts, splits, groups, "champion"), paths), q, h, cost)
                champion = {"rank_ic": float(champion_paths["rank_ic"].mean()),
                            "sharpe_net": float(champion_paths["sharpe_net"].mean())}
                challenger["paths_won"] = int(
                    (challenger_paths["rank_ic"] > champion_paths["rank_ic"]).sum())

    decision = decide(challenger, champion, p.gate, leaks)
    if skip:
        decision.reasons.append(f"CPCV comparison skipped: {skip} (rank IC above is "
                                f"walk-forward)")
    if unusable:
        decision.reasons.append(f"{unusable}: compared with the bars only")
    registry.record_decision(name, version, decision, {
        "rank_ic_cpcv": challenger["rank_ic"], "sharpe_net_cpcv": challenger["sharpe_net"],
        "deflated_sharpe": challenger["deflated_sharpe"],
        **({"champion_rank_ic_cpcv": champion["rank_ic"]} if champion else {}),
    })
    table = challenger_paths.rename(columns={"rank_ic": "challenger_rank_ic",
                                             "sharpe_net": "challenger_sharpe_net"})
    table["champion_rank_ic"] = np.nan if champion_paths is None else champion_paths["rank_ic"]
    table["champion_sharpe_net"] = (np.nan if champion_paths is None
                                    else champion_paths["sharpe_net"])
    summary = {
        "model": name, "version": version, "promoted": decision.promote,
        "reasons": decision.reasons, "champion_before": champion_version,
        "champion_after": registry.alias_version(name, registry.CHAMPION),
        "cpcv": {"splits": len(splits), "paths": len(paths), "groups": p.cv.cpcv_groups,
                 "test_groups": p.cv.cpcv_test_groups},
        "challenger": challenger, "champion": champion,
        "paths": table.to_dict(orient="records"),
    }
    write_json(summary, project.metrics_dir / "evaluate.json")
    write_text(table.to_csv(index=False), project.root / "plots" / "cpcv_paths.csv")
    _walk_forward_curve(project)
    log.info("gate: %s v%s — %s", "promote" if decision.promote else "reject", version,
             "; ".join(decision.reasons))
    return decision


def _walk_forward_curve(project: Project) -> None:
    """Cumulative walk-forward long-short return of the challenger, for ``dvc plots``."""
    from alphaline.models.metrics import long_short_returns

    p = project.params
    oos = pd.read_parquet(project.data_dir / "model" / "oos.parquet")
    curve = long_short_returns(oos, p.portfolio.quantile, p.features.label_horizon).cumsum()
    frame = pd.DataFrame({"date": curve.index.date, "challenger": curve.to_numpy()})
    write_text(frame.to_csv(index=False), project.root / "plots" / "oos_long_short.csv")
