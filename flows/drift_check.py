"""drift_check: is the champion still earning its keep, and does today's data still look like
what it was trained on?

- live performance: the champion's ledger signals against the labels that have since
  realized (IC, rank IC, hit rate), and the book's realized return against the research
  book's on the same days;
- decay: a CUSUM on the live daily rank IC (models/monitoring.py);
- drift: PSI and a KS test per feature and for the score, Benjamini–Hochberg across them, a
  share of features required; a dead feature is drift by itself (models/drift.py);
- data health: staleness per store, missing bars, quarantined symbols.

Decay, or drift that passes its controls, starts ``retrain`` with the reason (written on the
new model version) unless the last retrain is within the cooldown; either one alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from alphaline.alerts import Alert, on_flow_failure, send
from alphaline.calendar import latest_session, sessions, sessions_per_year
from alphaline.console import run_log
from alphaline.errors import MissingPrerequisite
from alphaline.features.compute import compute_labels
from alphaline.flows.retrain import retrain
from alphaline.io import write_json, write_text
from alphaline.models.drift import controlled_drift, cross_sectional_drift, is_dead, ks_binned, psi
from alphaline.models.live_performance import expected_sharpe, walk_forward_expectation
from alphaline.models.monitoring import (
    book_tracking,
    cusum_decay,
    data_health,
    live_ic,
    live_summary,
    retrain_decision,
    sessions_behind,
)
from alphaline.models.registry import CHAMPION, Registry
from alphaline.pipelines import ingest
from alphaline.pipelines.train import book_size
from alphaline.project import Project
from alphaline.runtime import configure_environment
from alphaline.trading.ledger import Ledger, upgrade
from alphaline.trading.ledger.models import Signal


def champion_signals(project: Project, version: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """``date, symbol, score`` of the champion's ledger signals up to ``as_of``."""
    signals = Ledger(project.ledger_url).table(Signal)
    signals = signals[signals["model_version"] == version]
    out = pd.DataFrame({"date": pd.to_datetime(signals["trading_day"]),
                        "symbol": signals["symbol"], "score": signals["score"]})
    return out[out["date"] <= as_of].reset_index(drop=True)


@task(cache_policy=NO_CACHE)
def measure_drift(project: Project, reference: dict, scores: pd.DataFrame,
                  as_of: pd.Timestamp) -> dict:
    """Features over the last ``drift.lookback_days`` of the feature table, and the scores
    over the champion's last as many signal days, against the training reference."""
    d = project.params.drift
    # Recent days live in the daily flow's own table (state/live); research's ends at data.end.
    table_path = project.live_feature_table if project.live_feature_table.is_file() \
        else project.feature_table
    if not table_path.is_file():
        raise MissingPrerequisite(f"{project.feature_table} not found: run retrain first")
    features = pd.read_parquet(table_path)
    features = features[features["date"] <= as_of]
    recent_days = sorted(features["date"].unique())[-d.lookback_days:]
    table = cross_sectional_drift(reference["features"], features, recent_days, d.bins,
                                  d.psi_threshold, d.ks_fdr)
    n_eff = int(features.loc[features["date"].isin(recent_days), "symbol"].nunique())
    score = None
    if len(scores):
        days = sorted(scores["date"].unique())[-d.lookback_days:]
        recent_scores = scores.loc[scores["date"].isin(days), "score"]
        ks, p_value = ks_binned(reference["score"], recent_scores,
                                scores["symbol"].nunique())
        score = {"psi": psi(reference["score"], recent_scores), "ks": ks, "p_value": p_value,
                 "dead": is_dead(reference["score"], recent_scores), "days": len(days)}
    return {"window_start": str(pd.Timestamp(recent_days[0]).date()),
            "window_end": str(pd.Timestamp(recent_days[-1]).date()),
            "effective_n": n_eff, "table": table, "score": score}


