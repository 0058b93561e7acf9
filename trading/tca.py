"""Transaction-cost analysis: what each order cost against the price when it was decided.

Pure functions. For an order of ``s`` signed shares (``+`` bought) decided at the close
``P₀`` (the *arrival price*), whose execution began at ``P_s`` (the *start price*: the next
close for MOC, the next open for a schedule) and filled on average at ``P̄``, with ``S``
dollars of half spread, ``I`` of market impact and ``F`` of fees, every figure is in
dollars and positive when it cost money:

    delay     = s (P_s − P₀)        the market's move between the decision and the start
    drift     = s (P̄ − P_s)         the market's move while the order was worked
    spread    = S,  impact = I      what crossing the spread and pushing the price cost
    fees      = F                   commissions
    shortfall = s (P̄ − P₀) + S + I + F  = delay + drift + spread + impact + fees

``shortfall`` is the implementation shortfall: what was paid beyond buying (or selling) the
shares at the arrival price. *Realized slippage* is ``spread + impact``, what the execution
cost against the prices the order was worked at; the cost model estimated it at the
decision (``estimated_slippage``), and ``slippage_vs_estimate`` is the difference. Delay and
drift are market moves, not the execution's quality: they stay out of the comparison (and
out of the slippage kill switch), else the switch would fire on every day the market moved.

A live broker's price is the price paid: spread and impact are inside it, not beside it
(its fills record no separate slippage). :func:`price_inclusive_tca` then measures the
execution against a benchmark ``B`` from the fill day's bar (the close for MOC; for a
schedule the bar's typical price ``(high + low + close) / 3``, the usual daily estimate of
the session's VWAP, since a daily bar has no intraday path): ``drift = s (B − P_s)``,
``spread`` the cost model's half spread on the notional, ``impact = s (P̄ − B) − spread``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

COMPONENTS = ("delay", "drift", "spread", "impact", "fees")


@dataclass(frozen=True)
class OrderTca:
    shares: float  # signed, filled
    arrival_price: float
    start_price: float
    average_fill: float
    delay: float
    drift: float
    spread: float
    impact: float
    fees: float
    shortfall: float
    estimated_slippage: float
    slippage_vs_estimate: float

    @property
    def realized_slippage(self) -> float:
        return self.spread + self.impact

    def as_dict(self) -> dict:
        return asdict(self)


def order_tca(shares: float, arrival_price: float, start_price: float, average_fill: float,
              spread: float, impact: float, fees: float, estimated_slippage: float
              ) -> OrderTca:
    """One order's figures (see the module's note). Plain arithmetic, so exact inputs
    (fractions) give an exact decomposition."""
    delay = shares * (start_price - arrival_price)
    drift = shares * (average_fill - start_price)
    shortfall = shares * (average_fill - arrival_price) + spread + impact + fees
    return OrderTca(shares, arrival_price, start_price, average_fill, delay, drift, spread,
                    impact, fees, shortfall, estimated_slippage,
                    spread + impact - estimated_slippage)


def fill_tca(shares: float, arrival_price: float, start_price: float, average_fill: float,
             slippage: float, half_spread_bps: float, fees: float, estimated_slippage: float
             ) -> OrderTca:
    """From what a fill records (price, slippage, commission): the half spread is the cost
    model's share of the slippage on the filled notional, impact the rest."""
    spread = half_spread_bps * 1e-4 * abs(shares) * average_fill
    return order_tca(shares, arrival_price, start_price, average_fill, spread,
                     slippage - spread, fees, estimated_slippage)


def price_inclusive_tca(shares: float, arrival_price: float, start_price: float,
                        benchmark: float, average_fill: float, half_spread_bps: float,
                        fees: float, estimated_slippage: float) -> OrderTca:
    """One order's figures when the fill price already holds spread and impact (a live
    broker): the execution is what was paid beyond ``benchmark`` (see the module's note).
    The components add up to ``s (P̄ − P₀) + fees``, the shortfall."""
    spread = half_spread_bps * 1e-4 * abs(shares) * average_fill
    delay = shares * (start_price - arrival_price)
    drift = shares * (benchmark - start_price)
    impact = shares * (average_fill - benchmark) - spread
    shortfall = shares * (average_fill - arrival_price) + fees
    return OrderTca(shares, arrival_price, start_price, average_fill, delay, drift, spread,
                    impact, fees, shortfall, estimated_slippage,
                    spread + impact - estimated_slippage)


