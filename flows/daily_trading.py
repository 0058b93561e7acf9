"""daily_trading: today's bars → features → champion scores → risk-checked orders → ledger."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from alphaline.calendar import is_session, require_settled
from alphaline.features import store as feast_store
from alphaline.flows import parallel
from alphaline.io import write_text
from alphaline.models.registry import Registry
from alphaline.pipelines import featurize, ingest
from alphaline.project import Project
from alphaline.runtime import configure_environment
from alphaline.trading import daily
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.corporate_actions import actions_on
from alphaline.trading.costs import CostModel
from alphaline.trading.ledger import Ledger, upgrade
from alphaline.trading.marks import last_closes, suspected_delistings


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
    fp = project.params.features
    tables = featurize.build(bars, fp, parallel.mapper(fp.parallel), fp.parallel.chunks)
    store = featurize.write_live(project, tables)  # the live table and its own Feast repo
    feast_store.materialize_day(store, pd.Timestamp(day), project.params.data.calendar)
    return store


@task(cache_policy=NO_CACHE)
def champion_scores(project: Project, store, day: dt.date, symbols: list[str]):
    model, version, features = Registry.for_project(project).load_alias(
        project.params.model.name)
    vectors = feast_store.online_vectors(store, symbols, features)
    return daily.score(model, vectors, project.params.model.explain_top), version


@task(cache_policy=NO_CACHE)
def settle(ledger: Ledger, broker: PaperBroker, snap: daily.MarketSnapshot
           ) -> tuple[daily.OpeningResult, int, list[str], object]:
    """Resolve what a crash or a halt left, fill the orders due at today's close, expire the
    day orders that did not fill, mark the book."""
    opening = daily.open_day(ledger, broker, snap.day)
    fills = daily.fill_working_orders(ledger, broker, snap)
    expired = daily.expire_day_orders(ledger, broker, snap.day)
    return opening, fills, expired, ledger.mark_to_market(snap.day, snap.close)


@task(cache_policy=NO_CACHE)  # no retries: a retry must not send an order twice
def rebalance(project: Project, ledger: Ledger, broker: PaperBroker, scores: pd.DataFrame,
              snap: daily.MarketSnapshot, nav: float, version: str) -> daily.Placement:
    """Plan against positions plus working orders, then risk-check, record and send."""
    intents = daily.plan(snap.day, scores, daily.planning_holdings(ledger, snap.day), nav, snap,
                         project.params)
    return daily.place(ledger, broker, intents, snap, nav, project.params, version)


def paper_journal(project: Project):
    """The paper broker's own record of what it was sent (kept with the service stores)."""
    return project.state_dir / "paper_broker.jsonl"


def exchange_today(tz: str) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(tz)).date()


@flow(name="daily_trading", log_prints=True)
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
    with Ledger(project.ledger_url).hold_lock("daily_trading", timeout):
        return trade_day(project, day)


def trade_day(project: Project, day: dt.date) -> dict:
    """The day's work, under the lock: bars → features → scores → settle → rebalance → report."""
    p = project.params
    logger = get_run_logger()
    stored = validate_and_store(project, fetch_latest(project, day), day)
    # Quarantined symbols have no bar today in ``bars``: out of today's book, marks stale.
    bars, quarantined = stored.bars, stored.quarantined
    for symbol, reasons in quarantined.items():
        logger.warning("%s: %s quarantined, out of today's book: %s", day, symbol, reasons[0])
    store = refresh_features(project, bars, day)
    snap = daily.market_snapshot(bars, day)
    scores, version = champion_scores(project, store, day, sorted(snap.close))

    ledger = Ledger(project.ledger_url)
    ledger.ensure_initial_cash(day, p.broker.initial_cash)
    broker = PaperBroker(CostModel.from_params(p.broker), journal=paper_journal(project))
    signals = ledger.record_signals(day, scores, p.model.name, version)
    # splits and dividends reach the book before anything reads holdings or cash
    ledger.apply_corporate_actions(actions_on(bars, day), p.data.source)
    opening, fills, expired, nav_row = settle(ledger, broker, snap)
    placed = rebalance(project, ledger, broker, scores, snap, nav_row.nav, version)
    nav_row = ledger.mark_to_market(day, snap.close, last_closes(bars, day), p.data.calendar)
    stale = ledger.stale_marks(day)
    delisted = suspected_delistings(stale, p.trading.delisting_after_sessions)
    if stale:
        logger.warning("%s: %d held names marked at an earlier price; suspected delistings: %s",
                       day, len(stale), delisted or "none")

    result = daily.DayResult(
        day=day, model_version=version, signals=signals, fills=fills,
        orders_submitted=placed.sent, orders_rejected=placed.rejected,
        orders_already_placed=placed.already, orders_resent=opening.resent,
        orders_cancelled=opening.cancelled, orders_expired=expired, nav=nav_row.nav,
        gross_exposure=nav_row.gross_exposure, net_exposure=nav_row.net_exposure,
        corporate_actions=[a.cause for a in ledger.adjustments(day)],
        stale_marks=[{"symbol": m.symbol, "price_day": str(m.price_day), "price": m.price,
                      "sessions": m.stale_sessions} for m in stale],
        suspected_delistings=delisted)
    report = project.reports_dir / "daily" / f"{day}.md"
    write_text(daily.report_markdown(result, scores, ledger), report)
    write_text(daily.result_json(result), report.with_suffix(".json"))
    logger.info("%s: %d submitted, %d rejected, %d already placed, NAV %.2f — report %s", day,
                len(result.orders_submitted), len(result.orders_rejected), placed.already,
                result.nav, report)
    return {**result.__dict__, "day": str(day), "report": str(report)}
