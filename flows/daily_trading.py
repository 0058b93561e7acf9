"""daily_trading: today's bars → features → champion scores → risk-checked orders → ledger."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from alphaline.alerts import day_alerts, on_flow_failure, send
from alphaline.calendar import is_session, require_settled, sessions, sessions_per_year
from alphaline.console import run_log
from alphaline.features import store as feast_store
from alphaline.features.compute import compute_labels
from alphaline.features.definitions import feature_names
from alphaline.flows import parallel
from alphaline.io import write_text
from alphaline.models.live_performance import LivePerformance, live_performance
from alphaline.models.registry import Registry
from alphaline.models.tft import window_as_of
from alphaline.pipelines import featurize, ingest
from alphaline.project import Project
from alphaline.reporting import daily as day_page
from alphaline.reporting.publish import link_artifact
from alphaline.runtime import configure_environment
from alphaline.trading import daily
from alphaline.trading.brokers import Broker
from alphaline.trading.brokers.ibkr import Endpoint, IbkrBroker
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.corporate_actions import actions_on, split_ratios
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import Schedules
from alphaline.trading.ledger import Ledger, upgrade
from alphaline.trading.ledger.models import Signal
from alphaline.trading.marks import suspected_delistings

# features the book reads beside the model's own (served when the sets compute them)
BOOK_FEATURES = ("garch_vol", "beta_60")


@task(retries=3, retry_delay_seconds=60, cache_policy=NO_CACHE)
def fetch_latest(project: Project, day: dt.date) -> pd.DataFrame:
    return ingest.fetch_window(project, day)


@task(cache_policy=NO_CACHE)  # a failed validation is final: retrying would not change the data
def validate_and_store(project: Project, batch: pd.DataFrame, day: dt.date
                       ) -> ingest.StoredBatch:
    """The batch's passing part merged into the live store (state/live, never a DVC out);
    symbols whose rows failed come back in ``quarantined`` (symbol → reasons)."""
    return ingest.store_batch(project, batch, day)


@task(cache_policy=NO_CACHE)
def refresh_features(project: Project, bars: pd.DataFrame, day: dt.date):
    """The day's features appended to the live table (the whole history when it cannot be:
    no table yet, a missed session, a corporate action; the log says which)."""
    fp = project.params.features
    live = featurize.build_day(bars, fp, day, featurize.read_live(project),
                               parallel.mapper(fp.parallel), fp.parallel.chunks)
    store = featurize.write_live_day(project, live)  # the live table and its own Feast repo
    feast_store.materialize_day(store, pd.Timestamp(day), project.params.data.calendar)
    return store


@task(cache_policy=NO_CACHE)
def load_champion(project: Project):
    return Registry.for_project(project).load_alias(project.params.model.name)


@task(cache_policy=NO_CACHE)
def champion_scores(project: Project, store, champion, symbols: list[str], bars: pd.DataFrame,
                    day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's scores (with reasons) and the online feature vectors they came from;
    a sequence model (the TFT, a stack) also reads its encoder window, as of the day."""
    model, _, features = champion
    served = feature_names(project.params.features.sets)
    extra = [n for n in BOOK_FEATURES if n in served and n not in features]
    vectors = feast_store.online_vectors(store, symbols, [*features, *extra])
    window = None
    if model.context_sessions:
        window = sequence_window(project, store, bars, symbols, features, day,
                                 model.context_sessions)
    return daily.score(model, vectors, project.params.model.explain_top, window), vectors


def sequence_window(project: Project, store, bars: pd.DataFrame, symbols: list[str],
                    features: list[str], day: dt.date, context: int) -> pd.DataFrame:
    """The ``context`` sessions up to and including ``day`` (one encoder window per name):
    features from the offline store (point-in-time, each session's close), returns from
    the validated bars."""
    cal = project.params.data.calendar
    days = sessions(cal, pd.Timestamp(day) - pd.Timedelta(days=2 * context + 31), day)
    days = days[-context:]
    entities = pd.DataFrame([(s, d) for d in days for s in symbols], columns=["symbol", "date"])
    rows = feast_store.historical(store, entities, features, cal)
    return window_as_of(rows, bars, day, context)


@task(cache_policy=NO_CACHE)
def measure_live_performance(project: Project, version: str, bars: pd.DataFrame,
                             day: dt.date) -> LivePerformance:
    """The champion's ledger signals against the labels realized in the bars known today,
    and its ledger book against the walk-forward's after-cost expectation."""
    from alphaline.pipelines.train import book_size

    p = project.params
    h = p.features.label_horizon
    ledger = Ledger(project.ledger_url)
    rows = ledger.table(Signal)
    rows = rows[(rows["model_version"] == version)
                & (pd.to_datetime(rows["trading_day"]) <= pd.Timestamp(day))]
    signals = pd.DataFrame({"date": pd.to_datetime(rows["trading_day"]),
                            "symbol": rows["symbol"], "score": rows["score"]})
    known = bars[pd.to_datetime(bars["date"]) <= pd.Timestamp(day)]
    labels = compute_labels(known, h) if len(signals) else \
        pd.DataFrame(columns=["date", "symbol", "label"])
    first = signals["date"].min() if len(signals) else pd.Timestamp(day)
    cal = sessions(p.data.calendar, first, day)
    metrics = Registry.for_project(project).run_metrics(p.model.name, version)
    return live_performance(version, signals, labels, ledger.nav_history(), cal, metrics,
                            h, p.portfolio.quantile, sessions_per_year(p.data.calendar),
                            **book_size(p))


