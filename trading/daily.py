"""The steps of one trading day, each a function the daily flow calls in order.

Order of a day ``D`` (after its close): fill the orders decided at ``D-1`` at ``D``'s close,
mark the book to market, then decide ``D``'s rebalance from the champion's scores.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import alphaline.trading.orders as order_life
from alphaline.calendar import sessions, sessions_per_year
from alphaline.config import Params
from alphaline.errors import MissingPrerequisite
from alphaline.models.explain import reason_text
from alphaline.models.signal import SignalModel
from alphaline.trading.book import NO_CONTEXT, BookContext, book_context
from alphaline.trading.brokers import Broker, ReconcilingBroker
from alphaline.trading.corporate_actions import split_ratios
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import Bar, execution_style, start_price
from alphaline.trading.kill_switches import (
    DayFacts,
    KillSwitchDecision,
    apply_decision,
    evaluate_kill_switches,
    headroom,
)
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import DailyNav, Fill, Order, Tca
from alphaline.trading.marks import last_closes
from alphaline.trading.portfolio import OrderIntent
from alphaline.trading.rebalance import RebalancePlan, day_plan
from alphaline.trading.risk_engine import Approved, check_orders, typical_quantities
from alphaline.trading.risk_report import risk_markdown, risk_report
from alphaline.trading.states import ACTIVE, HALTED
from alphaline.trading.tca import fill_tca, price_inclusive_tca, tca_markdown

log = logging.getLogger(__name__)


@dataclass
class MarketSnapshot:
    """What the day's bars say about each symbol: close, daily vol, average volume."""

    day: dt.date
    close: dict[str, float]
    daily_vol: dict[str, float]
    adv: dict[str, float]
    prev_close: dict[str, float] = field(default_factory=dict)  # last validated close before
    # today's open, high and low, where the data have them: schedules are priced along them
    open: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)

    def bar(self, symbol: str) -> Bar:
        """``symbol``'s bar today as the execution schedules read it (nan where missing)."""
        nan = float("nan")
        return Bar(self.open.get(symbol, nan), self.high.get(symbol, nan),
                   self.low.get(symbol, nan), self.close.get(symbol, nan))

    def bars(self) -> dict[str, Bar]:
        return {symbol: self.bar(symbol) for symbol in self.close}


@dataclass
class OpeningResult:
    """What :func:`open_day` did with the orders a crash or a halt left."""

    resent: list[str] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)  # id, cause
    reconciled_fills: int = 0  # executions the broker's account reported while away
    reconciliation: str | None = None  # its summary (a broker with an account)


@dataclass
class Placement:
    """What :func:`place` did: ids sent, ids refused (with the reason), refusals that only
    repeated today's last one (not recorded again), and live orders of the day before it."""

    sent: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    repeated: int = 0
    already: int = 0


@dataclass
class DayResult:
    day: dt.date
    model_version: str
    signals: int
    fills: int
    orders_submitted: list[str] = field(default_factory=list)
    orders_rejected: list[tuple[str, str]] = field(default_factory=list)
    orders_already_placed: int = 0
    orders_resent: list[str] = field(default_factory=list)  # left NEW by a crash, sent again
    orders_cancelled: list[tuple[str, str]] = field(default_factory=list)  # id, cause
    orders_expired: list[str] = field(default_factory=list)
    nav: float = 0.0
    gross_exposure: float = 0.0
    net_exposure: float = 0.0
    corporate_actions: list[str] = field(default_factory=list)  # the day's adjustments
    stale_marks: list[dict] = field(default_factory=list)  # symbol, price_day, price, sessions
    suspected_delistings: list[str] = field(default_factory=list)
    quarantined: dict[str, list[str]] = field(default_factory=dict)  # symbol → reasons
    trading_state: str = ACTIVE
    kill_switches: list[str] = field(default_factory=list)  # the switches that fired, why
    no_trade_reason: str | None = None
    borrow_fee: float = 0.0  # charged on today's short book
    risk: dict = field(default_factory=dict)  # the risk section (trading/risk_report.py)
    tca: list[dict] = field(default_factory=list)  # today's fills' TCA rows (trading/tca.py)