@task(cache_policy=NO_CACHE)
def measure_live(project: Project, version: str, registry: Registry, scores: pd.DataFrame,
                 bars: pd.DataFrame | None, as_of: pd.Timestamp) -> dict:
    """Live IC series, its CUSUM against the champion's backtest, and the book's tracking."""
    p = project.params
    h = p.features.label_horizon
    metrics = registry.run_metrics(p.model.name, version)
    expected = float(metrics.get("oos_rank_ic", 0.0))
    ir = float(metrics.get("oos_icir", 0.0))
    sd = expected / ir if expected > 0 and ir > 0 else 1.0  # unused when nothing is expected
    if bars is None or scores.empty:
        labels = pd.DataFrame(columns=["date", "symbol", "label"])
    else:
        labels = compute_labels(bars[bars["date"] <= as_of], h)
    series = live_ic(scores, labels)
    decay = cusum_decay(series["rank_ic"], expected, sd, p.drift.decay.threshold,
                        p.drift.decay.decayed_fraction)
    cal = sessions(p.data.calendar, p.data.start, as_of)
    nav = Ledger(project.ledger_url).nav_history()
    tracking = book_tracking(scores, labels, nav, cal, p.portfolio.quantile, h, **book_size(p))
    metric, sharpe = expected_sharpe(metrics)
    walk_forward = walk_forward_expectation(
        nav, scores["date"].min() if len(scores) else None, cal, sharpe,
        sessions_per_year(p.data.calendar))
    return {"series": series, "summary": live_summary(series), "decay": decay,
            "book": tracking, "walk_forward": {**walk_forward, "metric": metric},
            "backtest": {"rank_ic": expected, "icir": ir, "sd": sd}}


@task(cache_policy=NO_CACHE)
def measure_health(project: Project, bars: pd.DataFrame | None, as_of: pd.Timestamp) -> dict:
    """Staleness per store (research history, live store), missing bars and quarantined
    symbols over the lookback window."""
    p = project.params
    cal = sessions(p.data.calendar, as_of - pd.Timedelta(days=3 * p.drift.lookback_days + 10),
                   as_of)
    window = cal[-p.drift.lookback_days:]
    report = project.reports_dir / "daily" / f"{as_of.date()}.json"
    quarantined = (json.loads(report.read_text()).get("quarantined") or {}
                   if report.is_file() else {})
    health = data_health(bars if bars is not None else
                         pd.DataFrame(columns=["symbol", "date"]), window, quarantined)
    staleness = {}
    for store, path in (("validated", project.validated_bars), ("live", project.live_bars)):
        last = pd.read_parquet(path, columns=["date"])["date"].max() if path.is_file() \
            else None
        staleness[store] = sessions_behind(last, as_of, cal)
    return {**health, "staleness_by_store": staleness}


@flow(name="drift_check", log_prints=True, on_failure=[on_flow_failure])
def drift_check(root: str | None = None, as_of: dt.date | None = None,
                start_retrain: bool = True) -> dict:
    """Holds the shared-state lock throughout; the retrain it starts re-enters it."""
    configure_environment()  # for runs a deployment starts, which do not pass the CLI
    project = Project.load(root)
    project.ensure_dirs()
    upgrade(project.ledger_url)  # measure reads the ledger's signals
    timeout = dt.timedelta(minutes=project.params.schedule.lock_timeout_minutes)
    with run_log("drift_check", project.state_dir / "logs"), \
            Ledger(project.ledger_url).hold_lock("drift_check", timeout):
        return drift_check_locked(project, as_of, start_retrain)


