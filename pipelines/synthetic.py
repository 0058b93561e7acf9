"""A synthetic equity market with a documented, planted alpha.

Each symbol's daily log return is

    r[s, i] = beta_i * m[s] + sigma[s, i] * (k * signal[s - 2, i] + sqrt(1 - k^2) * e[s, i])

- ``m`` is a market factor with GARCH(1,1) volatility and Student-t(4) shocks;
- ``sigma`` is each symbol's own GARCH(1,1) volatility (volatility clustering), ``e`` Student-t(4);
- ``signal[t]`` is computed from what is observable at the close of day ``t`` only:
  the cross-sectional z-score of ``-ret_5`` (five-day reversal) plus half the z-score of
  ``-ret_1 * volume_z_20`` (high-volume moves revert), re-standardized across symbols;
- the signal is winsorized at ±3 and volatility follows the noise shocks alone, so the
  signal cannot feed back into volatility; variance is capped at 2.5² times its base and a
  day's log return at ±0.4, so no bar looks like an unrecorded split;
- ``k`` is ``alpha_strength``; the signal moves the return of day ``t + 2``, which is the
  return a decision at the close of ``t`` earns when it trades at the close of ``t + 1``
  (the default label with ``h = 1``). In ``noise`` mode ``k = 0``, and after ``alpha_until``
  (a planted regime change) too: the signal is still computed, it just no longer pays.

Every component draws from its own random stream spawned from the seed, so a longer
history has the same prefix: the daily flow can ask for one more day and get the same past.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from alphaline.calendar import sessions

_DF = 4.0  # Student-t degrees of freedom: fat tails
_T_SCALE = np.sqrt(_DF / (_DF - 2.0))  # unit variance
_GARCH_A, _GARCH_B = 0.08, 0.90
_WARMUP = 20  # days before the signal starts to act
_VAR_CAP = 2.5**2  # GARCH variance stays below (2.5 x base volatility)^2
_MAX_LOG_RET = 0.4  # |one-day move| < 49 %: never looks like an unrecorded split


def _cs_z(x: np.ndarray) -> np.ndarray:
    mu = np.nanmean(x)
    sd = np.nanstd(x)
    return np.zeros_like(x) if not np.isfinite(sd) or sd == 0 else (x - mu) / sd


def symbols(n: int) -> list[str]:
    return [f"SYN{i:03d}" for i in range(n)]


def generate_market(
    n_symbols: int,
    start: dt.date | str,
    end: dt.date | str,
    seed: int,
    alpha_strength: float = 0.1,
    mode: str = "alpha",
    calendar: str = "XNYS",
    alpha_until: dt.date | str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(bars, signal)``: OHLCV bars and the planted signal known at each close."""
    dates = sessions(calendar, start, end)
    t_len, n = len(dates), n_symbols
    k_on = 0.0 if mode == "noise" else float(alpha_strength)
    k_by_day = np.full(t_len, k_on)
    if alpha_until is not None:
        k_by_day[dates > pd.Timestamp(alpha_until)] = 0.0
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_static, rng_mkt, rng_idio, rng_vol, rng_bar, rng_price = streams

    beta = rng_static.uniform(0.6, 1.4, n)
    base_vol = rng_static.uniform(0.012, 0.028, n)
    base_volume = np.exp(rng_static.uniform(np.log(2e5), np.log(5e6), n))
    first_close = np.exp(rng_price.uniform(np.log(15.0), np.log(250.0), n))

    # Shocks are truncated at 6 sd so that no synthetic day looks like an unrecorded split.
    mkt_shock = np.clip(rng_mkt.standard_t(_DF, size=t_len) / _T_SCALE, -6, 6)
    idio_shock = np.clip(rng_idio.standard_t(_DF, size=(t_len, n)) / _T_SCALE, -6, 6)
    volume_noise = rng_vol.normal(0.0, 1.0, size=(t_len, n))
    bar_noise = rng_bar.normal(0.0, 1.0, size=(t_len, n, 3))

    log_ret = np.zeros((t_len, n))
    log_vol = np.zeros((t_len, n))
    signal = np.full((t_len, n), np.nan)
    var_i = base_vol**2
    var_m = 0.009**2
    omega_i = base_vol**2 * (1 - _GARCH_A - _GARCH_B)
    omega_m = 0.009**2 * (1 - _GARCH_A - _GARCH_B)
    prev_eps_i = np.zeros(n)
    prev_eps_m = 0.0
    vol_ar = np.zeros(n)
    for s in range(t_len):
        var_m = min(omega_m + _GARCH_A * prev_eps_m**2 + _GARCH_B * var_m, _VAR_CAP * 0.009**2)
        var_i = np.minimum(omega_i + _GARCH_A * prev_eps_i**2 + _GARCH_B * var_i,
                           _VAR_CAP * base_vol**2)
        m = np.sqrt(var_m) * mkt_shock[s]
        planted = signal[s - 2] if s >= 2 and np.isfinite(signal[s - 2]).all() else np.zeros(n)
        noise = np.sqrt(var_i) * idio_shock[s]
        k = k_by_day[s]
        eps = k * np.sqrt(var_i) * planted + np.sqrt(1.0 - k**2) * noise
        log_ret[s] = np.clip(beta * m + eps, -_MAX_LOG_RET, _MAX_LOG_RET)
        # Volatility follows the noise alone, so the signal cannot feed back into it.
        prev_eps_i, prev_eps_m = noise, m
        vol_ar = 0.7 * vol_ar + 0.5 * volume_noise[s]
        log_vol[s] = np.log(base_volume) + vol_ar + 0.35 * np.abs(eps) / np.sqrt(var_i)
        if s >= _WARMUP:
            ret_5 = log_ret[s - 4 : s + 1].sum(axis=0)
            window = log_vol[s - 19 : s + 1]
            volume_z = (log_vol[s] - window.mean(axis=0)) / (window.std(axis=0) + 1e-12)
            raw = _cs_z(_cs_z(-ret_5) + 0.5 * _cs_z(-log_ret[s] * volume_z))
            signal[s] = np.clip(raw, -3.0, 3.0)  # winsorized: no single name dominates

    close = first_close * np.exp(np.cumsum(log_ret, axis=0))
    prev_close = np.vstack([first_close, close[:-1]])
    day_vol = base_vol * 1.2
    open_ = prev_close * np.exp(0.3 * log_ret + 0.15 * day_vol * bar_noise[:, :, 0])
    high = np.maximum(open_, close) * np.exp(0.5 * day_vol * np.abs(bar_noise[:, :, 1]))
    low = np.minimum(open_, close) * np.exp(-0.5 * day_vol * np.abs(bar_noise[:, :, 2]))
    volume = np.round(np.exp(log_vol))

    names = symbols(n)
    index = pd.MultiIndex.from_product([dates, names], names=["date", "symbol"])
    bars = pd.DataFrame(
        {
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel().astype("float64"),
        },
        index=index,
    ).reset_index()
    bars = bars[["symbol", "date", "open", "high", "low", "close", "volume"]]
    bars = bars.sort_values(["symbol", "date"], ignore_index=True)
    planted = pd.DataFrame({"signal": signal.ravel()}, index=index).reset_index()
    return bars, planted.sort_values(["symbol", "date"], ignore_index=True)