def market_snapshot(bars: pd.DataFrame, day: dt.date, window: int = 20,
                    splits: dict[str, float] | None = None) -> MarketSnapshot:
    """Today's closes (and open, high, low where the data have them), each name's daily
    volatility and ADV over ``window`` sessions, and the previous validated close (restated
    by today's split ratio, so that the price band compares like with like on a split day).
    ADV is NaN without volumes (close-only data)."""
    ts = pd.Timestamp(day)
    hist = bars[bars["date"] <= ts].sort_values(["symbol", "date"])
    today = hist[hist["date"] == ts]  # empty on a stale day: the kill switch says so
    tail = hist.groupby("symbol").tail(window + 1)
    log_ret = np.log(tail["close"]).groupby(tail["symbol"]).diff()
    vol = log_ret.groupby(tail["symbol"]).std()
    adv = (tail.groupby("symbol")["volume"].mean().to_dict() if "volume" in tail
           else dict.fromkeys(today["symbol"], float("nan")))
    prev = hist[hist["date"] < ts].groupby("symbol")["close"].last().to_dict()
    for symbol, ratio in (splits or {}).items():
        if symbol in prev and ratio > 0:
            prev[symbol] /= ratio
    indexed = today.set_index("symbol")
    extra = {c: indexed[c].dropna().astype("float64").to_dict() if c in indexed else {}
             for c in ("open", "high", "low")}
    return MarketSnapshot(day, indexed["close"].to_dict(), vol.to_dict(), adv, prev, **extra)


def scoring_rows(model: SignalModel, vectors: pd.DataFrame, window: pd.DataFrame | None
                 ) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray]:
    """What the model reads to score today's ``vectors``: the rows themselves, or for a
    sequence model the ``window`` (``date, symbol, ret`` + features of today and the
    sessions before it, :func:`alphaline.models.tft.window_as_of`). Returns ``X``, its
    dates (None: one cross-section) and the positions of today's rows of ``vectors`` in X.
    """
    if not model.context_sessions:
        return vectors[model.features].astype("float64"), None, np.arange(len(vectors))
    if window is None or window.empty:
        raise MissingPrerequisite(f"a {model.kind} model scores from the last "
                                  f"{model.context_sessions} sessions of features: none given")
    today = window["date"].max()
    names = set(vectors["symbol"])
    X = window[window["symbol"].isin(names)].reset_index(drop=True)
    X[model.features] = X[model.features].astype("float64")
    now = X.index[X["date"] == today].to_numpy()
    where = pd.Series(now, index=X.loc[now, "symbol"].to_numpy())
    at = where.reindex(vectors["symbol"].to_numpy())
    if at.isna().any():
        missing = sorted(vectors["symbol"][at.isna().to_numpy()].tolist())
        raise MissingPrerequisite(f"the sequence window lacks {today.date()} for {missing}")
    return X, pd.to_datetime(X["date"]).to_numpy(), at.to_numpy().astype(int)


def score(model: SignalModel, vectors: pd.DataFrame, explain_top: int,
          window: pd.DataFrame | None = None, explain: bool = True) -> pd.DataFrame:
    """``symbol, score, reasons, attention`` (+ ``side, probability, size`` with
    meta-labeling): the signal for today's cross-section with each name's reasons (top SHAP
    contributions; the TFT's variable-selection weights and attention). A name the model
    cannot score yet (a sequence model's window not full: a late listing) is left out."""
    X, dates, rows = scoring_rows(model, vectors, window)
    scored = model.score(X, dates).iloc[rows].reset_index(drop=True)
    if explain:
        reasons, attention = model.reasons(X, explain_top, dates)
        reasons, attention = [reasons[i] for i in rows], [attention[i] for i in rows]
    else:
        reasons, attention = [[]] * len(rows), [None] * len(rows)
    out = scored.assign(symbol=vectors["symbol"].to_numpy(), reasons=reasons,
                        attention=attention)
    unscored = out["score"].isna()
    if unscored.any():
        log.info("%d names have no score yet (their sequence window is not full): %s",
                 int(unscored.sum()), ", ".join(sorted(out.loc[unscored, "symbol"])[:10]))
    return out[~unscored].reset_index(drop=True)