def drift_check_locked(project: Project, as_of: dt.date | None, start_retrain: bool) -> dict:
    """The drift check's work, under the lock."""
    logger = get_run_logger()
    p = project.params
    registry = Registry.for_project(project)
    version = registry.alias_version(p.model.name, CHAMPION)
    if version is None:
        raise MissingPrerequisite(f"no champion for {p.model.name!r}: run retrain first")
    day = latest_session(p.data.calendar, as_of or dt.datetime.now(
        zoneinfo.ZoneInfo(p.schedule.timezone)).date())
    reference = registry.run_artifact(p.model.name, version, "reference.json")
    scores = champion_signals(project, version, day)
    bars = ingest.live_history(project)
    drift = measure_drift(project, reference, scores, day)
    live = measure_live(project, version, registry, scores, bars, day)
    health = measure_health(project, bars, day)

    d = p.drift
    reasons = controlled_drift(drift["table"], drift["score"], d.psi_threshold, d.ks_fdr,
                               d.min_feature_share)
    last = registry.last_retrain_day(p.model.name)
    since = sessions_behind(pd.Timestamp(last), day, sessions(
        p.data.calendar, pd.Timestamp(last), day)) if last else None
    decision = retrain_decision(live["decay"], reasons, since, d.cooldown_sessions)
    table = drift["table"]
    result = {
        "champion": version, "as_of": str(day.date()),
        "window_start": drift["window_start"], "window_end": drift["window_end"],
        "max_feature_psi": float(table["psi_training"].max())
        if table["psi_training"].notna().any() else 0.0,
        "score_psi": drift["score"]["psi"] if drift["score"] else None,
        "score": drift["score"], "effective_n": drift["effective_n"],
        "features": _records(table.head(10)),
        "drifted": table.loc[table["drifted"], "name"].tolist()
        + (["score"] if any(r.startswith("score") for r in reasons) else []),
        "dead": table.loc[table["dead"], "name"].tolist(),
        "drift_reasons": reasons,
        "threshold": d.psi_threshold,
        "live": live["summary"], "backtest": live["backtest"], "book": live["book"],
        "walk_forward": live["walk_forward"],
        "decay": live["decay"].as_dict(), "health": health,
        "sessions_since_retrain": since,
        "retrain_due": bool(decision.reasons), "retrain_suppressed": decision.suppressed,
    }
    write_json(result, project.metrics_dir / "drift.json")
    markdown = report_markdown(result, live["series"])
    write_text(markdown, project.reports_dir / "drift" / f"{day.date()}.md")
    publish(markdown, result)
    alert_on(project, result, live["decay"].alarm, reasons)
    if decision.retrain and start_retrain:
        logger.warning("retrain: %s", decision.reason())
        result["retrain"] = retrain(root=str(project.root), reason=decision.reason(),
                                    as_of=day.date())
    elif decision.reasons:
        logger.warning("retrain due (%s)%s", decision.reason(),
                       f"; not started: {decision.suppressed}" if decision.suppressed else "")
    else:
        logger.info("no decay, no drift: live rank IC %s over %d sessions, max feature PSI %.3f",
                    result["live"]["rank_ic"], result["live"]["sessions"],
                    result["max_feature_psi"])
    return result


