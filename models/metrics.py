"""Signal and strategy metrics: IC, rank IC, long-short returns, PSR and DSR.

Sharpe ratios here are per period (not annualized) unless the name says otherwise, because
PSR and DSR are defined on the per-period estimate and its sample length.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

EULER_GAMMA = 0.5772156649015329
PERIODS_PER_YEAR = 252


def _per_date(frame: pd.DataFrame, fn) -> pd.Series:
    return frame.groupby("date", sort=True).apply(fn, include_groups=False).dropna()


def daily_ic(frame: pd.DataFrame, rank: bool = False) -> pd.Series:
    """Per-date correlation of ``score`` with ``label`` (Spearman when ``rank``)."""
    def ic(g: pd.DataFrame) -> float:
        if len(g) < 3:
            return np.nan
        s, y = (g["score"].rank(), g["label"].rank()) if rank else (g["score"], g["label"])
        if s.std() == 0 or y.std() == 0:
            return np.nan
        return float(np.corrcoef(s, y)[0, 1])
    return _per_date(frame.dropna(subset=["score", "label"]), ic)


def book_weights(frame: pd.DataFrame, quantile: float) -> pd.Series:
    """Per (date, symbol) weight of the dollar-neutral research book: +0.5/n on the top and
    -0.5/n on the bottom ``quantile`` of each date's scores (gross 1)."""
    f = frame.dropna(subset=["score", "label"])
    ranks = f.groupby("date")["score"].rank(method="first")
    count = f.groupby("date")["score"].transform("size")
    n = np.maximum(np.floor(count * quantile), 1)
    w = 0.5 / n * ((ranks > count - n).astype(float) - (ranks <= n).astype(float))
    return pd.Series(w.to_numpy(), index=pd.MultiIndex.from_arrays(
        [f["date"].to_numpy(), f["symbol"].to_numpy() if "symbol" in f else f.index.to_numpy()],
        names=["date", "symbol"]))


def long_short_returns(frame: pd.DataFrame, quantile: float, horizon: int = 1) -> pd.Series:
    """Per-date return of a dollar-neutral book: long the top, short the bottom quantile.

    With ``horizon > 1`` labels overlap; every ``horizon``-th date is kept so that the
    returns are non-overlapping.
    """
    f = frame.dropna(subset=["score", "label"])
    w = book_weights(f, quantile)
    returns = (w * f["label"].to_numpy()).groupby(level="date").sum()
    returns = returns[f.groupby("date").size().reindex(returns.index) >= 2]
    return returns.iloc[::horizon]


def turnover(frame: pd.DataFrame, quantile: float, horizon: int = 1) -> pd.Series:
    """One-way turnover of the research book at each rebalance (every ``horizon``-th date):
    the sum of |weight change|; the first rebalance counts the entry."""
    w = book_weights(frame, quantile).unstack("symbol", fill_value=0.0).sort_index()
    w = w.iloc[::horizon]
    if w.empty:
        return pd.Series(dtype="float64")
    traded = w.diff().abs().sum(axis=1)
    traded.iloc[0] = w.iloc[0].abs().sum()
    return traded


def net_long_short_returns(frame: pd.DataFrame, quantile: float, horizon: int,
                           cost_per_turnover: float) -> pd.Series:
    """Long-short returns less ``cost_per_turnover`` (fraction of traded notional)."""
    gross = long_short_returns(frame, quantile, horizon)
    cost = turnover(frame, quantile, horizon).reindex(gross.index).fillna(0.0)
    return gross - cost * cost_per_turnover


def sharpe(returns: pd.Series | np.ndarray) -> float:
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    if len(r) < 2 or r.std(ddof=1) == 0:
        return 0.0
    return float(r.mean() / r.std(ddof=1))


def probabilistic_sharpe(sr: float, n_obs: int, skew: float, kurtosis: float,
                         benchmark_sr: float = 0.0) -> float:
    """P(true Sharpe > benchmark) given the estimate's length, skew and (raw) kurtosis.

    Bailey & López de Prado (2012): z = (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2).
    """
    if n_obs < 2:
        return 0.0
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if denom <= 0:
        return 0.0
    return float(stats.norm.cdf((sr - benchmark_sr) * math.sqrt(n_obs - 1) / math.sqrt(denom)))