def open_day(ledger: Ledger, broker: Broker, day: dt.date) -> OpeningResult:
    """Start of a run (and what to call at startup): resolve what a crash or a halt left.

    HALTED: every live order is cancelled ("trading HALTED: <reason>"). Then each ``NEW``
    order (written, perhaps never sent) of ``day`` or earlier: one of ``day``, approved, with
    trading ACTIVE is sent again under its own id (the broker knows a resend as the same
    order); any other is cancelled with the cause, and the day's plan covers it afresh.
    """
    out = OpeningResult()
    if isinstance(broker, ReconcilingBroker):  # the account first: it may halt trading
        rec = broker.reconcile(day)
        out.reconciled_fills, out.reconciliation = len(rec.fills), rec.summary()
    event = ledger.trading_state_event()
    state = event.state if event else ACTIVE
    if state == HALTED:
        out.cancelled += cancel_live(ledger, broker, f"trading HALTED: {event.reason}")
    for o in ledger.orders(status=order_life.NEW):
        if o.trading_day > day:  # a later day's run owns it
            continue
        cid = o.client_order_id
        if o.trading_day == day and o.approved and state == ACTIVE:
            if broker.resend([o]) and _still(ledger, cid, order_life.NEW):
                ledger.transition(cid, order_life.SUBMITTED,
                                  f"resent to {broker.name} under the same id after a crash")
            out.resent.append(cid)
            continue
        why = (f"left NEW by a crash on {o.trading_day}, not sent on its day"
               if o.trading_day != day else f"left NEW by a crash while trading is {state}")
        broker.cancel([cid])
        if _end(ledger, cid, order_life.CANCELLED, why):
            out.cancelled.append((cid, why))
    return out


def _still(ledger: Ledger, cid: str, *statuses: str) -> bool:
    """Whether ``cid`` is still in one of ``statuses`` (a broker's events may have moved it
    while it was being sent or cancelled)."""
    return ledger.statuses([cid]).get(cid) in statuses


def _end(ledger: Ledger, cid: str, to: str, cause: str) -> bool:
    """Move a live order to ``to`` unless the broker ended it first (filled or cancelled
    while the cancel was on its way); returns whether it moved."""
    if not _still(ledger, cid, *order_life.LIVE):
        return False
    ledger.transition(cid, to, cause)
    return True


def cancel_live(ledger: Ledger, broker: Broker, cause: str) -> list[tuple[str, str]]:
    """Cancel every live order (NEW or working) at the broker, then in the ledger. The kill
    switches call this when they halt trading."""
    done = []
    for o in ledger.orders(status=order_life.LIVE):
        broker.cancel([o.client_order_id])
        if _end(ledger, o.client_order_id, order_life.CANCELLED, cause):
            done.append((o.client_order_id, cause))
    return done


def cancel_for_splits(ledger: Ledger, broker: Broker, day: dt.date,
                      ratios: dict[str, float]) -> list[tuple[str, str]]:
    """Orders decided before a split's ex-date are in pre-split shares: cancel them (the
    day's plan re-decides in post-split shares) rather than fill them at the wrong size."""
    done = []
    for o in ledger.orders(status=order_life.LIVE):
        if o.symbol in ratios and o.trading_day < day:
            cause = f"{o.symbol} split {ratios[o.symbol]:g}:1 before it could fill: re-planned"
            broker.cancel([o.client_order_id])
            if _end(ledger, o.client_order_id, order_life.CANCELLED, cause):
                done.append((o.client_order_id, cause))
    return done


def fill_working_orders(ledger: Ledger, broker: Broker, snap: MarketSnapshot) -> int:
    """Fill in ``snap.day``'s session the working orders decided earlier whose session it
    is, each as its execution style says; returns fills added (0 on a rerun). An order that
    missed its session does not fill."""
    due = [o for o in ledger.working_orders(before=snap.day)
           if o.expires_on is None or o.expires_on >= snap.day]
    return ledger.add_fills(broker.fills_at_close(snap.day, due, snap.close,
                                                  snap.daily_vol, snap.adv, snap.bars()))


