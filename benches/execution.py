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

4. ``submit_500_seconds``: ``--orders`` risk-approved orders written NEW and sent through
   the Interactive Brokers adapter (``daily.send``: a reconciliation first, then placeOrder
   and the fake TWS's acknowledgements over a real socket) with the requests paced by TWS
   (``requests_per_second: 0``); ``submit_500_paced_seconds`` with the client pacing of the
   default params (45 messages a second, under TWS's 50); reference in the same run: the
   paper broker's ``submit`` of the same orders.
5. ``reconcile_seconds``: the adapter's reconciliation after those orders filled in two
   executions each while it was away (``--orders`` positions, 2 × ``--orders`` executions to
   add); ``reconcile_steady_seconds`` once everything is in the ledger; reference in the
   same run: writing the same fills straight to a copy of the ledger (``add_fills``).

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


def ibkr_figures(n: int, params) -> dict[str, float]:
    """Sending and reconciling ``n`` orders through the IBKR adapter and the fake TWS."""
    import shutil
    import sys
    import tempfile

    sys.path.insert(0, str(REPO))
    from alphaline.trading.brokers.ibkr import Endpoint, IbkrBroker
    from alphaline.trading.ledger import Ledger, upgrade
    from alphaline.trading.orders import client_order_id
    from alphaline.trading.portfolio import OrderIntent
    from alphaline.trading.reconcile import as_fill
    from alphaline.trading.risk_engine import check_orders
    from tests.fake_tws import NEW_YORK, FakeTws

    cash, nav = 10_000_000.0, 1e9
    day, next_day = dt.date(2024, 1, 2), DAY
    rng = np.random.default_rng(5)
    prices = {f"S{i:04d}": round(float(20 * np.exp(rng.normal(0, 0.3))), 2) for i in range(n)}
    intents = [OrderIntent(client_order_id(day, s, "rebalance", 1), day, s,
                           "BUY" if i % 2 else "SELL", 1000.0, px, "rebalance")
               for i, (s, px) in enumerate(prices.items())]
    verdict = check_orders(intents, holdings={}, working={}, nav=nav, prev_close=prices,
                           adv=dict.fromkeys(prices, 1e9), limits=params.risk,
                           known_ids=set(), trading_state="ACTIVE", placed_today=0)
    assert len(verdict.approved) == n, verdict.rejected[:3]
    costs = CostModel.from_params(params.broker)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ibkr-"))
    out: dict[str, float] = {}

    def fresh(name: str) -> tuple[Ledger, FakeTws]:
        url = f"sqlite:///{tmp / name}.db"
        upgrade(url)
        ledger = Ledger(url)
        ledger.ensure_initial_cash(day, cash)
        ledger.add_orders(verdict.approved, [], broker="ibkr", model_version="bench",
                          expires_on=next_day)
        fake = FakeTws(cash=cash).start()
        fake.clock = dt.datetime.combine(day, dt.time(16), NEW_YORK)
        return ledger, fake

    t0 = time.perf_counter()
    PaperBroker(costs).submit(verdict.approved)
    paper = time.perf_counter() - t0
    print(f"submit, {n} orders, paper broker (reference): {paper * 1e3:8.2f} ms")
    runs = {}
    for pacing in (0, params.broker.ibkr.requests_per_second):
        ledger, fake = fresh(f"pacing{pacing}")
        broker = IbkrBroker(ledger, costs, params.broker.ibkr.model_copy(
            update={"requests_per_second": pacing}), Endpoint("127.0.0.1", fake.port, 1),
            env={}).connect()
        t0 = time.perf_counter()
        sent = daily.send(ledger, broker, verdict.approved)
        runs[pacing] = time.perf_counter() - t0
        assert len(sent) == n and set(fake.sent_counts().values()) == {1}
        print(f"submit, {n} orders, IBKR adapter, pacing {pacing or 'by TWS'}: "
              f"{runs[pacing]:8.3f} s ({runs[pacing] / paper:,.0f}× the paper broker)")
        broker.close()
        if pacing:
            fake.stop()
            continue
        keep_ledger, keep_fake = ledger, fake
    out["submit_500_seconds"] = round(runs[0], 3)
    out["submit_500_paced_seconds"] = round(runs[params.broker.ibkr.requests_per_second], 3)
    out["submit_over_paper"] = round(runs[0] / paper, 1)

    ledger, fake = keep_ledger, keep_fake
    fake.clock = dt.datetime.combine(next_day, dt.time(16), NEW_YORK)
    for a in verdict.approved:  # every order fills in two executions while alphaline is away
        o = a.order
        fake.fill_many(o.client_order_id, [(400.0, o.reference_price),
                                           (600.0, round(o.reference_price * 1.001, 4))])
    shutil.copy(tmp / "pacing0.db", tmp / "reference.db")
    broker = IbkrBroker(ledger, costs, params.broker.ibkr.model_copy(
        update={"requests_per_second": 0}), Endpoint("127.0.0.1", fake.port, 1),
        env={}).connect()
    t0 = time.perf_counter()
    rec = broker.reconcile(next_day)
    catch_up = time.perf_counter() - t0
    assert rec.ok and len(rec.fills) == 2 * n and len(rec.positions) == n, rec.breaks[:3]
    t0 = time.perf_counter()
    steady = broker.reconcile(next_day)
    steady_s = time.perf_counter() - t0
    assert steady.ok and not steady.fills
    broker.close()
    fake.stop()
    reference = Ledger(f"sqlite:///{tmp / 'reference.db'}")  # the orders SUBMITTED, no fills
    t0 = time.perf_counter()
    reference.add_fills([as_fill(e) for e in rec.fills])
    direct = time.perf_counter() - t0
    print(f"reconcile {n} positions, {2 * n} executions to add: {catch_up:8.3f} s "
          f"({catch_up / direct:.1f}× writing the same fills directly, {direct:.3f} s); "
          f"steady state: {steady_s:.3f} s")
    out["reconcile_seconds"] = round(catch_up, 3)
    out["reconcile_steady_seconds"] = round(steady_s, 3)
    out["reconcile_over_direct_fills"] = round(catch_up / direct, 1)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-ibkr", action="store_true", help="no IBKR adapter figures")
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
    if not args.skip_ibkr:
        figures.update(ibkr_figures(n, params))
    print(json.dumps({"bench": "execution", "orders": n, **figures}))


if __name__ == "__main__":
    main()
