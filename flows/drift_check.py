"""drift_check: PSI of recent features and scores against the champion's training reference;
over the threshold it starts ``retrain``."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alphaline.errors import MissingPrerequisite
from alphaline.flows.retrain import retrain
from alphaline.io import write_json
from alphaline.models.drift import drift_table, psi
from alphaline.models.registry import CHAMPION, Registry
from alphaline.project import Project
from alphaline.runtime import configure_environment
from alphaline.trading.ledger import Ledger, upgrade
from alphaline.trading.ledger.models import Signal


@task(cache_policy=NO_CACHE)
def measure(project: Project, as_of: dt.date | None) -> dict:
    p = project.params
    registry = Registry.for_project(project)
    version = registry.alias_version(p.model.name, CHAMPION)
    if version is None:
        raise MissingPrerequisite(f"no champion for {p.model.name!r}: run retrain first")
    reference = registry.run_artifact(p.model.name, version, "reference.json")
    # Recent days live in the daily flow's own table (state/live); research's ends at data.end.
    table_path = project.live_feature_table if project.live_feature_table.is_file() \
        else project.feature_table
    if not table_path.is_file():
        raise MissingPrerequisite(f"{project.feature_table} not found: run retrain first")
    features = pd.read_parquet(table_path)
    if as_of is not None:
        features = features[features["date"] <= pd.Timestamp(as_of)]
    recent_days = sorted(features["date"].unique())[-p.drift.lookback_days:]
    recent = features[features["date"].isin(recent_days)]
    table = drift_table(reference["features"], recent.drop(columns=["symbol", "date"]))
    signals = Ledger(project.ledger_url).table(Signal)
    signals = signals[signals["model_version"] == version]
    score_psi = None
    if len(signals):
        days = sorted(signals["trading_day"].unique())[-p.drift.lookback_days:]
        score_psi = psi(reference["score"], signals[signals["trading_day"].isin(days)]["score"])
    worst = float(table["psi"].max()) if len(table) else 0.0
    return {
        "champion": version, "window_start": str(pd.Timestamp(recent_days[0]).date()),
        "window_end": str(pd.Timestamp(recent_days[-1]).date()),
        "max_feature_psi": worst, "score_psi": score_psi,
        "features": table.head(10).to_dict(orient="records"),
    }


@flow(name="drift_check", log_prints=True)
def drift_check(root: str | None = None, as_of: dt.date | None = None,
                start_retrain: bool = True) -> dict:
    """Holds the shared-state lock throughout; the retrain it starts re-enters it."""
    configure_environment()  # for runs a deployment starts, which do not pass the CLI
    project = Project.load(root)
    project.ensure_dirs()
    upgrade(project.ledger_url)  # measure reads the ledger's signals
    timeout = dt.timedelta(minutes=project.params.schedule.lock_timeout_minutes)
    with Ledger(project.ledger_url).hold_lock("drift_check", timeout):
        return drift_check_locked(project, as_of, start_retrain)


def drift_check_locked(project: Project, as_of: dt.date | None, start_retrain: bool) -> dict:
    """The drift check's work, under the lock."""
    logger = get_run_logger()
    result = measure(project, as_of)
    threshold = project.params.drift.psi_threshold
    drifted = [f["name"] for f in result["features"] if f["psi"] > threshold]
    if result["score_psi"] is not None and result["score_psi"] > threshold:
        drifted.append("score")
    result["drifted"] = drifted
    result["threshold"] = threshold
    write_json(result, project.metrics_dir / "drift.json")
    if drifted:
        logger.warning("drift over PSI %.2f in %s", threshold, drifted)
        if start_retrain:
            result["retrain"] = retrain(root=str(project.root), reason=f"drift in {drifted}",
                                        as_of=as_of)
    else:
        logger.info("no drift: max feature PSI %.3f, score PSI %s", result["max_feature_psi"],
                    result["score_psi"])
    return result