def order_tca_row(order: Order, fills: list[Fill], snap: MarketSnapshot, costs: CostModel
                  ) -> Tca:
    """One order's TCA over its fills (trading/tca.py): arrival at its decision close, start
    where its style began working (the close for MOC, the open for a schedule), the
    estimate it was decided with (scaled to the filled share of the order). The paper
    broker charges spread and impact beside the price; a live broker's price holds them,
    and its execution is measured against the fill day's close (MOC) or typical price."""
    shares = sum(f.quantity for f in fills)
    average = sum(f.quantity * f.price for f in fills) / shares
    style = order.execution_style or "MOC"
    bar = snap.bar(order.symbol)
    live = order.broker != "paper"
    start = start_price(style, bar)  # for MOC the close, which is what paper MOC fills at
    start = start if np.isfinite(start) else average
    estimate = order.estimated_slippage
    if estimate is None:  # an order decided before estimates were kept: today's figures
        estimate = costs.slippage(order.quantity, order.reference_price,
                                  snap.daily_vol.get(order.symbol, np.nan),
                                  snap.adv.get(order.symbol, np.nan))
    estimate *= abs(shares) / order.quantity
    fees = sum(f.commission for f in fills)
    if live:
        benchmark = (bar.close if style == "MOC" or not bar.has_range
                     else (bar.high + bar.low + bar.close) / 3)
        benchmark = benchmark if np.isfinite(benchmark) else average
        t = price_inclusive_tca(shares, order.reference_price, start, benchmark, average,
                                costs.half_spread_bps, fees, estimate)
    else:
        t = fill_tca(shares, order.reference_price, start, average,
                     sum(f.slippage for f in fills), costs.half_spread_bps, fees, estimate)
    return Tca(client_order_id=order.client_order_id, day=max(f.day for f in fills),
               trading_day=order.trading_day, symbol=order.symbol, side=order.side,
               style=style, **t.as_dict())


def record_tca(ledger: Ledger, costs: CostModel, snap: MarketSnapshot) -> int:
    """The TCA row of every order filled in ``snap.day``'s session, written (again: a rerun
    writes the same figures, a crash after the fills and before this loses nothing)."""
    return ledger.record_tca([order_tca_row(o, fills, snap, costs)
                              for o, fills in ledger.filled_orders(snap.day)])


def expire_day_orders(ledger: Ledger, broker: Broker, day: dt.date) -> list[str]:
    """After ``day``'s fill step: day orders still working whose session was ``day`` or
    earlier are EXPIRED (cancelled at the broker too)."""
    done = []
    for o in ledger.working_orders(before=day):
        if o.expires_on is not None and o.expires_on > day:
            continue
        session = o.expires_on or day
        broker.cancel([o.client_order_id])
        if _end(ledger, o.client_order_id, order_life.EXPIRED,
                f"day order unfilled at the end of its session {session}"):
            done.append(o.client_order_id)
    return done


def day_facts(ledger: Ledger, snap: MarketSnapshot, bars: pd.DataFrame,
              champion_error: str | None, costs: CostModel) -> DayFacts:
    """What the kill switches read beside the NAV history: how fresh the data are, whether
    the champion loaded, and the realized slippage (spread + impact) of the orders filled
    today against the cost model's estimate when they were decided (their TCA rows)."""
    newest = bars.loc[bars["date"] <= pd.Timestamp(snap.day), "date"].max()
    tca = ledger.tca(day=snap.day)
    filled = not tca.empty
    return DayFacts(day=snap.day,
                    last_data_day=None if pd.isna(newest) else pd.Timestamp(newest).date(),
                    champion_error=champion_error,
                    realized_slippage=float((tca["spread"] + tca["impact"]).sum())
                    if filled else None,
                    estimated_slippage=float(tca["estimated_slippage"].sum())
                    if filled else None)


def charge_borrow(ledger: Ledger, costs: CostModel, day: dt.date, closes: dict[str, float],
                  sessions_per_year: float) -> float:
    """One session's borrow fee on the short book held at ``day``'s close, booked once."""
    short_value = sum(-q * closes[s] for s, q in ledger.holdings(through=day).items()
                      if q < 0 and s in closes)
    return ledger.charge_borrow(day, costs.borrow_fee(short_value, sessions_per_year),
                                short_value)


def planning_holdings(ledger: Ledger, day: dt.date) -> dict[str, float]:
    """Positions through ``day`` plus every working order: what the day's plan starts from,
    so that a rerun whose plan the live orders already cover sends nothing."""
    return order_life.projected(ledger.holdings(through=day), ledger.working_quantities())


