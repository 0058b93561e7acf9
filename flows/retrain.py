"""retrain: ingest → validate → features → tune → train → gate → promote; with
``model.tft.enabled`` the TFT (and the stack of both) then go through the same gate."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alphaline.alerts import on_flow_failure
from alphaline.calendar import latest_session
from alphaline.console import run_log
from alphaline.flows import parallel
from alphaline.models.registry import Registry
from alphaline.pipelines import evaluate, featurize, ingest, train
from alphaline.project import Project
from alphaline.runtime import configure_environment
from alphaline.trading.ledger import Ledger, upgrade


@task(retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def fetch_history(project: Project):
    return ingest.ingest_history(project)


@task(cache_policy=NO_CACHE)
def validate_history(project: Project) -> int:
    return ingest.validate_history(project).rows


@task(cache_policy=NO_CACHE)
def build_features(project: Project) -> int:
    fp = project.params.features
    tables = featurize.build(ingest.load_validated(project), fp, parallel.mapper(fp.parallel),
                             fp.parallel.chunks)
    featurize.write(project, tables)
    return len(tables.features)


@task(cache_policy=NO_CACHE)
def tune_and_train(project: Project) -> dict:
    run_trials = parallel.trial_runner(project.params.tuning.parallel)
    return train.run_train(project, run_trials=run_trials).model_dump()


@task(cache_policy=NO_CACHE)
def gate(project: Project) -> dict:
    decision = evaluate.run_evaluate(project,
                                     map_folds=parallel.fold_mapper(project.params.cv.parallel))
    return {"promoted": decision.promote, "reasons": decision.reasons}


@task(cache_policy=NO_CACHE)
def train_tft(project: Project) -> list[dict]:
    """The TFT (and the stack) tuned, trained, registered and gated in turn."""
    from alphaline.pipelines.train_tft import run_train_tft

    return [{"version": r.version, "promoted": r.promoted, "reasons": r.reasons}
            for r in run_train_tft(project)]


@flow(name="retrain", log_prints=True, on_failure=[on_flow_failure])
def retrain(root: str | None = None, as_of: dt.date | None = None, reason: str = "schedule",
            refresh_data: bool = True) -> dict:
    """Retrain on history up to ``as_of`` (default: the latest exchange session), holding the
    shared-state lock (re-entered when drift_check, which holds it, starts this flow)."""
    configure_environment()  # for runs a deployment starts, which do not pass the CLI
    project = Project.load(root)
    cal, tz = project.params.data.calendar, project.params.schedule.timezone
    as_of = as_of or latest_session(cal, dt.datetime.now(zoneinfo.ZoneInfo(tz)).date()).date()
    project = Project(project.root, project.params.with_overrides({"data.end": str(as_of)}))
    project.ensure_dirs()
    upgrade(project.ledger_url)  # the lock lives in the ledger's database
    timeout = dt.timedelta(minutes=project.params.schedule.lock_timeout_minutes)
    with run_log("retrain", project.state_dir / "logs"), \
            Ledger(project.ledger_url).hold_lock("retrain", timeout):
        return retrain_locked(project, reason, refresh_data)


def retrain_locked(project: Project, reason: str, refresh_data: bool) -> dict:
    """The retrain's work, under the lock."""
    logger = get_run_logger()
    logger.info("retrain (%s) on %s .. %s", reason, project.params.data.start,
                project.params.data.end)
    if refresh_data:
        fetch_history(project)
        validate_history(project)
    build_features(project)
    trained = tune_and_train(project)
    # why this version exists (schedule, drift, decay), on the version itself
    Registry.for_project(project).tag_version(
        project.params.model.name, trained["version"],
        {"retrain.reason": reason[:5000], "retrain.as_of": str(project.params.data.end)})
    decision = gate(project)
    if project.params.model.tft.enabled:
        for seq in train_tft(project):
            logger.info("sequence challenger v%s: %s — %s", seq["version"],
                        "promoted to champion" if seq["promoted"] else "not promoted",
                        "; ".join(seq["reasons"]))
    logger.info("v%s: %s — %s", trained["version"],
                "promoted to champion" if decision["promoted"] else "not promoted",
                "; ".join(decision["reasons"]))
    publish_decision(project, trained, decision)
    return {"version": trained["version"], "oos": trained["oos"], **decision}


# the walk-forward figures the retrain's table artifact shows, in this order (when recorded)
FIGURES = ("rank_ic", "ic", "icir", "hit_rate", "sharpe_net_annualized",
           "traded_sharpe_net_annualized", "deflated_sharpe", "deflated_sharpe_before_costs",
           "probabilistic_sharpe", "turnover", "n_trials")


def retrain_figures(version: str, oos: dict, decision: dict) -> list[dict]:
    """``metric, value`` rows: the candidate's walk-forward figures and the gate's verdict."""
    return ([{"metric": "version", "value": version},
             {"metric": "promoted", "value": bool(decision["promoted"])}]
            + [{"metric": k, "value": float(oos[k])} for k in FIGURES if k in oos])


def publish_decision(project: Project, trained: dict, decision: dict) -> None:
    """The gate's decision in the Prefect UI: its reasons as Markdown, the walk-forward
    figures as a table, a link to the walk-forward report."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from alphaline.reporting.publish import link_artifact

    version = trained["version"]
    oos = trained["oos"]
    lines = [f"# {project.params.model.name} v{version}: "
             f"{'promoted to champion' if decision['promoted'] else 'not promoted'}", "",
             f"Walk-forward rank IC {oos['rank_ic']:.4f}, after-cost DSR "
             f"{oos['deflated_sharpe']:.3f} over {int(oos['n_trials'])} trials of the recipe "
             "family.", "", "## The gate's reasons", "",
             *[f"- {r}" for r in decision["reasons"]]]
    create_markdown_artifact("\n".join(lines), key="retrain-decision",
                             description=f"gate decision on v{version}")
    create_table_artifact(retrain_figures(version, oos, decision), key="retrain-figures",
                          description=f"walk-forward figures of v{version}")
    page = project.reports_dir / "train" / f"v{version}" / "index.html"
    if page.is_file():
        link_artifact(page, key="walk-forward-report",
                      description=f"walk-forward of v{version}, after costs")
