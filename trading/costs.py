"""The one cost model: every cost the project charges is computed here.

A trade of ``q`` shares at price ``P`` (notional ``N = |q| P``) in a name with daily
volatility ``σ`` and average daily volume ``ADV`` costs

    commission  = max(commission_per_share × |q|, commission_min)      (0 when q = 0)
    half spread = half_spread_bps × 1e-4 × N
    impact      = impact_coefficient × σ × sqrt(|q| / ADV) × N          (0 without σ or ADV)

and a short position of market value ``S`` pays ``borrow_rate × S / sessions_per_year``
each session it is held. Walk-forward metrics, the gate, the backtest and the paper broker
all call this module, so the figures that promote a model charge what trading would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from alphaline.config import BrokerParams


@dataclass(frozen=True)
class CostModel:
    commission_per_share: float
    commission_min: float
    half_spread_bps: float
    impact_coefficient: float
    borrow_rate: float  # annual, on short market value

    @classmethod
    def from_params(cls, p: BrokerParams) -> CostModel:
        return cls(p.commission_per_share, p.commission_min, p.half_spread_bps,
                   p.impact_coefficient, p.borrow_rate)

    # vectorized forms: one implementation, the scalar methods call them
    def commissions(self, quantity: ArrayLike) -> np.ndarray:
        q = np.abs(np.asarray(quantity, dtype="float64"))
        return np.where(q > 0, np.maximum(self.commission_per_share * q, self.commission_min),
                        0.0)

    def slippages(self, quantity: ArrayLike, price: ArrayLike, daily_vol: ArrayLike,
                  adv: ArrayLike) -> np.ndarray:
        """Half spread plus square-root impact, in dollars; impact is 0 where ``σ`` or ``ADV``
        is missing or not positive (the figure then omits it)."""
        q = np.abs(np.asarray(quantity, dtype="float64"))
        notional = q * np.asarray(price, dtype="float64")
        vol = np.asarray(daily_vol, dtype="float64")
        adv = np.asarray(adv, dtype="float64")
        usable = np.isfinite(vol) & np.isfinite(adv) & (adv > 0)
        participation = np.divide(q, adv, out=np.zeros_like(notional), where=usable)
        impact = np.where(usable, self.impact_coefficient * np.where(usable, vol, 0.0)
                          * np.sqrt(participation) * notional, 0.0)
        return self.half_spread_bps * 1e-4 * notional + impact

    def half_spreads(self, quantity: ArrayLike, price: ArrayLike) -> np.ndarray:
        """The half-spread part of :meth:`slippages`, in dollars."""
        notional = np.abs(np.asarray(quantity, dtype="float64")) * np.asarray(price,
                                                                             dtype="float64")
        return self.half_spread_bps * 1e-4 * notional

    def impacts(self, quantity: ArrayLike, price: ArrayLike, daily_vol: ArrayLike,
                adv: ArrayLike) -> np.ndarray:
        """The square-root impact part of :meth:`slippages`, in dollars (0 where ``σ`` or
        ``ADV`` is missing or not positive). ``adv`` may be the expected volume of a part of
        the session: an execution schedule charges each slice at its own participation."""
        q = np.abs(np.asarray(quantity, dtype="float64"))
        notional = q * np.asarray(price, dtype="float64")
        vol = np.asarray(daily_vol, dtype="float64")
        adv = np.asarray(adv, dtype="float64")
        usable = np.isfinite(vol) & np.isfinite(adv) & (adv > 0)
        participation = np.divide(q, adv, out=np.zeros(np.broadcast(q, adv).shape),
                                  where=usable)
        return np.where(usable, self.impact_coefficient * np.where(usable, vol, 0.0)
                        * np.sqrt(participation) * notional, 0.0)

    def trade_costs(self, quantity: ArrayLike, price: ArrayLike, daily_vol: ArrayLike,
                    adv: ArrayLike) -> np.ndarray:
        return self.commissions(quantity) + self.slippages(quantity, price, daily_vol, adv)

    def borrow_fees(self, short_value: ArrayLike, sessions: ArrayLike, sessions_per_year: float
                    ) -> np.ndarray:
        """Fee on |short market value| held for ``sessions`` sessions (the annual rate spread
        over the calendar's sessions per year)."""
        s = np.abs(np.asarray(short_value, dtype="float64"))
        return self.borrow_rate * s / sessions_per_year * np.asarray(sessions)

    # scalar forms: what the paper broker and the rebalancer call per order
    def commission(self, quantity: float) -> float:
        return float(self.commissions(quantity))

    def slippage(self, quantity: float, price: float, daily_vol: float, adv: float) -> float:
        """Dollar cost of crossing half the spread and of impact ``k σ sqrt(q / ADV) N``."""
        return float(self.slippages(quantity, price, daily_vol, adv))

    def trade_cost(self, quantity: float, price: float, daily_vol: float, adv: float) -> float:
        return float(self.trade_costs(quantity, price, daily_vol, adv))

    def borrow_fee(self, short_value: float, sessions_per_year: float) -> float:
        """One session's borrow fee on a short of market value ``short_value``: what the
        ledger books each session a short is held."""
        return float(self.borrow_fees(short_value, 1, sessions_per_year))


MARKET_COLUMNS = ["date", "symbol", "close", "daily_vol", "adv"]


def market_panel(bars: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """``date, symbol, close, daily_vol, adv`` for every bar: the standard deviation of the
    last ``window`` log returns and the mean volume of the last ``window + 1`` sessions, as
    the daily flow's market snapshot takes them. ``volume`` is optional (ADV then NaN)."""
    b = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    g = b.groupby("symbol", sort=False)
    log_ret = np.log(b["close"]).groupby(b["symbol"], sort=False).diff()
    vol = log_ret.groupby(b["symbol"], sort=False).rolling(window, min_periods=2).std()
    out = b[["date", "symbol", "close"]].copy()
    out["daily_vol"] = vol.reset_index(level=0, drop=True).sort_index().to_numpy()
    if "volume" in b:
        adv = g["volume"].rolling(window + 1, min_periods=1).mean()
        out["adv"] = adv.reset_index(level=0, drop=True).sort_index().to_numpy()
    else:
        out["adv"] = np.nan
    return out


@dataclass(frozen=True)
class ResearchCosts:
    """What research needs to charge the cost model on a book of weights: a NAV to turn
    weights into shares, and the bars' close, volatility and ADV per (date, symbol).

    ``market`` is None when the panel has no prices: the figure then charges the half
    spread and the borrow fee only (see :attr:`omits`)."""

    model: CostModel
    nav: float
    market: pd.DataFrame | None
    sessions_per_year: float

    @property
    def omits(self) -> list[str]:
        if self.market is None:
            return ["commission", "impact"]
        if not np.isfinite(self.market["adv"].to_numpy(dtype="float64")).any():
            return ["impact"]
        return []


def book_costs(weights: pd.DataFrame, costs: ResearchCosts, sessions_held: int = 1
               ) -> pd.Series:
    """Cost of running a book, as a fraction of NAV per rebalance date.

    ``weights``: rebalance dates × symbols (0 where not held), in date order. A date's trades
    (the change from the previous row; the first row counts the entry) are sized in shares
    at that date's close and filled at the next session's close, volatility and ADV, as
    the daily flow orders at ``t`` and the paper broker fills at ``t + 1``. Shorts pay the
    borrow fee for the ``sessions_held`` sessions until the next rebalance.
    """
    if weights.empty:
        return pd.Series(dtype="float64")
    nav, model = costs.nav, costs.model
    traded = weights.diff()
    traded.iloc[0] = weights.iloc[0]
    shorts = weights.clip(upper=0.0).abs().sum(axis=1)
    borrow = model.borrow_fees(shorts.to_numpy() * nav, sessions_held,
                               costs.sessions_per_year) / nav
    if costs.market is None:
        trade = model.half_spread_bps * 1e-4 * traded.abs().sum(axis=1).to_numpy()
        return pd.Series(trade + borrow, index=weights.index)
    m = costs.market.sort_values(["symbol", "date"])
    nxt = m.groupby("symbol")[["close", "daily_vol", "adv"]].shift(-1)
    for c in ("close", "daily_vol", "adv"):  # the last session fills at its own figures
        m[f"fill_{c}"] = nxt[c].fillna(m[c]).to_numpy()
    m = m.set_index(["date", "symbol"])
    long = traded.stack(future_stack=True)
    long = long[long != 0]
    at = m.reindex(long.index)
    shares = (long.abs() * nav / at["close"]).to_numpy()
    dollars = model.trade_costs(shares, at["fill_close"], at["fill_daily_vol"],
                                at["fill_adv"])
    missing = ~np.isfinite(dollars)  # a name without a close that day: spread on notional
    dollars[missing] = model.half_spread_bps * 1e-4 * long.abs().to_numpy()[missing] * nav
    per_date = pd.Series(dollars, index=long.index).groupby(level=0).sum()
    trade = per_date.reindex(weights.index, fill_value=0.0).to_numpy() / nav
    return pd.Series(trade + borrow, index=weights.index)