def plan(day: dt.date, scores: pd.DataFrame, holdings: dict[str, float], nav: float,
         snap: MarketSnapshot, params: Params, context: BookContext = NO_CONTEXT,
         scale: float = 1.0, keep_fraction: float | None = None) -> RebalancePlan:
    """The day's orders: the one book (``portfolio:`` in params) and the rebalance rules;
    the kill switches' verdict scales the book down (``scale``) or, at the last velocity
    tier, keeps only ``keep_fraction`` of every position whatever the model says."""
    return day_plan(day, scores, holdings, nav, snap.close, snap.daily_vol, snap.adv, params,
                    context, scale=scale, keep_fraction=keep_fraction)


def place(ledger: Ledger, broker: Broker, intents: list[OrderIntent], snap: MarketSnapshot,
          nav: float, params: Params, model_version: str) -> Placement:
    """Number, risk-check, record, then send. ``intents`` are planned against holdings plus
    working orders (:func:`planning_holdings`), so on a rerun they hold only what the live
    orders do not cover. Each order is written ``NEW`` before it is sent and ``SUBMITTED``
    after the broker accepts it: a crash in between leaves a ``NEW`` row that
    :func:`open_day` resends under the same id. A refusal that repeats the day's last
    refusal of the same order is not recorded again (a rerun adds nothing)."""
    day = snap.day
    today = ledger.orders(day=day)
    already = sum(o.status in order_life.LIVE for o in today)
    if not intents:
        return Placement(already=already)
    intents = order_life.with_sequences(intents, ledger.last_sequences(day))
    verdict = check_orders(
        intents, holdings=ledger.holdings(through=day), working=ledger.working_quantities(),
        nav=nav, prev_close=snap.prev_close, adv=snap.adv, limits=params.risk,
        known_ids={o.client_order_id for o in today}, trading_state=ledger.trading_state(),
        placed_today=sum(o.approved for o in today),
        typical_quantity=typical_quantities(ledger.approved_quantities(before=day),
                                            params.risk.typical_order_count))
    last_refusal = {(o.symbol, o.intent): (o.side, o.quantity, o.reject_reason)
                    for o in sorted(today, key=lambda o: o.sequence)}
    rejected = [(o, why) for o, why in verdict.rejected
                if last_refusal.get((o.symbol, o.intent)) != (o.side, o.quantity, why)]
    styles = {a.order.client_order_id: execution_style(
        a.order.quantity, snap.adv.get(a.order.symbol, np.nan), params.broker.execution)
        for a in verdict.approved}
    estimates = {a.order.client_order_id: broker.costs.slippage(
        a.order.quantity, a.order.reference_price, snap.daily_vol.get(a.order.symbol, np.nan),
        snap.adv.get(a.order.symbol, np.nan)) for a in verdict.approved}
    ledger.add_orders(verdict.approved, rejected, broker=broker.name,
                      model_version=model_version,
                      expires_on=next_session(params.data.calendar, day),
                      styles=styles, estimates=estimates)
    sent = send(ledger, broker, verdict.approved)
    return Placement(sent=sent, rejected=[(o.client_order_id, why) for o, why in rejected],
                     repeated=len(verdict.rejected) - len(rejected), already=already)


def send(ledger: Ledger, broker: Broker, approved: list[Approved]) -> list[str]:
    """Hand approved orders (already ``NEW`` in the ledger) to the broker, then mark each
    ``SUBMITTED``. Never retried here: a resend happens only through :func:`open_day`."""
    accepted = broker.submit(approved)
    statuses = ledger.statuses(accepted)  # a broker's acknowledgement may have come first
    ledger.transition_many([(cid, order_life.SUBMITTED, f"accepted by {broker.name}")
                            for cid in accepted if statuses.get(cid) == order_life.NEW])
    return accepted


def next_session(calendar: str, day: dt.date) -> dt.date:
    """The session after ``day``: when an order decided at ``day``'s close can fill."""
    return sessions(calendar, day + dt.timedelta(days=1), day + dt.timedelta(days=15))[0].date()


