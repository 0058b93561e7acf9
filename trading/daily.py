"""The steps of one trading day, each a function the daily flow calls in order.

Order of a day ``D`` (after its close): fill the orders decided at ``D-1`` at ``D``'s close,
mark the book to market, then decide ``D``'s rebalance from the champion's scores.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaline.config import Params
from alphaline.models.explain import top_contributions
from alphaline.models.signal import SignalModel
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import Order
from alphaline.trading.portfolio import (
    OrderIntent,
    long_short_weights,
    rebalance_orders,
    sized_long_short_weights,
)
from alphaline.trading.risk_engine import RiskVerdict, check_orders


@dataclass
class MarketSnapshot:
    """What the day's bars say about each symbol: close, daily vol, average volume."""

    day: dt.date
    close: dict[str, float]
    daily_vol: dict[str, float]
    adv: dict[str, float]


@dataclass
class DayResult:
    day: dt.date
    model_version: str
    signals: int
    fills: int
    orders_submitted: list[str] = field(default_factory=list)
    orders_rejected: list[tuple[str, str]] = field(default_factory=list)
    orders_already_placed: int = 0
    nav: float = 0.0
    gross_exposure: float = 0.0
    net_exposure: float = 0.0


def market_snapshot(bars: pd.DataFrame, day: dt.date, window: int = 20) -> MarketSnapshot:
    ts = pd.Timestamp(day)
    hist = bars[bars["date"] <= ts].sort_values(["symbol", "date"])
    today = hist[hist["date"] == ts]
    if today.empty:
        raise ValueError(f"no bars on {day}")
    tail = hist.groupby("symbol").tail(window + 1)
    log_ret = np.log(tail["close"]).groupby(tail["symbol"]).diff()
    vol = log_ret.groupby(tail["symbol"]).std()
    adv = tail.groupby("symbol")["volume"].mean()
    return MarketSnapshot(day, today.set_index("symbol")["close"].to_dict(), vol.to_dict(),
                          adv.to_dict())


def score(model: SignalModel, vectors: pd.DataFrame, explain_top: int) -> pd.DataFrame:
    """``symbol, score, reasons`` (+ ``side, probability, size`` with meta-labeling): the
    signal for today's cross-section and each name's top SHAP contributions."""
    X = vectors[model.features].astype("float64")
    scored = model.score(X)
    reasons = top_contributions(model.contributions(X), X, explain_top)
    return scored.assign(symbol=vectors["symbol"].to_numpy(), reasons=reasons)


def fill_working_orders(ledger: Ledger, broker: PaperBroker, snap: MarketSnapshot) -> int:
    working = ledger.working_orders(before=snap.day)
    return ledger.add_fills(broker.fills_at_close(snap.day, working, snap.close,
                                                  snap.daily_vol, snap.adv))


def plan(day: dt.date, scores: pd.DataFrame, holdings: dict[str, float], nav: float,
         snap: MarketSnapshot, params: Params) -> list[OrderIntent]:
    p = params.portfolio
    if "size" in scores:  # meta-labeled bets: only the sides the secondary model trusts
        weights = sized_long_short_weights(scores.set_index("symbol")["size"],
                                           p.gross_exposure, p.max_position_weight)
    else:
        weights = long_short_weights(scores.set_index("symbol")["score"], p.quantile,
                                     p.gross_exposure, p.max_position_weight)
    return rebalance_orders(day, weights, holdings, nav, snap.close)


def place(ledger: Ledger, broker: PaperBroker, intents: list[OrderIntent], snap: MarketSnapshot,
          nav: float, params: Params, model_version: str) -> tuple[RiskVerdict, int]:
    """Risk-check, write to the ledger, then send. Orders already in the ledger are skipped."""
    known = ledger.existing_order_ids(o.client_order_id for o in intents)
    fresh = [o for o in intents if o.client_order_id not in known]
    if not fresh:
        return RiskVerdict(), len(intents)
    holdings = ledger.holdings(through=snap.day)
    verdict = check_orders(fresh, holdings=holdings, nav=nav, last_close=snap.close,
                           limits=params.risk, known_ids=known,
                           trading_state=ledger.trading_state())

    def row(o: OrderIntent, status: str, reason: str | None = None) -> Order:
        return Order(client_order_id=o.client_order_id, trading_day=o.trading_day,
                     symbol=o.symbol, intent=o.intent, side=o.side, quantity=o.quantity,
                     reference_price=o.reference_price, status=status, reject_reason=reason,
                     broker=broker.name, model_version=model_version)

    ledger.add_orders([row(o, "REJECTED", why) for o, why in verdict.rejected]
                      + [row(a.order, "NEW") for a in verdict.approved])
    for cid in broker.submit(verdict.approved):
        ledger.set_status(cid, "SUBMITTED")
    return verdict, len(intents) - len(fresh)


def report_markdown(result: DayResult, scores: pd.DataFrame, ledger: Ledger) -> str:
    lines = [
        f"# alphaline daily report — {result.day}",
        "",
        f"- model version: {result.model_version}",
        f"- signals recorded: {result.signals}",
        f"- fills at today's close: {result.fills}",
        f"- orders submitted: {len(result.orders_submitted)}; rejected by risk: "
        f"{len(result.orders_rejected)}; already placed earlier: {result.orders_already_placed}",
        f"- NAV: {result.nav:,.2f}  (gross {result.gross_exposure:.2f}, "
        f"net {result.net_exposure:+.3f})",
        "",
        "## Top and bottom scores",
        "",
        "| symbol | score | top reasons (SHAP) |",
        "|---|---:|---|",
    ]
    ordered = scores.sort_values("score", ascending=False)
    for _, r in pd.concat([ordered.head(5), ordered.tail(5)]).iterrows():
        why = ", ".join(f"{c['feature']} {c['shap']:+.4f}" for c in r["reasons"][:3])
        lines.append(f"| {r['symbol']} | {r['score']:+.4f} | {why} |")
    if result.orders_rejected:
        lines += ["", "## Rejected orders", ""]
        lines += [f"- {cid}: {why}" for cid, why in result.orders_rejected]
    nav = ledger.nav_history()
    if len(nav):
        lines += ["", "## NAV history", "", "| day | NAV | gross | net |", "|---|---:|---:|---:|"]
        for _, r in nav.tail(10).iterrows():
            lines.append(f"| {r['day']} | {r['nav']:,.2f} | {r['gross_exposure']:.2f} | "
                         f"{r['net_exposure']:+.3f} |")
    return "\n".join(lines) + "\n"


def result_json(result: DayResult) -> str:
    return json.dumps(result.__dict__, default=str, indent=2)
