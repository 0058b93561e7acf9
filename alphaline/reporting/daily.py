"""The daily report as a page: the day's key figures, NAV history from the ledger, today's
book, the orders, the scores and their reasons, the risk section, and the champion's live
performance (its signals against the labels that have since realized, its book against the
walk-forward's expectation)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from alphaline.models.explain import reason_text
from alphaline.models.live_performance import LivePerformance
from alphaline.reporting import charts
from alphaline.reporting.html import (
    Figure,
    Section,
    Table,
    Text,
    chart,
    num,
    pct,
    plain_pct,
    table_html,
    write_page,
)
from alphaline.trading.daily import DayResult

ORDER_COLUMNS = ["order", "symbol", "side", "quantity", "reference_price", "status", "reason"]


def book_weights(holdings: dict[str, float], closes: dict[str, float], nav: float) -> pd.Series:
    """Shares held × today's close / NAV, per symbol (names without a close: left out)."""
    if not holdings or nav <= 0:
        return pd.Series(dtype="float64", name="weight")
    w = {s: q * closes[s] / nav for s, q in holdings.items() if s in closes}
    return pd.Series(w, dtype="float64", name="weight").sort_index()


def orders_frame(orders: Iterable) -> pd.DataFrame:
    """The ledger's orders of the day (``trading.ledger.models.Order`` rows) as a table."""
    rows = [{"order": o.client_order_id, "symbol": o.symbol, "side": o.side,
             "quantity": float(o.quantity), "reference_price": float(o.reference_price),
             "status": o.status, "reason": o.reject_reason or ""} for o in orders]
    return pd.DataFrame(rows, columns=ORDER_COLUMNS)