@task(cache_policy=NO_CACHE)  # no retries: a retry must not send an order twice
def trade(project: Project, snap: daily.MarketSnapshot, bars: pd.DataFrame, actions: list,
          scores: pd.DataFrame, version: str | None, vectors: pd.DataFrame | None,
          champion_error: str | None) -> daily.LedgerDay:
    """Settle, run the kill switches, rebalance and mark: the ledger side of the day."""
    ledger = Ledger(project.ledger_url)
    broker = make_broker(project, ledger)
    try:
        return daily.run_ledger_day(ledger, broker, project.params, snap, bars, actions,
                                    scores, version, vectors=vectors,
                                    champion_error=champion_error)
    finally:
        if isinstance(broker, IbkrBroker):
            if broker.last_reconciliation is not None:
                write_text(broker.last_reconciliation.markdown(),
                           project.reports_dir / "reconciliation" / f"{snap.day}.md")
            broker.close()


def make_broker(project: Project, ledger: Ledger) -> Broker:
    """The broker ``broker.kind`` names: the paper broker, or Interactive Brokers (connected;
    where to comes from the environment, see the README)."""
    p = project.params
    if p.broker.kind == "ibkr":
        return IbkrBroker(ledger, CostModel.from_params(p.broker), p.broker.ibkr,
                          Endpoint.from_env()).connect()
    return PaperBroker(CostModel.from_params(p.broker), journal=paper_journal(project),
                       schedules=Schedules.from_params(p.broker.execution))


def paper_journal(project: Project):
    """The paper broker's own record of what it was sent (kept with the service stores)."""
    return project.state_dir / "paper_broker.jsonl"


def exchange_today(tz: str) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(tz)).date()


@flow(name="daily_trading", log_prints=True, on_failure=[on_flow_failure])
def daily_trading(day: dt.date | None = None, root: str | None = None, force: bool = False
                  ) -> dict:
    """One exchange day, after its close (plus the settle delay; ``force`` runs it earlier).
    Safe to rerun: nothing is placed twice. One run at a time: it holds the shared-state lock
    that retrain and drift_check take too."""
    configure_environment()  # for runs a deployment starts, which do not pass the CLI
    project = Project.load(root)
    project.ensure_dirs()
    upgrade(project.ledger_url)  # the ledger's schema step; a no-op when it is at head
    p = project.params
    logger = get_run_logger()
    day = day or exchange_today(p.schedule.timezone)
    if not is_session(p.data.calendar, day):
        logger.info("%s is not a %s session: nothing to do", day, p.data.calendar)
        return {"day": str(day), "skipped": "not an exchange session"}
    if force:
        logger.warning("%s: run with force, whether or not its session has settled", day)
    else:
        require_settled(p.data.calendar, day,
                        dt.timedelta(minutes=p.schedule.settle_delay_minutes),
                        dt.datetime.now(dt.UTC), p.schedule.timezone)
    timeout = dt.timedelta(minutes=p.schedule.lock_timeout_minutes)
    with run_log("daily_trading", project.state_dir / "logs"), \
            Ledger(project.ledger_url).hold_lock("daily_trading", timeout):
        return trade_day(project, day)