def expected_max_sharpe(trial_sharpe_variance: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates with zero true Sharpe."""
    if n_trials <= 1 or trial_sharpe_variance <= 0:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(trial_sharpe_variance) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(returns: pd.Series | np.ndarray, trial_sharpes: list[float],
                    n_trials: int) -> float:
    """PSR against the Sharpe that the best of ``n_trials`` pure-noise trials would show.

    Bailey & López de Prado (2014). ``trial_sharpes`` are the per-period Sharpe estimates of
    the trials (their variance sets the scale); ``n_trials`` counts every trial tried.
    """
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    if len(r) < 3:
        return 0.0
    variance = float(np.var(trial_sharpes, ddof=1)) if len(trial_sharpes) > 1 else 0.0
    sr0 = expected_max_sharpe(variance, n_trials)
    return probabilistic_sharpe(sharpe(r), len(r), float(stats.skew(r)),
                                float(stats.kurtosis(r, fisher=False)), sr0)


def summarize(frame: pd.DataFrame, quantile: float, horizon: int,
              cost_per_turnover: float = 0.0) -> dict[str, float]:
    """Out-of-sample figures for one set of predictions (``date, symbol, score, label``)."""
    ic = daily_ic(frame)
    ric = daily_ic(frame, rank=True)
    ls = long_short_returns(frame, quantile, horizon)
    sr = sharpe(ls)
    per_year = PERIODS_PER_YEAR / horizon
    return {
        "ic": float(ic.mean()) if len(ic) else 0.0,
        "rank_ic": float(ric.mean()) if len(ric) else 0.0,
        "icir": float(ric.mean() / ric.std()) if len(ric) > 1 and ric.std() > 0 else 0.0,
        "hit_rate": float((ric > 0).mean()) if len(ric) else 0.0,
        "sharpe": sr,
        "sharpe_annualized": sr * math.sqrt(per_year),
        "n_periods": len(ls),
        **({"turnover": float(turnover(frame, quantile, horizon).mean()),
            "sharpe_net_annualized": sharpe(net_long_short_returns(
                frame, quantile, horizon, cost_per_turnover)) * math.sqrt(per_year)}
           if "symbol" in frame else {}),
    }


def fold_metrics(oos: pd.DataFrame, quantile: float, horizon: int,
                 cost_per_turnover: float) -> pd.DataFrame:
    """One row per ``fold`` of out-of-sample predictions: IC, rank IC, ICIR, hit rate (share
    of dates with a positive rank IC), turnover, and the long-short Sharpe after costs."""
    rows = []
    for fold, part in oos.groupby("fold", sort=True):
        ric = daily_ic(part, rank=True)
        net = net_long_short_returns(part, quantile, horizon, cost_per_turnover)
        rows.append({
            "fold": int(fold), "start": part["date"].min(), "end": part["date"].max(),
            "ic": float(daily_ic(part).mean()), "rank_ic": float(ric.mean()),
            "icir": float(ric.mean() / ric.std()) if len(ric) > 1 and ric.std() > 0 else 0.0,
            "hit_rate": float((ric > 0).mean()) if len(ric) else 0.0,
            "turnover": float(turnover(part, quantile, horizon).mean()),
            "sharpe_net": sharpe(net) * math.sqrt(PERIODS_PER_YEAR / horizon),
        })
    return pd.DataFrame(rows)


def mean_rank_ic(score: np.ndarray, label: np.ndarray, dates: np.ndarray) -> float:
    """Mean over dates of the Spearman correlation, vectorized (no per-date Python loop)."""
    f = pd.DataFrame({"d": np.asarray(dates), "s": np.asarray(score, dtype="float64"),
                      "y": np.asarray(label, dtype="float64")}).dropna()
    g = f.groupby("d")
    rs, ry = g["s"].rank(), g["y"].rank()
    rs = rs - rs.groupby(f["d"]).transform("mean")
    ry = ry - ry.groupby(f["d"]).transform("mean")
    cov = (rs * ry).groupby(f["d"]).sum()
    den = np.sqrt((rs**2).groupby(f["d"]).sum() * (ry**2).groupby(f["d"]).sum())
    ic = (cov / den.where(den > 0)).where(g.size() >= 3).dropna()
    return float(ic.mean()) if len(ic) else 0.0


def sized_weights(size: pd.Series, dates: np.ndarray, gross: float = 1.0) -> pd.Series:
    """Weights proportional to signed bet sizes, each leg ``gross / 2``; a date without
    both a long and a short leg holds nothing (the book stays dollar-neutral)."""
    s = pd.Series(np.asarray(size, dtype="float64"), index=size.index if
                  isinstance(size, pd.Series) else None).fillna(0.0)
    keys = np.asarray(dates)
    longs = s.clip(lower=0)
    shorts = (-s).clip(lower=0)
    long_sum = longs.groupby(keys).transform("sum")
    short_sum = shorts.groupby(keys).transform("sum")
    both = (long_sum > 0) & (short_sum > 0)
    w = gross / 2 * (longs / long_sum.where(both) - shorts / short_sum.where(both))
    return w.fillna(0.0)


def sized_long_short_returns(frame: pd.DataFrame, horizon: int = 1) -> pd.Series:
    """Per-date return of the book sized by ``size`` (meta-labeled bets)."""
    f = frame.dropna(subset=["label"]).reset_index(drop=True)
    w = sized_weights(f["size"], f["date"].to_numpy())
    returns = (w * f["label"]).groupby(f["date"].to_numpy()).sum().sort_index()
    return returns.iloc[::horizon]
