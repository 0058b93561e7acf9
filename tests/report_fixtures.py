"""A small synthetic :class:`BacktestResult`: a market with a planted signal, a quantile
long-short book on it with costs, and the baselines, built the way an engine reports them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.trading.backtest.result import DAILY_COLUMNS, TRADE_COLUMNS, BacktestResult

SECTORS = ("tech", "health", "energy", "finance")


def synthetic_result(n_days: int = 300, n_symbols: int = 24, seed: int = 7,
                     alpha: float = 0.08) -> BacktestResult:
    """``n_days`` sessions of a book that holds the top and bottom quintile of a score that
    predicts the next session's return with correlation about ``alpha``."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_days + 21, name="date")
    symbols = [f"S{i:02d}" for i in range(n_symbols)]
    market = rng.normal(0.0003, 0.009, len(dates))
    betas = rng.uniform(0.6, 1.4, n_symbols)
    idio = rng.normal(0.0, 0.015, (len(dates), n_symbols))
    rets = market[:, None] * betas[None, :] + idio
    # the score at t carries part of the return from t+1 to t+2 (decide at t, fill at t+1)
    nxt = np.vstack([rets[2:], np.zeros((2, n_symbols))])
    score = alpha * nxt / nxt.std() + rng.normal(0, 1, nxt.shape)
    closes = pd.DataFrame(100 * np.cumprod(1 + rets, axis=0), index=dates, columns=symbols)
    closes.columns.name = "symbol"
    scores = pd.DataFrame(score, index=dates, columns=pd.Index(symbols, name="symbol")) \
        .stack().rename("score").reset_index()

    days = dates[:n_days]
    ranks = pd.DataFrame(score, index=dates, columns=symbols).rank(axis=1, pct=True)
    k = 0.2
    target = ((ranks > 1 - k).astype(float) - (ranks <= k).astype(float))
    target = target.div(target.abs().sum(axis=1), axis=0)
    held = target.shift(1).fillna(0.0).loc[days]  # decided yesterday, filled at today's close
    asset = pd.DataFrame(rets, index=dates, columns=symbols).loc[days]

    nav0, bp = 1_000_000.0, 1e-4
    trade_w = held.diff().fillna(held.iloc[0]).abs()
    turnover = trade_w.sum(axis=1)
    gross_r = (held.shift(1).fillna(0.0) * asset).sum(axis=1)
    short = held.clip(upper=0).sum(axis=1)
    cost_frac = {"commission": turnover * 0.5 * bp, "spread": turnover * 2.0 * bp,
                 "impact": turnover * 1.5 * bp, "borrow": -short * 0.5 / 252 * 0.01}
    net_r = gross_r - sum(cost_frac.values())
    nav = nav0 * (1 + net_r).cumprod()
    start = nav / (1 + net_r)
    daily = pd.DataFrame({
        "nav": nav, "returns": net_r, "gross": held.abs().sum(axis=1),
        "net": held.sum(axis=1), "long": held.clip(lower=0).sum(axis=1), "short": short,
        "turnover": turnover,
        **{kind: frac * start for kind, frac in cost_frac.items()},
    }, index=days)
    daily["beta"] = (held * betas).sum(axis=1)
    assert list(daily.columns[:len(DAILY_COLUMNS)]) == DAILY_COLUMNS

    rows = []
    for day, w in held.diff().fillna(held.iloc[0]).iterrows():
        for sym, dw in w[w.abs() > 1e-12].items():
            px = float(closes.at[day, sym])
            notional = abs(dw) * float(start[day])
            rows.append({"decided_on": day - pd.offsets.BDay(1), "filled_on": day,
                         "symbol": sym, "quantity": round(dw * float(start[day]) / px),
                         "price": px, "commission": notional * 0.5 * bp,
                         "spread": notional * 2.0 * bp, "impact": notional * 1.5 * bp,
                         "model_version": "1" if day < days[n_days // 2] else "2"})
    trades = pd.DataFrame(rows, columns=TRADE_COLUMNS)

    ew = asset.mean(axis=1) - 0.2 * bp
    baselines = pd.DataFrame({"equal_weight": ew,
                              "momentum_12_1": asset.iloc[:, : n_symbols // 2].mean(axis=1)
                              - 0.5 * ew,
                              "reversal_1m": -asset.iloc[:, n_symbols // 2:].mean(axis=1)
                              + 0.5 * ew}, index=days)
    versions = pd.DataFrame({"version": ["1", "2"],
                             "first_day": [days[0].date(), days[n_days // 2].date()],
                             "last_day": [days[n_days // 2 - 1].date(), days[-1].date()],
                             "trained_through": [(days[0] - pd.offsets.BDay(5)).date(),
                                                 (days[n_days // 2] - pd.offsets.BDay(5))
                                                 .date()]})
    sectors = {s: SECTORS[i % len(SECTORS)] for i, s in enumerate(symbols)}
    return BacktestResult(daily=daily, weights=held, trades=trades, closes=closes,
                          scores=scores[scores["date"].isin(days)], baselines=baselines,
                          versions=versions, sectors=sectors,
                          meta={"engine": "synthetic", "run_id": "test-run", "seed": seed})


def shap_summary(features: list[str], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"feature": features,
                         "mean_abs_shap": np.sort(rng.gamma(2.0, 0.002, len(features)))[::-1]})