def write_daily_report(result: DayResult, scores: pd.DataFrame, nav: pd.DataFrame,
                       book: pd.Series, orders: pd.DataFrame, path: Path,
                       live: LivePerformance | None = None) -> Path:
    """Write the day's page to ``path`` and return it.

    ``nav``: the ledger's NAV history (``day, nav, gross_exposure, net_exposure``);
    ``book``: weight per symbol at today's close; ``orders``: :func:`orders_frame`;
    ``live``: the champion's live performance (no section without a champion).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nav = nav.sort_values("day").reset_index(drop=True)
    day_pnl = (float(nav["nav"].iloc[-1] / nav["nav"].iloc[-2] - 1.0)
               if len(nav) > 1 else float("nan"))
    figures = [
        Figure("NAV", num(result.nav, 0), f"day {pct(day_pnl, 2)}",
               "" if not math.isfinite(day_pnl) else ("good" if day_pnl >= 0 else "bad")),
        Figure("Gross", num(result.gross_exposure), "of NAV"),
        Figure("Net", f"{result.net_exposure:+.3f}", "of NAV"),
        Figure("Orders", str(len(result.orders_submitted)),
               f"{len(result.orders_rejected)} rejected by risk",
               "bad" if result.orders_rejected else ""),
        Figure("Fills", str(result.fills), "at today's close"),
        Figure("State", result.trading_state, result.no_trade_reason or "",
               "good" if result.trading_state == "ACTIVE" else "bad"),
        Figure("Model", str(result.model_version), f"{result.signals} signals recorded"),
        *_live_figures(live),
    ]
    sections = [_nav(nav), _live(live), _book(book), _orders(result, orders), _tca(result),
                _scores(scores), _risk(result.risk), _events(result)]
    write_page(path, title=f"alphaline daily report — {result.day}",
               subtitle=f"after the close of {result.day}; borrow charged "
                        f"{num(result.borrow_fee, 2)}",
               figures=figures, sections=[s for s in sections if s is not None],
               footer="Weights are fractions of NAV at the day's close. The Markdown file "
                      "beside this page carries the same facts as text.")
    return path


def _nav(nav: pd.DataFrame) -> Section:
    if nav.empty:
        return Section("nav", "NAV history", [Text("No NAV recorded yet.")])
    tail = nav.tail(10).set_index("day")[["nav", "gross_exposure", "net_exposure"]]
    return Section("nav", "NAV history", [
        chart("nav", charts.nav_history(nav), "NAV and exposures by day"),
        Table(table_html(tail, {"nav": lambda v: num(v, 2), "gross_exposure": num,
                                "net_exposure": lambda v: f"{v:+.3f}"})),
    ])


def _live_figures(live: LivePerformance | None) -> list[Figure]:
    if live is None:
        return []
    s, e = live.summary, live.expectation
    out = []
    if live.enough:
        tone = "good" if s["rank_ic"] > 0 else "bad"
        out.append(Figure("Live rank IC", f"{s['rank_ic']:+.4f}",
                          f"hit rate {plain_pct(s['hit_rate'])} over {s['sessions']} sessions",
                          tone))
    else:
        out.append(Figure("Live rank IC", "waiting",
                          f"{s['sessions']} of {live.min_sessions} sessions realized"))
    if e["sessions"]:
        detail = (f"expected {pct(e['expected_return'], 2)}" if e["expected_return"] is not None
                  else "no walk-forward Sharpe recorded")
        out.append(Figure("Book since champion", pct(e["realized_return"], 2), detail,
                          "good" if (e["t_stat"] or 0) >= -2 else "bad"))
    return out


def _live(live: LivePerformance | None) -> Section | None:
    """The champion's signals against realized labels, and its book against the walk-forward."""
    if live is None:
        return None
    s, b, e = live.summary, live.research_book, live.expectation
    blocks: list = []
    if live.enough:
        blocks.append(chart("live-ic", charts.live_ic(live.series, live.backtest_rank_ic),
                            "Live daily rank IC and its running mean"))
    else:
        blocks.append(Text(live.waiting()))
    rows = [
        ("sessions with realized labels", str(s["sessions"]),
         f"{s['first']} .. {s['last']}" if s["sessions"] else "none yet"),
        ("IC (mean)", _opt(s["ic"], live.enough), ""),
        ("rank IC (mean)", _opt(s["rank_ic"], live.enough),
         f"walk-forward {_opt(live.backtest_rank_ic)}"),
        ("ICIR", _opt(s["icir"], live.enough), ""),
        ("hit rate (days with rank IC > 0)",
         plain_pct(s["hit_rate"]) if live.enough and s["hit_rate"] is not None else "n/a", ""),
    ]
    if e["sessions"]:
        rows += [
            ("book return since the champion's first signal", pct(e["realized_return"], 2),
             f"{e['sessions']} sessions, {e['first']} .. {e['last']}"),
            ("expected at the walk-forward's after-cost Sharpe",
             pct(e["expected_return"], 2) if e["expected_return"] is not None else "n/a",
             f"Sharpe {_opt(e['expected_sharpe'], True, '.2f')} "
             f"({live.expectation_metric or 'not recorded'}) at the book's own volatility"),
            ("realized Sharpe (annualized)", _opt(e["realized_sharpe"], True, ".2f"),
             f"t {_opt(e['t_stat'], True, '+.2f')} against the expectation"),
        ]
    else:
        rows.append(("book return since the champion's first signal", "n/a",
                     "no session with a NAV since the first signal's fills yet"))
    if b["sessions"]:
        rows.append(("same signals and days: ledger book vs research book",
                     f"{pct(b['realized_return'], 2)} vs {pct(b['expected_return'], 2)}",
                     f"{b['sessions']} days; research book before costs"))
    blocks.append(Table(table_html(pd.DataFrame(rows, columns=["figure", "value", "note"]),
                                   index=False)))
    return Section("live", "Live performance", blocks,
                   f"Champion v{live.version}: its ledger signals joined with the labels that "
                   "have since realized, and the ledger book's return against what the "
                   "walk-forward expects.")


def _opt(v: float | None, shown: bool = True, spec: str = "+.4f") -> str:
    return "n/a" if v is None or not shown or not math.isfinite(v) else format(v, spec)


def _book(book: pd.Series) -> Section:
    if book.empty:
        return Section("book", "Today's book", [Text("No positions at the close.")])
    return Section("book", "Today's book", [
        chart("book", charts.book_bars(book), "Positions by weight"),
    ], f"{len(book)} names; long {plain_pct(float(book.clip(lower=0).sum()))}, short "
       f"{plain_pct(float(-book.clip(upper=0).sum()))} of NAV.")