def _records(table: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def alert_on(project: Project, result: dict, decayed: bool, reasons: list[str]) -> None:
    details = {"champion": result["champion"], "as_of": result["as_of"],
               "retrain_suppressed": result["retrain_suppressed"]}
    if decayed:
        send(project.params.alerts, Alert(
            "decay", f"{result['as_of']}: champion v{result['champion']} decayed",
            result["decay"]["reason"], details))
    drift = [r for r in reasons if not r.startswith("decay")]
    if drift:
        send(project.params.alerts, Alert(
            "drift", f"{result['as_of']}: drift against champion v{result['champion']}",
            "\n".join(drift), details))


def _fmt(x: object, spec: str = ".4f") -> str:
    return "n/a" if x is None else format(x, spec)


def report_markdown(result: dict, series: pd.DataFrame) -> str:
    """The drift report: live performance, decay, drift, data health."""
    live, book, decay, health = result["live"], result["book"], result["decay"], result["health"]
    wf = result["walk_forward"]
    lines = [
        f"# Drift check {result['as_of']} — champion v{result['champion']}", "",
        "## Live performance", "",
        f"- sessions with realized labels: {live['sessions']} ({live['first']} .. "
        f"{live['last']})",
        f"- IC {_fmt(live['ic'])}, rank IC {_fmt(live['rank_ic'])} (backtest "
        f"{_fmt(result['backtest']['rank_ic'])}), ICIR {_fmt(live['icir'])}, hit rate "
        f"{_fmt(live['hit_rate'], '.1%')}",
        f"- book over {book['sessions']} sessions: realized {_fmt(book['realized_return'], '.2%')}"
        f", research book on the same signals {_fmt(book['expected_return'], '.2%')}",
        f"- book since the champion's first signal, {wf['sessions']} sessions: realized "
        f"{_fmt(wf['realized_return'], '.2%')}, expected {_fmt(wf['expected_return'], '.2%')}"
        f" at the walk-forward's after-cost Sharpe {_fmt(wf['expected_sharpe'], '.2f')} "
        f"({wf['metric'] or 'not recorded'}), t {_fmt(wf['t_stat'], '+.2f')}",
        "", "## Decay", "", f"- {decay['reason']}", "",
        "## Drift", "",
        f"- window {result['window_start']} .. {result['window_end']}, "
        f"{result['effective_n']} symbols",
        *(f"- {r}" for r in result["drift_reasons"]),
        *([] if result["drift_reasons"] else ["- no drift past the controls"]),
        "", "Cross-sectional PSI and KS against the feature's own past (p: against its past "
        "windows), raw PSI against the training reference:", "",
        "| feature | PSI | KS | p | PSI vs training | dead | drifted |",
        "|---|---|---|---|---|---|---|",
        *(f"| {f['name']} | {_fmt(f['psi'], '.3f')} | {_fmt(f['ks'], '.3f')} | "
          f"{_fmt(f['p_value'], '.2g')} | {_fmt(f['psi_training'], '.3f')} | {f['dead']} | "
          f"{f['drifted']} |" for f in result["features"]),
        "", "## Data health", "",
        f"- staleness (sessions behind {health['as_of']}): " + ", ".join(
            f"{k} {_fmt(v, 'd')}" for k, v in health["staleness_by_store"].items()),
        f"- missing bars {health['bars_missing']} of {health['bars_expected']} "
        f"({health['missing_share']:.1%}); stale symbols {len(health['stale_symbols'])}",
        f"- quarantined {len(health['quarantined'])} of {health['universe']} symbols "
        f"({health['quarantined_share']:.1%})",
        "", "## Retrain", "",
        f"- due: {result['retrain_due']}" + (f"; suppressed: {result['retrain_suppressed']}"
                                            if result["retrain_suppressed"] else ""),
    ]
    if len(series):
        lines += ["", "## Live rank IC, last 10 sessions", "", "| day | IC | rank IC | names |",
                  "|---|---|---|---|"]
        lines += [f"| {d.date()} | {r.ic:.4f} | {r.rank_ic:.4f} | {int(r.n)} |"
                  for d, r in series.tail(10).iterrows()]
    return "\n".join(lines) + "\n"


def publish(markdown: str, result: dict) -> None:
    """The report and the health metrics as Prefect artifacts, for the UI."""
    create_markdown_artifact(markdown, key="drift-report",
                             description=f"drift check {result['as_of']}")
    health = result["health"]
    create_table_artifact([
        {"metric": "live_rank_ic", "value": result["live"]["rank_ic"]},
        {"metric": "live_hit_rate", "value": result["live"]["hit_rate"]},
        {"metric": "book_realized_return", "value": result["walk_forward"]["realized_return"]},
        {"metric": "book_expected_return_walk_forward",
         "value": result["walk_forward"]["expected_return"]},
        {"metric": "decay_cusum", "value": result["decay"]["statistic"]},
        {"metric": "max_feature_psi", "value": result["max_feature_psi"]},
        {"metric": "features_drifted", "value": len(result["drifted"])},
        {"metric": "missing_bars", "value": health["bars_missing"]},
        {"metric": "quarantined_share", "value": health["quarantined_share"]},
        {"metric": "max_staleness_sessions", "value": health["max_staleness_sessions"]},
        *({"metric": f"staleness_{k}", "value": v}
          for k, v in health["staleness_by_store"].items()),
    ], key="drift-health", description=f"data health and monitoring {result['as_of']}")
