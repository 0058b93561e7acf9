"""Trading core speed: the day's book and pre-trade checks for 500 names, and one whole
daily flow for 500 symbols.

    python benches/trading.py [--symbols 500] [--skip-flow]

1. ``book_and_checks_ms``: the book builder and the rebalance plan (``rebalance.day_plan``)
   plus the risk engine's ``check_orders`` on a 500-name cross-section, median of repeated
   runs; reference in the same run: the bare quantile book (``long_short_weights``).
2. ``daily_flow_500_seconds``: the daily_trading flow (Prefect test harness, real ledger,
   Feast, MLflow champion) for the first session after the training history, on the default
   core features. The champion is trained first on the same market with one Optuna trial
   per member and the gate's limits opened (this bench times trading, not the gate).

Ends with one JSON line ``{"bench": "trading", ...}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from alphaline.config import load_params
from alphaline.project import Project

REPO = Path(__file__).resolve().parents[1]


def timed_median(fn, repeat: int) -> tuple[float, object]:
    out, runs = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), out


def book_and_checks(params, symbols: int, repeat: int = 50) -> dict:
    from alphaline.trading.portfolio import long_short_weights
    from alphaline.trading.rebalance import day_plan
    from alphaline.trading.risk_engine import check_orders

    rng = np.random.default_rng(0)
    names = [f"SYN{i:04d}" for i in range(symbols)]
    day = dt.date(2024, 1, 2)
    score = rng.normal(size=symbols)
    probability = rng.uniform(0.4, 0.9, symbols)
    scores = pd.DataFrame({"symbol": names, "score": score, "probability": probability,
                           "size": np.sign(score) * probability})
    close = dict(zip(names, np.exp(rng.uniform(np.log(15), np.log(250), symbols)),
                     strict=True))
    vol = dict(zip(names, rng.uniform(0.01, 0.03, symbols), strict=True))
    adv = dict(zip(names, np.exp(rng.uniform(np.log(2e5), np.log(5e6), symbols)), strict=True))
    nav = params.broker.initial_cash
    held = rng.choice(names, size=symbols // 5, replace=False)
    holdings = {s: float(rng.choice([-1, 1]) * rng.integers(10, 300)) for s in held}

    def book_and_check():
        plan = day_plan(day, scores, holdings, nav, close, vol, adv, params)
        verdict = check_orders(plan.orders, holdings=holdings, working={}, nav=nav,
                               prev_close=close, adv=adv, limits=params.risk, known_ids=set(),
                               trading_state="ACTIVE", placed_today=0)
        return plan, verdict

    book_and_check()  # warm caches
    seconds, (plan, verdict) = timed_median(book_and_check, repeat)
    series = scores.set_index("symbol")["score"]
    p = params.portfolio
    reference, _ = timed_median(lambda: long_short_weights(
        series, p.quantile, p.gross_exposure, p.max_position_weight), repeat)
    return {"names": symbols, "orders": len(plan.orders),
            "approved": len(verdict.approved), "refused": len(verdict.rejected),
            "book_and_checks_ms": round(seconds * 1e3, 2),
            "reference_quantile_book_ms": round(reference * 1e3, 2),
            "ratio_to_reference": round(seconds / reference, 1)}


def daily_flow(symbols: int, root: Path) -> dict:
    from prefect.testing.utilities import prefect_test_harness

    from alphaline.calendar import sessions
    from alphaline.flows.daily_trading import daily_trading
    from alphaline.flows.retrain import retrain
    from alphaline.trading.ledger import upgrade

    params = load_params(REPO / "params.yaml").with_overrides({
        "data.synthetic.n_symbols": symbols, "data.start": "2022-01-03",
        "data.end": "2023-06-30", "tuning.n_trials": 1, "model.n_estimators": 50,
        "cv.n_splits": 2, "cv.min_train_days": 150, "cv.cpcv_groups": 3,
        "cv.cpcv_test_groups": 1, "gate.min_deflated_sharpe": 0.0, "gate.min_rank_ic": -1.0,
    })
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()
    upgrade(project.ledger_url)
    day = sessions(params.data.calendar, params.data.end + dt.timedelta(days=1),
                   params.data.end + dt.timedelta(days=10))[0].date()
    with prefect_test_harness(server_startup_timeout=180):
        start = time.perf_counter()
        trained = retrain(root=str(root), as_of=params.data.end, reason="bench")
        retrain_s = time.perf_counter() - start
        if not trained["promoted"]:
            raise SystemExit(f"no champion to trade: {trained['reasons']}")
        start = time.perf_counter()
        out = daily_trading(day=day, root=str(root))
        flow_s = time.perf_counter() - start
    return {"symbols": symbols, "day": str(day), "retrain_seconds": round(retrain_s, 1),
            "daily_flow_500_seconds": round(flow_s, 1),
            "orders_submitted": len(out.get("orders_submitted", [])),
            "orders_rejected": len(out.get("orders_rejected", []))}


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--skip-flow", action="store_true")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    figures: dict = {"bench": "trading"}
    book = book_and_checks(params, args.symbols)
    print(f"book + checks for {book['names']} names: {book['book_and_checks_ms']} ms "
          f"({book['orders']} orders, {book['approved']} approved); bare quantile book "
          f"{book['reference_quantile_book_ms']} ms", flush=True)
    figures.update(book)
    if not args.skip_flow:
        scratch = Path(tempfile.mkdtemp(prefix="alphaline-trading-"))
        try:
            flow = daily_flow(args.symbols, scratch / "project")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"daily flow for {flow['symbols']} symbols on {flow['day']}: "
              f"{flow['daily_flow_500_seconds']} s ({flow['orders_submitted']} orders); "
              f"retrain before it {flow['retrain_seconds']} s", flush=True)
        figures.update(flow)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
