"""Evaluate: challenger against the bars and the champion refitted on the same folds; the gate
decides, and the decision with its reasons goes onto the model version."""

from __future__ import annotations

import json
import logging

import pandas as pd

from alphaline.io import write_json, write_text
from alphaline.project import Project
from models import registry
from models.gate import GateDecision, decide
from models.metrics import long_short_returns
from models.tuning import out_of_sample
from pipelines.train import folds, oos_metrics, training_set

log = logging.getLogger(__name__)


def run_evaluate(project: Project) -> GateDecision:
    p = project.params
    trained = json.loads((project.metrics_dir / "train.json").read_text())
    name, version = trained["model"], trained["version"]
    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, p.model.name)
    ts = training_set(project)
    splits = folds(project, ts)
    challenger = trained["oos"]
    challenger_oos = pd.read_parquet(project.data_dir / "model" / "oos.parquet")

    champion_version = registry.alias_version(name, registry.CHAMPION)
    champion, champion_oos = None, None
    if champion_version is not None and champion_version != version:
        recipe = registry.recipe(name, champion_version)
        missing = [f for f in recipe["features"] if f not in ts.X.columns]
        if missing:
            log.warning("champion v%s uses features no longer computed: %s", champion_version,
                        missing)
        else:
            champion_oos = out_of_sample(recipe["params"], ts.X[recipe["features"]], ts.y,
                                         ts.dates, splits)
            champion = oos_metrics(champion_oos, project, [], 1)

    decision = decide(challenger, champion, p.gate)
    if champion_version is not None and champion is None and champion_version != version:
        decision.reasons.append(f"champion v{champion_version} could not be refitted")
    registry.record_decision(name, version, decision, {
        "rank_ic": challenger["rank_ic"], "deflated_sharpe": challenger["deflated_sharpe"],
        **({"champion_rank_ic": champion["rank_ic"]} if champion else {}),
    })
    summary = {
        "model": name, "version": version, "promoted": decision.promote,
        "reasons": decision.reasons, "champion_before": champion_version,
        "champion_after": registry.alias_version(name, registry.CHAMPION),
        "challenger": challenger, "champion": champion,
    }
    write_json(summary, project.metrics_dir / "evaluate.json")
    curves = pd.DataFrame({"challenger": long_short_returns(
        challenger_oos, p.portfolio.quantile, p.features.label_horizon).cumsum()})
    curves["champion"] = float("nan")
    if champion_oos is not None:
        curves["champion"] = long_short_returns(
            champion_oos, p.portfolio.quantile, p.features.label_horizon).cumsum()
    curves.index.name = "date"
    plots = project.root / "plots"
    write_text(curves.reset_index().assign(date=lambda f: f["date"].dt.date)
               .to_csv(index=False), plots / "oos_long_short.csv")
    log.info("gate: %s v%s — %s", "promote" if decision.promote else "reject", version,
             "; ".join(decision.reasons))
    return decision
