"""What needs no model: the baselines every figure is shown beside.

Each is a score panel (``date, symbol, score``) computed from closes known at the decision
(no look-ahead: a score at ``t`` reads closes up to ``t``), run through the same book
method, rebalance rules and cost model as the model; the equal-weight universe is the long-
only market portfolio at the book's gross.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from alphaline.trading.backtest.vectorized import book_backtest, simulate

MOMENTUM_SKIP, MOMENTUM_LOOKBACK, REVERSAL_LOOKBACK = 21, 252, 21


def _panel(scores: pd.DataFrame, name: str) -> pd.DataFrame:
    out = scores.stack().rename("score").reset_index()
    out.columns = ["date", "symbol", "score"]
    return out.dropna(subset=["score"]).assign(baseline=name)


def momentum_12_1(close: pd.DataFrame) -> pd.DataFrame:
    """Return from 12 months to 1 month ago (Jegadeesh–Titman, skipping the reversal month)."""
    c = close.ffill()
    return _panel(c.shift(MOMENTUM_SKIP) / c.shift(MOMENTUM_LOOKBACK) - 1, "momentum_12_1")


def reversal_1m(close: pd.DataFrame) -> pd.DataFrame:
    """Minus the last month's return (short-term reversal)."""
    c = close.ffill()
    return _panel(-(c / c.shift(REVERSAL_LOOKBACK) - 1), "reversal_1m")


def equal_weight_returns(market: dict[str, pd.DataFrame], params, start: pd.Timestamp
                         ) -> pd.Series:
    """Daily after-cost returns of the long-only equal-weight universe at the book's gross,
    rebalanced every session under the same rules and costs."""
    from alphaline.calendar import sessions_per_year
    from alphaline.trading.backtest.vectorized import EngineRules
    from alphaline.trading.costs import CostModel

    close = market["close"]
    sessions = close.index[close.index >= start]
    listed = close.loc[sessions].notna()
    gross = min(params.portfolio.gross_exposure, params.risk.max_gross_exposure)
    weights = listed.div(listed.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0) * gross
    history = close.loc[close.index < start]
    # the market portfolio is long-only: the book's net limit does not bind it
    rules = replace(EngineRules.from_params(params), net_limit=np.inf, band=False,
                    name_limit=np.inf)
    result = simulate(weights, {k: v.loc[sessions] for k, v in market.items()},
                      CostModel.from_params(params.broker),
                      initial_cash=params.broker.initial_cash,
                      sessions_per_year=sessions_per_year(params.data.calendar), rules=rules,
                      last_close=history.ffill().iloc[-1] if len(history) else None)
    return nav_returns(result.daily["nav"], params.broker.initial_cash)


def nav_returns(nav: pd.Series, initial_cash: float) -> pd.Series:
    """Session returns of a NAV path (the first against the initial cash)."""
    prev = nav.shift(1)
    prev.iloc[0] = initial_cash
    return nav / prev - 1


def baseline_returns(market: dict[str, pd.DataFrame], params, start: pd.Timestamp,
                     primary_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sessions × baselines: daily after-cost returns from ``start`` (``market`` may hold
    earlier sessions: the history the scores need). ``primary_scores``: the meta-labeled
    model's unsized primary scores, run through the quantile book."""
    close = market["close"]
    out = {"equal_weight": equal_weight_returns(market, params, start)}
    for make in (momentum_12_1, reversal_1m):
        panel = make(close)
        panel = panel[panel["date"] >= start]
        if panel.empty:
            continue
        r = book_backtest(panel[["date", "symbol", "score"]], market, params)
        out[panel["baseline"].iloc[0]] = nav_returns(r.daily["nav"],
                                                     params.broker.initial_cash)
    if primary_scores is not None and params.portfolio.method == "meta_sized_long_short":
        quantile = params.with_overrides({"portfolio.method": "quantile_long_short"})
        r = book_backtest(primary_scores[["date", "symbol", "score"]], market, quantile)
        out["unsized_primary"] = nav_returns(r.daily["nav"], params.broker.initial_cash)
    sessions = close.index[close.index >= start]
    return pd.DataFrame(out).reindex(sessions).fillna(0.0)