def report_markdown(result: DayResult, scores: pd.DataFrame, ledger: Ledger) -> str:
    lines = [
        f"# alphaline daily report — {result.day}",
        "",
        f"- model version: {result.model_version}",
        f"- signals recorded: {result.signals}",
        f"- fills in today's session: {result.fills}",
        f"- orders submitted: {len(result.orders_submitted)}; rejected by risk: "
        f"{len(result.orders_rejected)}; already placed earlier: {result.orders_already_placed}",
        f"- NAV: {result.nav:,.2f}  (gross {result.gross_exposure:.2f}, "
        f"net {result.net_exposure:+.3f})",
        "",
        "## Top and bottom scores",
        "",
        "| symbol | score | top reasons (SHAP, or TFT weights) |",
        "|---|---:|---|",
    ]
    ordered = scores.sort_values("score", ascending=False)
    for _, r in pd.concat([ordered.head(5), ordered.tail(5)]).iterrows():
        why = ", ".join(reason_text(c) for c in r["reasons"][:3])
        lines.append(f"| {r['symbol']} | {r['score']:+.4f} | {why} |")
    if result.no_trade_reason or result.kill_switches or result.trading_state != ACTIVE:
        lines += ["", "## Trading state", "", f"- state: {result.trading_state}"]
        lines += [f"- kill switch: {why}" for why in result.kill_switches]
        if result.no_trade_reason:
            lines.append(f"- no orders today: {result.no_trade_reason}")
    if result.quarantined:
        lines += ["", "## Quarantined symbols (out of today's book; a held position is frozen)",
                  ""]
        lines += [f"- {symbol}: {'; '.join(reasons)}"
                  for symbol, reasons in sorted(result.quarantined.items())]
    if result.corporate_actions:
        lines += ["", "## Corporate actions", ""]
        lines += [f"- {cause}" for cause in result.corporate_actions]
    if result.stale_marks:
        lines += ["", "## Stale marks (no bar today: marked at the last price)", "",
                  "| symbol | price | from | sessions without a bar | suspected delisting |",
                  "|---|---:|---|---:|---|"]
        lines += [f"| {m['symbol']} | {m['price']:,.4f} | {m['price_day']} | {m['sessions']} | "
                  f"{'yes' if m['symbol'] in result.suspected_delistings else ''} |"
                  for m in result.stale_marks]
    if result.orders_rejected:
        lines += ["", "## Rejected orders", ""]
        lines += [f"- {cid}: {why}" for cid, why in result.orders_rejected]
    if result.orders_resent or result.orders_cancelled or result.orders_expired:
        lines += ["", "## Orders resolved at the start of the day", ""]
        lines += [f"- {cid}: resent under the same id (left NEW by a crash)"
                  for cid in result.orders_resent]
        lines += [f"- {cid}: cancelled — {why}" for cid, why in result.orders_cancelled]
        lines += [f"- {cid}: expired unfilled" for cid in result.orders_expired]
    tca = ledger.tca(day=result.day)
    if not tca.empty:
        lines += ["", tca_markdown(tca).rstrip()]
    if result.risk:
        lines += ["", risk_markdown(result.risk).rstrip()]
    nav = ledger.nav_history()
    if len(nav):
        lines += ["", "## NAV history", "", "| day | NAV | gross | net |", "|---|---:|---:|---:|"]
        for _, r in nav.tail(10).iterrows():
            lines.append(f"| {r['day']} | {r['nav']:,.2f} | {r['gross_exposure']:.2f} | "
                         f"{r['net_exposure']:+.3f} |")
    return "\n".join(lines) + "\n"


def tca_records(ledger: Ledger, day: dt.date) -> list[dict]:
    """The TCA rows of the orders filled on ``day``, rounded for a table: order, style,
    shares, prices, each component and the shortfall in dollars and bps, the estimate."""
    rows = ledger.tca(day=day)
    out = []
    for r in rows.itertuples():
        notional = abs(r.shares) * r.arrival_price
        out.append({"order": r.client_order_id, "style": r.style, "shares": r.shares,
                    "arrival": round(r.arrival_price, 4), "start": round(r.start_price, 4),
                    "avg_fill": round(r.average_fill, 4), "delay": round(r.delay, 2),
                    "drift": round(r.drift, 2), "spread": round(r.spread, 2),
                    "impact": round(r.impact, 2), "fees": round(r.fees, 2),
                    "shortfall": round(r.shortfall, 2),
                    "shortfall_bps": round(r.shortfall / notional * 1e4, 2) if notional else None,
                    "estimated_slippage": round(r.estimated_slippage, 2),
                    "slippage_vs_estimate": round(r.slippage_vs_estimate, 2)})
    return out


