"""Execution schedules and TCA: what working orders across the session costs in time, and
what each style pays in impact against the cost model.

    python benches/execution.py [--orders 500] [--repeat 5]

1. ``fills_moc_ms`` / ``fills_scheduled_ms``: the paper broker's fills for ``--orders``
   working orders, all MOC (the reference: one cost-model call per order) and all worked by
   a schedule (VWAP, TWAP, Almgren–Chriss in turn: an intraday path and per-slice costs per
   order), median of ``--repeat`` runs; ``scheduled_over_moc`` is their ratio.
2. ``tca_ms``: the TCA rows of those orders from their fills (``daily.order_tca_row``).
3. ``impact_over_cost_model``: per style, the mean over the orders of the schedule's impact
   divided by the cost model's impact for the whole order at the same prices (flat bar:
   VWAP is 1 by construction, TWAP and AC pay more). Orders are 0.5–5 % of ADV.

Ends with one JSON line ``{"bench": "execution", ...}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import numpy as np

from alphaline.config import load_params
from alphaline.trading import daily
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import (
    AC,
    MOC,
    SCHEDULED,
    TWAP,
    VWAP,
    Bar,
    Schedules,
    schedule_fill,
)
from alphaline.trading.ledger.models import Order

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 1, 3)


def median_ms(fn, repeat: int) -> tuple[float, object]:
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(runs), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    params = load_params(REPO / "params.yaml")
    costs = CostModel.from_params(params.broker)
    schedules = Schedules.from_params(params.broker.execution)
    rng = np.random.default_rng(3)
    n = args.orders
    symbols = [f"S{i:04d}" for i in range(n)]
    price = 20 * np.exp(rng.normal(0, 0.5, n))
    adv = np.exp(rng.uniform(np.log(2e5), np.log(5e6), n))
    qty = np.round(adv * rng.uniform(0.005, 0.05, n))
    vol = rng.uniform(0.01, 0.04, n)
    close = price * np.exp(rng.normal(0, 0.01, n))
    open_ = price * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, n))
    bars = {s: Bar(open_[i], high[i], low[i], close[i]) for i, s in enumerate(symbols)}
    closes = dict(zip(symbols, close, strict=True))
    vols, advs = dict(zip(symbols, vol, strict=True)), dict(zip(symbols, adv, strict=True))

    def orders(style: str) -> list[Order]:
        return [Order(client_order_id=f"{s}-{style}", trading_day=DAY - dt.timedelta(days=1),
                      symbol=s, intent="rebalance", side="BUY" if i % 2 else "SELL",
                      quantity=float(qty[i]), reference_price=float(price[i]),
                      status="NEW", broker="paper", approved=True, filled_quantity=0.0,
                      execution_style=style) for i, s in enumerate(symbols)]

    broker = PaperBroker(costs, schedules=schedules)
    figures: dict[str, float] = {}
    timings = {}
    for style in (MOC, *SCHEDULED):
        work = orders(style)
        broker.resend(work)  # approved orders the broker accepts under their ids
        ms, fills = median_ms(lambda w=work: broker.fills_at_close(DAY, w, closes, vols, advs,
                                                                   bars), args.repeat)
        timings[style] = (ms, work, fills)
        print(f"fills, {n} orders {style:>4}: {ms:8.2f} ms")
    scheduled = statistics.mean(timings[s][0] for s in SCHEDULED)
    figures["fills_moc_ms"] = round(timings[MOC][0], 2)
    figures["fills_scheduled_ms"] = round(scheduled, 2)
    figures["scheduled_over_moc"] = round(scheduled / timings[MOC][0], 1)

    snap = daily.MarketSnapshot(DAY, closes, vols, advs, open=dict(zip(symbols, open_,
                                                                       strict=True)),
                                high=dict(zip(symbols, high, strict=True)),
                                low=dict(zip(symbols, low, strict=True)))
    _, work, fills = timings[AC]
    ms, rows = median_ms(lambda: [daily.order_tca_row(o, [f], snap, costs)
                                  for o, f in zip(work, fills, strict=True)], args.repeat)
    figures["tca_ms"] = round(ms, 2)
    worst = max(abs(sum(getattr(r, c) for c in ("delay", "drift", "spread", "impact", "fees"))
                    - r.shortfall) / max(abs(r.shortfall), 1.0) for r in rows)
    print(f"TCA rows, {n} orders: {ms:8.2f} ms (decomposition off by at most {worst:.1e})")

    ratios = {}
    for style in (TWAP, VWAP, AC):
        r = []
        for i in range(n):
            flat = Bar(np.nan, np.nan, np.nan, float(close[i]))
            worked = schedule_fill(style, qty[i], flat, vol[i], adv[i], costs, schedules,
                                   symbols[i], DAY, float(price[i]))
            r.append(worked.impact / float(costs.impacts(qty[i], close[i], vol[i], adv[i])))
        ratios[style] = round(float(np.mean(r)), 4)
        print(f"impact {style:>4} / cost model: {ratios[style]:.4f}")
    figures["impact_over_cost_model"] = ratios
    print(json.dumps({"bench": "execution", "orders": n, **figures}))


if __name__ == "__main__":
    main()