def daily_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per fill day: orders, notional at arrival, each component and the shortfall in
    dollars and in basis points of that notional, the estimated and realized slippage and
    their ratio. ``rows``: the ledger's ``tca`` table (or a slice of it)."""
    cols = ["day", "orders", "notional", *COMPONENTS, "shortfall", "shortfall_bps",
            "estimated_slippage", "realized_slippage", "slippage_ratio"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows.assign(notional=(rows["shares"].abs() * rows["arrival_price"]),
                    realized_slippage=rows["spread"] + rows["impact"])
    g = r.groupby("day", sort=True)
    out = g[["notional", *COMPONENTS, "shortfall", "estimated_slippage",
             "realized_slippage"]].sum()
    out.insert(0, "orders", g.size())
    out["shortfall_bps"] = np.where(out["notional"] > 0,
                                    out["shortfall"] / out["notional"] * 1e4, np.nan)
    out["slippage_ratio"] = np.where(out["estimated_slippage"] > 0,
                                     out["realized_slippage"] / out["estimated_slippage"],
                                     np.nan)
    return out.reset_index()[cols]


def by_style(rows: pd.DataFrame) -> pd.DataFrame:
    """Orders, notional and shortfall (dollars and bps) per execution style."""
    if rows.empty:
        return pd.DataFrame(columns=["style", "orders", "notional", "shortfall",
                                     "shortfall_bps"])
    r = rows.assign(notional=rows["shares"].abs() * rows["arrival_price"])
    g = r.groupby("style", sort=True)
    out = g[["notional", "shortfall"]].sum()
    out.insert(0, "orders", g.size())
    out["shortfall_bps"] = out["shortfall"] / out["notional"] * 1e4
    return out.reset_index()


def tca_markdown(rows: pd.DataFrame) -> str:
    """The daily report's TCA section for one day's rows of the ``tca`` table."""
    if rows.empty:
        return ""
    lines = ["## Transaction costs (implementation shortfall against the decision close)", "",
             "| order | style | shares | arrival | start | avg fill | delay | drift | spread "
             "| impact | fees | shortfall | bps | est. slippage | vs est. |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows.sort_values("client_order_id").itertuples():
        notional = abs(r.shares) * r.arrival_price
        bps = r.shortfall / notional * 1e4 if notional > 0 else float("nan")
        lines.append(
            f"| {r.client_order_id} | {r.style} | {r.shares:+,.0f} | {r.arrival_price:,.4f} | "
            f"{r.start_price:,.4f} | {r.average_fill:,.4f} | {r.delay:,.2f} | {r.drift:,.2f} | "
            f"{r.spread:,.2f} | {r.impact:,.2f} | {r.fees:,.2f} | {r.shortfall:,.2f} | "
            f"{bps:,.1f} | {r.estimated_slippage:,.2f} | {r.slippage_vs_estimate:+,.2f} |")
    day = daily_summary(rows).iloc[-1]
    ratio = day["slippage_ratio"]
    lines += ["", f"- day: {int(day['orders'])} orders, {day['notional']:,.2f} at arrival; "
              f"shortfall {day['shortfall']:,.2f} ({day['shortfall_bps']:,.1f} bps) = delay "
              f"{day['delay']:,.2f} + drift {day['drift']:,.2f} + spread {day['spread']:,.2f} "
              f"+ impact {day['impact']:,.2f} + fees {day['fees']:,.2f}",
              f"- realized slippage (spread + impact) {day['realized_slippage']:,.2f} vs the "
              f"cost model's estimate {day['estimated_slippage']:,.2f}"
              + (f" ({ratio:.2f}×)" if np.isfinite(ratio) else "")]
    styles = by_style(rows)
    lines += [f"- {s.style}: orders {s.orders}, shortfall {s.shortfall:,.2f} "
              f"({s.shortfall_bps:,.1f} bps)" for s in styles.itertuples()]
    return "\n".join(lines) + "\n"