def result_json(result: DayResult) -> str:
    return json.dumps(result.__dict__, default=str, indent=2)


def settle_day(ledger: Ledger, broker: Broker, snap: MarketSnapshot, calendar: str
               ) -> tuple[OpeningResult, int, list[str], DailyNav]:
    """Resolve what a crash or a halt left, fill the orders due in today's session and
    record their TCA, expire the day orders that did not fill, mark the book."""
    opening = open_day(ledger, broker, snap.day)
    fills = fill_working_orders(ledger, broker, snap) + opening.reconciled_fills
    record_tca(ledger, broker.costs, snap)
    expired = expire_day_orders(ledger, broker, snap.day)
    return opening, fills, expired, ledger.mark_to_market(snap.day, snap.close,
                                                          calendar=calendar)


@dataclass
class LedgerDay:
    """What the ledger side of a day did (:func:`run_ledger_day`)."""

    signals: int
    opening: OpeningResult
    fills: int
    expired: list[str]
    decision: KillSwitchDecision
    placed: Placement
    nav: DailyNav
    borrow_fee: float


def run_ledger_day(ledger: Ledger, broker: Broker, params: Params, snap: MarketSnapshot,
                   bars: pd.DataFrame, actions: list, scores: pd.DataFrame,
                   version: str | None, *, vectors: pd.DataFrame | None = None,
                   champion_error: str | None = None) -> LedgerDay:
    """The ledger side of a day, in its one order: signals → corporate actions → settle →
    kill switches → (cancel when HALTED) → rebalance → mark → borrow fee.

    Every step is idempotent, so a run killed anywhere and run again ends where an
    uninterrupted run ends. ``version`` None (no champion): nothing is recorded or planned.
    """
    p = params
    day = snap.day
    ledger.ensure_initial_cash(day, p.broker.initial_cash)
    signals = (ledger.record_signals(day, scores, p.model.name, version)
               if version is not None and len(scores) else 0)
    # splits and dividends reach the book before anything reads holdings or cash
    ledger.apply_corporate_actions(actions, p.data.source)
    split_cancels = cancel_for_splits(ledger, broker, day, split_ratios(actions))
    opening, fills, expired, nav = settle_day(ledger, broker, snap, p.data.calendar)
    opening.cancelled.extend(split_cancels)
    decision = evaluate_kill_switches(ledger.nav_history(), day_facts(
        ledger, snap, bars, champion_error, broker.costs), p.risk.kill_switches)
    if apply_decision(ledger, decision) == HALTED:
        cause = f"trading HALTED: {ledger.trading_state_event().reason}"
        opening.cancelled.extend(cancel_live(ledger, broker, cause))
    placed = Placement()
    if version is not None and not decision.no_trade_reason:
        context = book_context(bars, day, p.portfolio.covariance_lookback, vectors)
        planned = plan(day, scores, planning_holdings(ledger, day), nav.nav, snap, p, context,
                       scale=decision.scale, keep_fraction=decision.keep_fraction)
        placed = place(ledger, broker, planned.orders, snap, nav.nav, p, version)
    nav = ledger.mark_to_market(day, snap.close, last_closes(bars, day), p.data.calendar)
    # a broker with an account charges its own borrow fees (reconciled as cash)
    borrow = 0.0 if isinstance(broker, ReconcilingBroker) else charge_borrow(
        ledger, broker.costs, day, snap.close, sessions_per_year(p.data.calendar))
    return LedgerDay(signals, opening, fills, expired, decision, placed, nav, borrow)


def day_risk(ledger: Ledger, bars: pd.DataFrame, day: dt.date, nav: float, params: Params,
             decision: KillSwitchDecision) -> dict:
    """The report's risk section for the book held at ``day``'s close."""
    event = ledger.trading_state_event()
    closes = bars[bars["date"] <= pd.Timestamp(day)].pivot_table(
        index="date", columns="symbol", values="close")
    return risk_report(
        ledger.holdings(through=day), closes, nav, params.risk.report,
        state=None if event is None else {"state": event.state, "reason": event.reason,
                                          "actor": event.actor, "since": str(event.at)},
        headroom=headroom(ledger.nav_history(), params.risk.kill_switches), decision=decision)