def oracle_ic(signal: pd.DataFrame, labels: pd.DataFrame) -> float:
    """Mean daily rank IC of the planted signal against the labels: the best any model can do."""
    joined = signal.merge(labels, on=["symbol", "date"]).dropna()
    if joined.empty:
        return float("nan")
    ics = joined.groupby("date").apply(
        lambda g: g["signal"].rank().corr(g["label"].rank()), include_groups=False
    )
    return float(ics.mean())


def oracle_book_returns(signal: pd.DataFrame, market: dict[str, pd.DataFrame], params,
                        sessions: pd.DatetimeIndex) -> pd.Series:
    """Daily after-cost returns of the book that trades the planted signal itself, through
    the one book, the rebalance rules and every cost the paper broker charges, deciding on
    ``sessions`` (a model's scored sessions: the oracle to hold its after-cost Sharpe to)."""
    from alphaline.trading.backtest.baselines import nav_returns
    from alphaline.trading.backtest.vectorized import book_backtest

    scores = signal.dropna().rename(columns={"signal": "score"})
    scores = scores[scores["date"].isin(sessions)]
    last = sessions.max()
    run = book_backtest(scores[["date", "symbol", "score"]],
                        {k: v.loc[v.index <= last] for k, v in market.items()}, params)
    return nav_returns(run.daily["nav"], params.broker.initial_cash)
