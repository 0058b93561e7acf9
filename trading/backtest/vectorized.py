"""The vectorized engine: a panel of target weights → trades, costs and a NAV path.

It follows the daily flow's rules exactly, so that research, the gate and a replay of the
daily flow agree (a test holds the two engines to the same trades and NAV within 1e-9):

- a book decided at session ``t``'s close is sized in whole lots of ``weight × NAV_t /
  close_t`` and fills at ``t + 1``'s close (a name without a bar then does not fill: the day
  order expires);
- fills pay :class:`~alphaline.trading.costs.CostModel` commission, half spread and
  square-root impact at the fill session's volatility and ADV; a short book pays one
  session's borrow on its market value at each close (booked after that close's NAV);
- the rebalance rules of :mod:`alphaline.trading.rebalance`: resizes below the minimum
  trade notional or inside the no-trade band wait, entries below the risk engine's minimum
  notional wait, orders are clipped to the participation cap, and no skipped resize leaves
  the book over a limit;
- a held name without a price is marked at its last close and frozen.

What it does not model (the replay does): the risk engine's refusals other than the price
band, kill switches, corporate actions, and execution schedules (an order at or above
``broker.execution``'s participation threshold is worked by TWAP/VWAP/Almgren–Chriss in the
paper broker; below it, the market-on-close fill modelled here). The session loop runs in
numba: 500 names × 2,520 sessions take milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from alphaline.trading.costs import CostModel


@dataclass(frozen=True)
class EngineRules:
    """The rebalance rules the engine applies (see :mod:`alphaline.trading.rebalance`).

    ``lot_size`` 0 trades fractional shares (the research figure without rounding);
    ``fill_lag`` 1 fills at the next close (the daily flow), 0 at the deciding close (a
    reference engine's convention)."""

    lot_size: int = 1
    min_trade_notional: float = 0.0
    min_order_notional: float = 0.0
    max_participation: float = np.inf
    band: bool = False
    gross_limit: float = np.inf
    net_limit: float = np.inf
    name_limit: float = np.inf
    price_band: float = np.inf  # the risk engine refuses an order priced this far from the
    fill_lag: int = 1           # previous close (a jump day): the name waits a session

    @classmethod
    def from_params(cls, p) -> EngineRules:
        from alphaline.trading.book import BookLimits
        from alphaline.trading.rebalance import RebalanceRules

        r = RebalanceRules.from_params(p)
        limits = BookLimits.from_params(p)
        return cls(lot_size=r.lot_size, min_trade_notional=r.min_trade_notional,
                   min_order_notional=r.min_order_notional,
                   max_participation=r.max_participation, band=r.band,
                   gross_limit=limits.gross, net_limit=limits.net, name_limit=limits.name,
                   price_band=p.risk.price_band)


@dataclass
class EngineResult:
    """``daily``: per session ``nav`` (at the close, before that close's borrow), ``cash``,
    the dollars charged by kind (``commission, spread, impact, borrow``) and ``turnover``
    (traded notional / NAV); ``holdings``: shares after each close's fills (sessions ×
    symbols); ``trades``: one row per fill (``filled_on, symbol, quantity, price,
    commission, spread, impact``)."""

    daily: pd.DataFrame
    holdings: pd.DataFrame
    trades: pd.DataFrame

    def weights(self, close: pd.DataFrame) -> pd.DataFrame:
        """The book held at each close as fractions of NAV (marked at the last close)."""
        marks = close.reindex_like(self.holdings).ffill()
        value = (self.holdings * marks).fillna(0.0)
        return value.div(self.daily["nav"], axis=0)


@numba.njit(cache=True)
def _trunc_lots(weight, nav, price, lot):
    if lot <= 0:
        return weight * nav / price
    return np.trunc(weight * nav / price / lot) * lot


@numba.njit(cache=True)
def _simulate(weights, decide, close, vol, adv, alpha, initial_cash,
              cps, cmin, half_spread_bps, impact_k, borrow_per_session,
              lot, min_trade, min_order, max_part, band, gross_lim, net_lim, name_lim,
              price_band, fill_lag, last_close):
    n_t, n_s = weights.shape
    held = np.zeros(n_s)
    pending = np.zeros(n_s)
    mark = last_close.copy()
    prev_mark = np.full(n_s, np.nan)
    cash = initial_cash
    nav_out = np.zeros(n_t)
    cash_out = np.zeros(n_t)
    borrow_out = np.zeros(n_t)
    fills = np.zeros((n_t, n_s))
    holdings = np.empty((n_t, n_s))
    target = np.zeros(n_s)
    resize_target = np.zeros(n_s)
    is_resize_skip = np.zeros(n_s, dtype=np.bool_)
    for t in range(n_t):
        # 1. orders decided at the previous close fill at this close (or expire)
        if fill_lag == 1:
            for j in range(n_s):
                q = pending[j]
                if q != 0.0:
                    px = close[t, j]
                    if np.isfinite(px) and px > 0:
                        fills[t, j] = q
                        cash -= q * px + _cost(q, px, vol[t, j], adv[t, j], cps, cmin,
                                               half_spread_bps, impact_k)
                        held[j] += q
                    pending[j] = 0.0
        for j in range(n_s):
            px = close[t, j]
            prev_mark[j] = mark[j]
            if np.isfinite(px) and px > 0:
                mark[j] = px
        nav = cash
        for j in range(n_s):
            if held[j] != 0.0:
                nav += held[j] * mark[j]
        # 2. the day's plan
        if decide[t]:
            any_resize_skip = False
            for j in range(n_s):
                h = held[j]
                px = close[t, j]
                is_resize_skip[j] = False
                w = weights[t, j]
                if not (np.isfinite(px) and px > 0):
                    target[j] = h  # frozen (or not entered)
                    continue
                tgt = _trunc_lots(w, nav, px, lot)
                delta = tgt - h
                if delta == 0.0:
                    target[j] = h
                    continue
                resize = h != 0.0 and tgt != 0.0 and ((h > 0) == (tgt > 0))
                if resize:
                    notional = abs(delta) * px
                    skip = notional < min_trade
                    if not skip and band:
                        cost = _cost(delta, px, vol[t, j], adv[t, j], cps, cmin,
                                     half_spread_bps, impact_k)
                        a = alpha[t, j] if alpha.shape[0] > 1 else np.nan
                        benefit = notional * abs(a) if np.isfinite(a) else 0.0
                        skip = not (benefit > cost)
                    if skip:
                        target[j] = h
                        resize_target[j] = tgt
                        is_resize_skip[j] = True
                        any_resize_skip = True
                        continue
                if tgt != 0.0 and abs(delta) * px < min_order:
                    target[j] = h
                    continue
                a_dv = adv[t, j]
                if np.isfinite(a_dv) and a_dv > 0 and np.isfinite(max_part):
                    cap = np.floor(max_part * a_dv / lot) * lot if lot > 0 else max_part * a_dv
                    if abs(delta) > cap:
                        delta = cap if delta > 0 else -cap
                target[j] = h + delta
                pc = prev_mark[j]
                if np.isfinite(price_band) and not (np.isfinite(pc)
                                                    and abs(px / pc - 1.0) <= price_band):
                    target[j] = h  # the price band refuses it (no previous close: too)
            if any_resize_skip and not _within(target, close[t], nav, gross_lim, net_lim,
                                                name_lim):
                for j in range(n_s):
                    if is_resize_skip[j] and (abs(resize_target[j] - held[j]) * close[t, j]
                                              >= min_order):
                        target[j] = resize_target[j]
            for j in range(n_s):
                d = target[j] - held[j]
                if abs(d) >= 1e-9:
                    if fill_lag == 1:
                        pending[j] = d
                    else:
                        px = close[t, j]
                        fills[t, j] = d
                        cash -= d * px + _cost(d, px, vol[t, j], adv[t, j], cps, cmin,
                                               half_spread_bps, impact_k)
                        held[j] += d
            if fill_lag == 0:
                nav = cash
                for j in range(n_s):
                    if held[j] != 0.0:
                        nav += held[j] * mark[j]
        nav_out[t] = nav
        cash_out[t] = cash
        holdings[t] = held
        # 3. one session's borrow on the short book at this close
        short_value = 0.0
        for j in range(n_s):
            px = close[t, j]
            if held[j] < 0 and np.isfinite(px) and px > 0:
                short_value += -held[j] * px
        fee = borrow_per_session * short_value
        borrow_out[t] = fee
        cash -= fee
    return nav_out, cash_out, borrow_out, fills, holdings


@numba.njit(cache=True)
def _cost(q, px, vol, adv, cps, cmin, half_spread_bps, impact_k):
    a = abs(q)
    c = max(cps * a, cmin) if a > 0 else 0.0
    notional = a * px
    s = half_spread_bps * 1e-4 * notional
    imp = 0.0
    if np.isfinite(vol) and np.isfinite(adv) and adv > 0:
        imp = impact_k * vol * np.sqrt(a / adv) * notional
    return c + (s + imp)


@numba.njit(cache=True)
def _within(target, px, nav, gross_lim, net_lim, name_lim):
    gross = 0.0
    net = 0.0
    biggest = 0.0
    for j in range(target.shape[0]):
        if target[j] != 0.0 and np.isfinite(px[j]) and px[j] > 0:
            v = target[j] * px[j] / nav
            gross += abs(v)
            net += v
            biggest = max(biggest, abs(v))
    tol = 1e-9
    return gross <= gross_lim + tol and abs(net) <= net_lim + tol and biggest <= name_lim + tol


def simulate(weights: pd.DataFrame, market: dict[str, pd.DataFrame], costs: CostModel, *,
             initial_cash: float, sessions_per_year: float, rules: EngineRules = EngineRules(),
             alpha: pd.DataFrame | None = None, decide: pd.Series | None = None,
             last_close: pd.Series | None = None) -> EngineResult:
    """Run a book through the sessions of ``weights`` (sessions × symbols, the target
    weights decided at each close; NaN = not held).

    ``market``: ``close``, ``daily_vol``, ``adv`` frames on the same grid (NaN close = no bar
    that session); ``alpha``: the band's expected return per name and session (see
    :func:`alphaline.trading.rebalance.expected_alpha`; needed when ``rules.band``);
    ``decide``: the sessions that rebalance (default every one); ``last_close``: each
    name's close before the first session (the price band's reference on the first day).
    """
    idx, cols = weights.index, weights.columns

    def grid(frame: pd.DataFrame) -> np.ndarray:
        if not (frame.index.equals(idx) and frame.columns.equals(cols)):
            frame = frame.reindex(index=idx, columns=cols)
        return np.ascontiguousarray(frame.to_numpy(dtype="float64"))

    if rules.band and alpha is None:
        raise ValueError("rules.band needs the expected alpha per name (alpha=...)")
    w = np.nan_to_num(weights.to_numpy(dtype="float64"), nan=0.0)
    a = grid(alpha) if alpha is not None else np.zeros((1, 1))  # read only with the band
    when = (np.ones(len(idx), dtype=np.bool_) if decide is None
            else decide.reindex(idx, fill_value=False).to_numpy(dtype=np.bool_))
    close_g, vol_g, adv_g = (grid(market[c]) for c in ("close", "daily_vol", "adv"))
    last = (np.full(len(cols), np.nan) if last_close is None
            else last_close.reindex(cols).to_numpy(dtype="float64").copy())
    out = _simulate(np.ascontiguousarray(w), when, close_g, vol_g, adv_g, a,
                    float(initial_cash),
                    costs.commission_per_share, costs.commission_min, costs.half_spread_bps,
                    costs.impact_coefficient, costs.borrow_rate / sessions_per_year,
                    int(rules.lot_size), rules.min_trade_notional, rules.min_order_notional,
                    float(rules.max_participation), rules.band, rules.gross_limit,
                    rules.net_limit, rules.name_limit, float(rules.price_band),
                    int(rules.fill_lag), last)
    nav, cash, borrow, fills, holdings = out
    t_i, s_i = np.nonzero(fills)
    quantity = fills[t_i, s_i]
    price = close_g[t_i, s_i]
    notional = np.abs(quantity) * price
    commission = costs.commissions(quantity)
    spread = costs.half_spread_bps * 1e-4 * notional
    impact = costs.slippages(quantity, price, vol_g[t_i, s_i], adv_g[t_i, s_i]) - spread
    trades = pd.DataFrame({"filled_on": idx[t_i], "symbol": cols[s_i], "quantity": quantity,
                           "price": price, "commission": commission, "spread": spread,
                           "impact": impact})

    def per_session(values: np.ndarray) -> np.ndarray:
        return np.bincount(t_i, weights=values, minlength=len(idx))

    daily = pd.DataFrame({"nav": nav, "cash": cash, "commission": per_session(commission),
                          "spread": per_session(spread), "impact": per_session(impact),
                          "borrow": borrow}, index=idx)
    daily["turnover"] = per_session(notional) / daily["nav"]
    return EngineResult(daily=daily, holdings=pd.DataFrame(holdings, index=idx, columns=cols),
                        trades=trades)


def market_grids(panel: pd.DataFrame, sessions: pd.DatetimeIndex | None = None
                 ) -> dict[str, pd.DataFrame]:
    """``close, daily_vol, adv`` as sessions × symbols from a
    :func:`alphaline.trading.costs.market_panel` frame."""
    out = {c: panel.pivot(index="date", columns="symbol", values=c).sort_index()
           for c in ("close", "daily_vol", "adv")}
    if sessions is not None:
        out = {c: f.reindex(sessions) for c, f in out.items()}
    return out


def band_alpha(scores: pd.DataFrame, daily_vol: pd.DataFrame, ic: float, horizon: int
               ) -> pd.DataFrame:
    """:func:`alphaline.trading.rebalance.expected_alpha` for every session of a score
    panel (``date, symbol, score``) at once: sessions × symbols."""
    s = scores[["date", "symbol", "score"]].copy()
    s["score"] = s["score"].astype("float64")
    g = s.groupby("date")["score"]
    sd = g.transform(lambda x: x.std(ddof=0))
    z = ((s["score"] - g.transform("mean")) / sd).where(sd > 0, s["score"] * 0.0)
    z = pd.Series(z.to_numpy(), index=pd.MultiIndex.from_frame(s[["date", "symbol"]]))
    zs = z.unstack("symbol").reindex(index=daily_vol.index, columns=daily_vol.columns)
    return ic * daily_vol * math.sqrt(horizon) * zs


def book_weights(scores: pd.DataFrame, params, context=None) -> pd.DataFrame:
    """The one book (:func:`alphaline.trading.book.build_book`) for every session of a score
    panel: sessions × symbols (0 where not held)."""
    from alphaline.trading.book import NO_CONTEXT, build_book

    w = build_book(scores, params, context or NO_CONTEXT)
    frame = pd.DataFrame({"date": scores["date"].to_numpy(),
                          "symbol": scores["symbol"].to_numpy(), "w": w.to_numpy()})
    return frame.pivot(index="date", columns="symbol", values="w").fillna(0.0).sort_index()


def book_backtest(scores: pd.DataFrame, market: dict[str, pd.DataFrame], params, *,
                  initial_cash: float | None = None, context=None) -> EngineResult:
    """A score panel through the one book, the rebalance rules and the cost model, from its
    first scored session to the end of ``market`` (sessions without scores hold their book:
    no plan that day). Sessions of ``market`` before the first score are history: the price
    band's previous close comes from them."""
    from alphaline.calendar import sessions_per_year

    weights = book_weights(scores, params, context)
    start = weights.index.min()
    history = market["close"].loc[market["close"].index < start]
    sessions = market["close"].index[market["close"].index >= start]
    symbols = market["close"].columns.union(weights.columns)
    decide = pd.Series(sessions.isin(weights.index), index=sessions)
    weights = weights.reindex(index=sessions, columns=symbols).fillna(0.0)
    market = {k: v.reindex(index=sessions, columns=symbols) for k, v in market.items()}
    rules = EngineRules.from_params(params)
    alpha = (band_alpha(scores, market["daily_vol"], params.portfolio.rebalance.expected_ic,
                        params.features.label_horizon) if rules.band else None)
    return simulate(weights, market, CostModel.from_params(params.broker),
                    initial_cash=params.broker.initial_cash if initial_cash is None
                    else initial_cash,
                    sessions_per_year=sessions_per_year(params.data.calendar), rules=rules,
                    alpha=alpha, decide=decide,
                    last_close=history.ffill().iloc[-1] if len(history) else None)
