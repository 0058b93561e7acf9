"""Both engines' output → one :class:`BacktestResult` (what reports and the gate read)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from alphaline.trading.backtest.baselines import baseline_returns, nav_returns
from alphaline.trading.backtest.replay import ledger_frames
from alphaline.trading.backtest.result import BacktestResult
from alphaline.trading.backtest.vectorized import EngineResult
from alphaline.trading.costs import CostModel
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import Order, Signal


def _exposures(weights: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"gross": weights.abs().sum(axis=1), "net": weights.sum(axis=1),
                         "long": weights.clip(lower=0).sum(axis=1),
                         "short": weights.clip(upper=0).sum(axis=1)})


def _beta(weights: pd.DataFrame, betas: pd.DataFrame | None) -> pd.Series:
    if betas is None:
        return pd.Series(np.nan, index=weights.index)
    b = betas.reindex(index=weights.index, columns=weights.columns)
    return (weights * b).sum(axis=1, min_count=1)


def from_engine(result: EngineResult, scores: pd.DataFrame, market: dict[str, pd.DataFrame],
                params, *, version: str = "research", betas: pd.DataFrame | None = None,
                sectors: dict[str, str] | None = None, meta: dict | None = None,
                baselines: bool = True) -> BacktestResult:
    """A vectorized run as a :class:`BacktestResult` (one model version over the run)."""
    daily = result.daily.copy()
    close = market["close"]
    weights = result.weights(close)
    daily["returns"] = nav_returns(daily["nav"], params.broker.initial_cash)
    daily = daily.join(_exposures(weights))
    daily["beta"] = _beta(weights, betas)
    trades = result.trades.copy()
    sessions = daily.index
    prev = pd.Series(sessions[:-1], index=sessions[1:])
    trades["decided_on"] = trades["filled_on"].map(prev)
    trades["model_version"] = version
    start = sessions.min()
    return BacktestResult(
        daily=daily, weights=weights, trades=trades, closes=close.loc[sessions],
        scores=scores[["date", "symbol", "score"]].reset_index(drop=True),
        baselines=(baseline_returns(market, params, start) if baselines
                   else pd.DataFrame(index=sessions)),
        versions=pd.DataFrame([{"version": version, "first_day": start.date(),
                                "last_day": sessions.max().date(), "trained_through": None}]),
        sectors=sectors or {}, meta={"engine": "vectorized", **(meta or {})})


def from_ledger(ledger: Ledger, market: dict[str, pd.DataFrame], params,
                versions: dict[str, dict], *, betas: pd.DataFrame | None = None,
                sectors: dict[str, str] | None = None, meta: dict | None = None
                ) -> BacktestResult:
    """A replay's scratch ledger as a :class:`BacktestResult`."""
    frames = ledger_frames(ledger, CostModel.from_params(params.broker))
    nav = frames["nav"].assign(day=lambda f: pd.to_datetime(f["day"])).set_index("day")
    sessions = pd.DatetimeIndex(nav.index, name="date")
    daily = pd.DataFrame({"nav": nav["nav"].to_numpy(), "cash": nav["cash"].to_numpy()},
                         index=sessions)
    daily["returns"] = nav_returns(daily["nav"], params.broker.initial_cash)
    fills = frames["fills"]
    if len(fills):
        fills["filled_on"] = pd.to_datetime(fills["filled_on"])
        per_day = fills.assign(notional=fills["quantity"].abs() * fills["price"]).groupby(
            "filled_on")[["commission", "spread", "impact", "notional"]].sum()
    else:
        per_day = pd.DataFrame(columns=["commission", "spread", "impact", "notional"])
    per_day = per_day.reindex(sessions, fill_value=0.0)
    for c in ("commission", "spread", "impact"):
        daily[c] = per_day[c].to_numpy()
    daily["turnover"] = per_day["notional"].to_numpy() / daily["nav"].to_numpy()
    borrow = frames["borrow"]
    daily["borrow"] = (borrow.assign(day=pd.to_datetime(borrow["day"])).set_index("day")
                       ["borrow"].reindex(sessions, fill_value=0.0).to_numpy()
                       if len(borrow) else 0.0)
    pos = frames["positions"]
    if len(pos):
        pos["day"] = pd.to_datetime(pos["day"])
        mv = pos.pivot_table(index="day", columns="symbol", values="market_value",
                             aggfunc="sum").reindex(sessions).fillna(0.0)
        weights = mv.div(daily["nav"], axis=0)
    else:
        weights = pd.DataFrame(index=sessions)
    daily = daily.join(_exposures(weights).reindex(sessions).fillna(0.0))
    daily["beta"] = _beta(weights, betas)
    orders = ledger.table(Order).set_index("client_order_id")
    if len(fills):
        o = orders.reindex(fills["client_order_id"])
        fills["decided_on"] = pd.to_datetime(o["trading_day"].to_numpy())
        fills["model_version"] = o["model_version"].to_numpy()
    trades = fills.reindex(columns=["decided_on", "filled_on", "symbol", "quantity", "price",
                                    "commission", "spread", "impact", "model_version"])
    signals = ledger.table(Signal)
    scores = pd.DataFrame({"date": pd.to_datetime(signals["trading_day"]),
                           "symbol": signals["symbol"], "score": signals["score"]})
    start = sessions.min()
    primary = scores if params.portfolio.method == "meta_sized_long_short" else None
    return BacktestResult(
        daily=daily, weights=weights, trades=trades,
        closes=market["close"].reindex(sessions), scores=scores,
        baselines=baseline_returns(market, params, start, primary),
        versions=pd.DataFrame([{"version": v, "first_day": _day(e["first_day"]),
                                "last_day": _day(e["last_day"]),
                                "trained_through": _day(e.get("trained_through"))}
                               for v, e in versions.items()]),
        sectors=sectors or {}, meta={"engine": "replay", **(meta or {})})


def _day(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
