"""Backtest engines: speed against vectorbt, equity against vectorbt, and the replay.

1. The vectorized engine on ``--symbols`` × ``--days`` of target weights with costs (whole
   shares, commission with a minimum, half spread, square-root impact, borrow, the rebalance
   band), best of ``--repeats`` warm runs, against vectorbt's ``Portfolio.from_orders``
   (target percent, cash sharing, proportional fees) on the same weights in the same run.
2. Equity against vectorbt where both models agree: fractional shares, proportional fees
   only, fills at the deciding close (``EngineRules(lot_size=0, fill_lag=0)``).
3. The replay (:func:`alphaline.trading.backtest.replay.replay_sessions`) of ``--replay-
   sessions`` sessions of ``--symbols`` names without retraining.

vectorbt 1.0.0 (the last release on pandas 2) builds a plotly template at import that plotly 7
(this project's pin) no longer accepts, so it runs in a side environment:

    python3.11 -m venv /tmp/vbtenv
    /tmp/vbtenv/bin/pip install vectorbt==1.0.0 "plotly<6" pandas==2.3.3 numpy==2.4.6 numba==0.68.1
    python benches/backtest.py --vectorbt-python /tmp/vbtenv/bin/python

Ends with one JSON line ``{"bench": "backtest", ...}``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alphaline.runtime import configure_environment


def weights_panel(close: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A dollar-neutral quantile book on a persistent score (half-life ~10 sessions): the
    turnover of a daily-rebalanced equity factor, not white noise."""
    rng = np.random.default_rng(seed)
    t, n = close.shape
    score = np.zeros((t, n))
    z = rng.normal(size=n)
    for i in range(t):
        z = 0.93 * z + np.sqrt(1 - 0.93**2) * rng.normal(size=n)
        score[i] = z
    ranks = pd.DataFrame(score, index=close.index, columns=close.columns).rank(axis=1, pct=True)
    w = (ranks > 0.8).astype(float) - (ranks <= 0.2).astype(float)
    return w.div(w.abs().sum(axis=1), axis=0)