def trade_day(project: Project, day: dt.date) -> dict:
    """The day's work, under the lock: bars → features → scores → settle → kill switches →
    rebalance → mark → risk report."""
    p = project.params
    logger = get_run_logger()
    stored = validate_and_store(project, fetch_latest(project, day), day)
    # Quarantined symbols have no bar today in ``bars``: out of today's book, marks stale.
    bars, quarantined = stored.bars, stored.quarantined
    for symbol, reasons in quarantined.items():
        logger.warning("%s: %s quarantined, out of today's book: %s", day, symbol, reasons[0])
    store = refresh_features(project, bars, day)
    actions = actions_on(bars, day)
    snap = daily.market_snapshot(bars, day, splits=split_ratios(actions))

    champion_error, version = None, None
    scores = pd.DataFrame(columns=["symbol", "score", "reasons"])
    vectors = None
    try:
        champion = load_champion(project)
    except Exception as exc:  # any failure to load is the same switch
        champion_error = f"{type(exc).__name__}: {exc}"
        logger.error("%s: the champion cannot be loaded: %s", day, champion_error)
    else:
        version = champion[1]
        if snap.close:  # no bar today: nothing to score (the stale-data switch stops trading)
            scores, vectors = champion_scores(project, store, champion, sorted(snap.close),
                                              bars, day)
    done = trade(project, snap, bars, actions, scores, version, vectors, champion_error)
    decision, placed, opening, nav_row = done.decision, done.placed, done.opening, done.nav
    if decision.no_trade_reason:
        logger.warning("%s: no orders today: %s", day, decision.no_trade_reason)
    ledger = Ledger(project.ledger_url)
    stale = ledger.stale_marks(day)
    delisted = suspected_delistings(stale, p.trading.delisting_after_sessions)
    if stale:
        logger.warning("%s: %d held names marked at an earlier price; suspected delistings: %s",
                       day, len(stale), delisted or "none")
    risk = daily.day_risk(ledger, bars, day, nav_row.nav, p, decision)
    for alert in day_alerts(str(day), ledger.trading_state(), decision.state is not None,
                            list(decision.reasons), quarantined):
        send(p.alerts, alert)

    result = daily.DayResult(
        day=day, model_version=version or "none", signals=done.signals, fills=done.fills,
        orders_submitted=placed.sent, orders_rejected=placed.rejected,
        orders_already_placed=placed.already, orders_resent=opening.resent,
        orders_cancelled=opening.cancelled, orders_expired=done.expired, nav=nav_row.nav,
        gross_exposure=nav_row.gross_exposure, net_exposure=nav_row.net_exposure,
        corporate_actions=[a.cause for a in ledger.adjustments(day)],
        stale_marks=[{"symbol": m.symbol, "price_day": str(m.price_day), "price": m.price,
                      "sessions": m.stale_sessions} for m in stale],
        suspected_delistings=delisted, quarantined=quarantined,
        trading_state=ledger.trading_state(), kill_switches=list(decision.reasons),
        no_trade_reason=decision.no_trade_reason, borrow_fee=done.borrow_fee,
        risk=risk, tca=daily.tca_records(ledger, day))
    live = measure_live_performance(project, version, bars, day) if version else None
    report = project.reports_dir / "daily" / f"{day}.md"
    markdown = daily.report_markdown(result, scores, ledger)
    if live is not None:
        markdown = markdown.rstrip("\n") + "\n\n" + live.markdown()
    write_text(markdown, report)
    write_text(daily.result_json(result), report.with_suffix(".json"))
    marks = {**{m["symbol"]: m["price"] for m in result.stale_marks}, **snap.close}
    page = day_page.write_daily_report(
        result, scores, ledger.nav_history(),
        day_page.book_weights(ledger.holdings(through=day), marks, nav_row.nav),
        day_page.orders_frame(ledger.orders(day=day)), report.with_suffix(".html"), live)
    publish_report(day, markdown, result, page, live)
    logger.info("%s: %d submitted, %d rejected, %d already placed, NAV %.2f — report %s", day,
                len(result.orders_submitted), len(result.orders_rejected), placed.already,
                result.nav, report)
    return {**result.__dict__, "day": str(day), "report": str(report),
            "report_html": str(page), "live": live.as_dict() if live is not None else None}


def day_figures(result: daily.DayResult, live: LivePerformance | None) -> list[dict]:
    """The day's key figures as ``metric, value`` rows (the UI's table artifact)."""
    rows = [{"metric": "nav", "value": result.nav},
            {"metric": "gross_exposure", "value": result.gross_exposure},
            {"metric": "net_exposure", "value": result.net_exposure},
            {"metric": "orders_submitted", "value": len(result.orders_submitted)},
            {"metric": "orders_rejected", "value": len(result.orders_rejected)},
            {"metric": "fills", "value": result.fills},
            {"metric": "signals", "value": result.signals},
            {"metric": "borrow_fee", "value": result.borrow_fee},
            {"metric": "trading_state", "value": result.trading_state},
            {"metric": "model_version", "value": result.model_version}]
    return rows + (live.figures() if live is not None else [])


def publish_report(day: dt.date, markdown: str, result: daily.DayResult, page: Path,
                   live: LivePerformance | None = None) -> None:
    """The day in the Prefect UI: the report as a Markdown artifact, its key figures (live
    performance included), the orders and the filled orders' transaction costs as tables,
    and a link to the HTML page with its charts."""
    create_markdown_artifact(markdown, key="daily-report",
                             description=f"alphaline daily report for {day}")
    create_table_artifact(day_figures(result, live), key="daily-figures",
                          description=f"key figures of {day}: book, orders, live performance")
    link_artifact(page, key="daily-report-page",
                  description=f"alphaline daily report for {day}, with charts",
                  link_text=f"daily report {day}")
    rows = ([{"order": cid, "status": "SUBMITTED", "reason": ""}
             for cid in result.orders_submitted]
            + [{"order": cid, "status": "REJECTED", "reason": why}
               for cid, why in result.orders_rejected])
    if rows:
        create_table_artifact(rows, key="daily-orders", description=f"orders of {day}")
    if result.tca:
        create_table_artifact(result.tca, key="daily-tca",
                              description=f"transaction costs of the orders filled on {day}")