def _orders(result: DayResult, orders: pd.DataFrame) -> Section:
    blocks: list = []
    if len(orders):
        blocks.append(Table(table_html(orders, {"quantity": lambda v: f"{v:,.0f}",
                                                "reference_price": lambda v: num(v, 2)},
                                       index=False)))
    else:
        blocks.append(Text("No orders were decided today."))
    resolved = ([(cid, "resent under the same id (left NEW by a crash)")
                 for cid in result.orders_resent]
                + [(cid, f"cancelled — {why}") for cid, why in result.orders_cancelled]
                + [(cid, "expired unfilled") for cid in result.orders_expired])
    if resolved:
        blocks.append(Table(table_html(pd.DataFrame(resolved, columns=["order", "what"]),
                                       index=False),
                            "Orders resolved at the start of the day"))
    return Section("orders", "Orders", blocks,
                   f"Submitted {len(result.orders_submitted)}, rejected by risk "
                   f"{len(result.orders_rejected)}, already placed earlier "
                   f"{result.orders_already_placed}.")


def _tca(result: DayResult) -> Section | None:
    rows = getattr(result, "tca", None)  # transaction-cost rows of today's fills, when known
    if not rows:
        return None
    return Section("tca", "Transaction costs of today's fills",
                   [Table(table_html(pd.DataFrame(rows), index=False))])


def _scores(scores: pd.DataFrame) -> Section | None:
    if scores.empty:
        return None
    ordered = scores.sort_values("score", ascending=False)
    picked = pd.concat([ordered.head(5), ordered.tail(5)]).drop_duplicates("symbol")
    rows = [{"symbol": r["symbol"], "score": float(r["score"]),
             "top reasons": ", ".join(reason_text(c) for c in (r.get("reasons") or [])[:3])}
            for _, r in picked.iterrows()]
    return Section("scores", "Top and bottom scores", [
        Table(table_html(pd.DataFrame(rows), {"score": lambda v: f"{v:+.4f}"}, index=False)),
    ])


def _risk(risk: dict) -> Section | None:
    if not risk:
        return None
    e = risk["exposures"]
    blocks: list = [Text(f"Gross {e['gross']:.2f}, net {e['net']:+.3f}, beta "
                         f"{e['beta']:+.3f}, {e['names']} names.")]
    switches = risk.get("kill_switches") or {}
    for why in switches.get("reasons", []):
        blocks.append(Text(f"Kill switch: {why}"))
    if risk.get("var"):
        var = pd.DataFrame(risk["var"]).T.rename_axis("method")
        blocks.append(Table(table_html(var, {
            "var": lambda v: num(v, 0), "cvar": lambda v: num(v, 0),
            "var_pct_nav": lambda v: plain_pct(v, 2), "cvar_pct_nav": lambda v: plain_pct(v, 2)}),
            f"One-day VaR and CVaR at {risk['confidence']:.1%}"))
    if risk.get("stress"):
        stress = pd.DataFrame(risk["stress"])
        blocks.append(Table(table_html(stress, {
            "market": lambda v: pct(v), "pnl": lambda v: f"{v:+,.0f}",
            "pnl_pct_nav": lambda v: pct(v, 2)}, index=False), "Stress scenarios"))
    if e.get("sectors"):
        sectors = pd.DataFrame(e["sectors"]).T.rename_axis("sector").sort_index()
        blocks.append(Table(table_html(sectors, {"net": lambda v: f"{v:+.3f}",
                                                 "gross": lambda v: f"{v:.3f}"}),
                            "Sector exposure (fraction of NAV)"))
    if risk.get("headroom"):
        head = pd.DataFrame(risk["headroom"])
        blocks.append(Table(table_html(head, {c: (lambda v: pct(v, 2)) for c in
                                              ("value", "limit", "headroom")}, index=False),
                            "Kill switches: how far each is from firing"))
    return Section("risk", "Risk", blocks)


def _events(result: DayResult) -> Section | None:
    lines = [f"Kill switch: {why}" for why in result.kill_switches]
    if result.no_trade_reason:
        lines.append(f"No orders today: {result.no_trade_reason}")
    lines += [f"Quarantined {s}: {'; '.join(r)}" for s, r in sorted(result.quarantined.items())]
    lines += [f"Corporate action: {c}" for c in result.corporate_actions]
    lines += [f"Stale mark: {m['symbol']} at {m['price']:,.4f} from {m['price_day']} "
              f"({m['sessions']} sessions without a bar"
              f"{', suspected delisting' if m['symbol'] in result.suspected_delistings else ''})"
              for m in result.stale_marks]
    lines += [f"Rejected {cid}: {why}" for cid, why in result.orders_rejected]
    if not lines:
        return None
    return Section("events", "What needs a look", [Text(line) for line in lines])