def market(symbols: int, days: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2014-01-02", periods=days, name="date")
    cols = [f"S{i:03d}" for i in range(symbols)]
    vol = rng.uniform(0.01, 0.03, symbols)
    rets = rng.standard_t(5, size=(days, symbols)) * vol / np.sqrt(5 / 3)
    close = pd.DataFrame(np.exp(rng.uniform(np.log(15), np.log(250), symbols))
                         * np.exp(np.cumsum(rets, axis=0)), index=idx, columns=cols)
    return {"close": close, "daily_vol": pd.DataFrame(np.broadcast_to(vol, close.shape),
                                                      index=idx, columns=cols),
            "adv": pd.DataFrame(np.exp(rng.uniform(np.log(2e5), np.log(5e6), symbols))
                                .repeat(days).reshape(symbols, days).T, index=idx,
                                columns=cols)}


def best_of(fn, repeats: int) -> tuple[float, object]:
    out, best = None, np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def replay_figure(symbols: int, sessions: int) -> dict:
    """The replay of ``sessions`` sessions of ``symbols`` names (synthetic market, core
    features, a small real ensemble), without retraining."""
    from alphaline.config import load_params
    from alphaline.models.ensemble import TreeEnsemble
    from alphaline.models.signal import SignalModel
    from alphaline.pipelines import featurize
    from alphaline.pipelines.synthetic import generate_market
    from alphaline.trading.backtest.replay import ReplayRun, TradingModel, replay_sessions

    repo = Path(__file__).resolve().parents[1]
    p = load_params(repo / "params.yaml")
    bars, _ = generate_market(symbols, "2019-01-02", "2021-12-31", seed=3,
                              alpha_strength=0.05)
    tables = featurize.build(bars, p.features)
    feats = tables.features.merge(tables.labels, on=["symbol", "date"])
    names = [c for c in tables.features.columns if c not in ("symbol", "date")]
    days = sorted(pd.to_datetime(bars["date"].unique()))[-sessions:]
    train = feats[(feats["date"] < days[0] - pd.Timedelta(days=7))
                  & feats["label"].notna()].dropna(subset=names)
    member = {"objective": "regression", "seed": 1, "n_estimators": 100, "num_leaves": 15,
              "min_child_samples": 100, "learning_rate": 0.05, "feature_fraction": 0.8,
              "bagging_fraction": 0.8, "lambda_l2": 1.0, "rank_levels": 5,
              "rank_truncation": 30}
    ens = TreeEnsemble([member], stack_folds=2, horizon=1, embargo=5, redundancy_corr=0.95,
                       n_jobs=2).fit(train[names], train["label"], dates=train["date"])
    model = TradingModel(SignalModel(ens), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ledger = replay_sessions(bars, tables.features, [d.date() for d in days], p,
                                 ReplayRun(Path(tmp)), lambda day: model)
        seconds = time.perf_counter() - t
        fills = len(ledger.fills())
    return {"replay_seconds": round(seconds, 2), "replay_sessions": sessions,
            "replay_symbols": symbols, "replay_fills": fills}


VBT_SCRIPT = """
import sys, time, numpy as np, pandas as pd, vectorbt as vbt
d = np.load(sys.argv[1])
idx = pd.to_datetime(d["index"])
close = pd.DataFrame(d["close"], index=idx)
w = pd.DataFrame(d["weights"], index=idx)
kw = dict(size=w, size_type="targetpercent", direction="both", fees=float(d["fee"]),
          init_cash=float(d["cash"]), cash_sharing=True, group_by=True, call_seq="auto",
          freq="1D")
vbt.Portfolio.from_orders(close.iloc[:50], **{**kw, "size": w.iloc[:50]})  # compile
best = np.inf
for _ in range(int(d["repeats"])):
    t = time.perf_counter()
    pf = vbt.Portfolio.from_orders(close, **kw)
    best = min(best, time.perf_counter() - t)
np.savez(sys.argv[2], seconds=best, value=pf.value().to_numpy())
"""


def run_vectorbt(python: str, weights: pd.DataFrame, close: pd.DataFrame, fee: float,
                 cash: float, repeats: int) -> tuple[float, pd.Series]:
    """vectorbt on the same weights in a side interpreter; (best seconds, equity)."""
    import subprocess

    if not Path(python).is_file():
        raise SystemExit(f"{python}: no interpreter with vectorbt (see this file's docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, index=close.index.to_numpy().astype("datetime64[ns]"),
                 close=close.to_numpy(), weights=weights.to_numpy(), fee=fee, cash=cash,
                 repeats=repeats)
        subprocess.run([python, "-c", VBT_SCRIPT, str(src), str(out)], check=True)
        got = np.load(out)
        return float(got["seconds"]), pd.Series(got["value"], index=close.index)


def main() -> None:
    configure_environment()
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--days", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--replay-sessions", type=int, default=252, help="0: skip the replay")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vectorbt-python", default="/tmp/vbtenv/bin/python",
                    help="the side environment's interpreter with vectorbt installed")
    args = ap.parse_args()

    from alphaline.trading.backtest.vectorized import EngineRules, simulate
    from alphaline.trading.costs import CostModel

    m = market(args.symbols, args.days, args.seed)
    w = weights_panel(m["close"], args.seed)
    costs = CostModel(0.005, 1.0, 2.0, 0.1, 0.005)
    rules = EngineRules(lot_size=1, min_trade_notional=1000.0, min_order_notional=100.0,
                        max_participation=0.05, gross_limit=1.0, net_limit=0.1,
                        name_limit=0.05, price_band=0.15)
    cash = 10_000_000.0
    simulate(w.iloc[:50], {k: v.iloc[:50] for k, v in m.items()}, costs,
             initial_cash=cash, sessions_per_year=252.0, rules=rules)  # compile
    ours_s, ours = best_of(lambda: simulate(w, m, costs, initial_cash=cash,
                                            sessions_per_year=252.0, rules=rules),
                           args.repeats)
    print(f"vectorized engine, {args.symbols} × {args.days}, full cost model: "
          f"{ours_s:.3f} s best of {args.repeats} ({len(ours.trades):,} fills)")

    fee = 2.0e-4
    vbt_s, theirs = run_vectorbt(args.vectorbt_python, w, m["close"], fee, cash, args.repeats)
    print(f"vectorbt Portfolio.from_orders (target percent, cash sharing, fees): "
          f"{vbt_s:.3f} s best of {args.repeats}")

    agree = EngineRules(lot_size=0, fill_lag=0)
    flat = CostModel(0.0, 0.0, fee * 1e4, 0.0, 0.0)
    mine = simulate(w, m, flat, initial_cash=cash, sessions_per_year=252.0, rules=agree)
    diff = float((mine.daily["nav"] / theirs - 1).abs().max())
    print(f"equity where both models agree (fractional shares, proportional fees, fill at "
          f"the deciding close): max relative difference {diff:.2e}")

    replay = (replay_figure(args.symbols, args.replay_sessions) if args.replay_sessions
              else {"replay_seconds": None, "replay_sessions": 0, "replay_symbols": 0,
                    "replay_fills": 0})
    if args.replay_sessions:
        print(f"replay of {replay['replay_sessions']} sessions × {replay['replay_symbols']} "
              f"names (no retraining): {replay['replay_seconds']:.1f} s "
              f"({replay['replay_fills']:,} fills)")
    print(json.dumps({"bench": "backtest", "symbols": args.symbols, "days": args.days,
                      "vectorized_seconds": round(ours_s, 4),
                      "vectorbt_seconds": round(vbt_s, 4),
                      "speedup_vs_vectorbt": round(vbt_s / ours_s, 1),
                      "equity_max_rel_diff": diff, **replay}))


if __name__ == "__main__":
    main()
