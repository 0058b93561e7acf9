"""Every signal and strategy figure: IC, rank IC, ICIR, book returns and turnover, Sharpe and
Sortino, PSR and DSR. The one place these are computed.

Sharpe ratios are per period unless the name says otherwise, because PSR and DSR are defined
on the per-period estimate and its sample length; :func:`annualize` scales one with the
calendar's sessions per year (:func:`alphaline.calendar.sessions_per_year`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from alphaline.trading.costs import ResearchCosts, book_costs
from alphaline.trading.portfolio import long_short_weights, sized_long_short_weights

EULER_GAMMA = 0.5772156649015329


def ic_series(score: ArrayLike, label: ArrayLike, dates: ArrayLike, *, rank: bool = True
              ) -> pd.Series:
    """Per-date correlation of score with label (Spearman when ``rank``), vectorized.

    A date with fewer than three scored rows, or a constant score or label, has no IC.
    """
    f = pd.DataFrame({"d": np.asarray(dates), "s": np.asarray(score, dtype="float64"),
                      "y": np.asarray(label, dtype="float64")}).dropna()
    g = f.groupby("d", sort=True)
    s, y = (g["s"].rank(), g["y"].rank()) if rank else (f["s"], f["y"])
    s = s - s.groupby(f["d"]).transform("mean")
    y = y - y.groupby(f["d"]).transform("mean")
    cov = (s * y).groupby(f["d"]).sum()
    den = np.sqrt((s**2).groupby(f["d"]).sum() * (y**2).groupby(f["d"]).sum())
    ic = (cov / den.where(den > 1e-300)).where(g.size() >= 3)
    return ic.dropna().rename_axis("date")


def daily_ic(frame: pd.DataFrame, rank: bool = False) -> pd.Series:
    """:func:`ic_series` of a ``date, score, label`` frame."""
    return ic_series(frame["score"], frame["label"], frame["date"], rank=rank)


def mean_rank_ic(score: ArrayLike, label: ArrayLike, dates: ArrayLike) -> float:
    ic = ic_series(score, label, dates, rank=True)
    return float(ic.mean()) if len(ic) else 0.0


def icir(ics: pd.Series) -> float:
    """Mean IC over its standard deviation (per period)."""
    return float(ics.mean() / ics.std()) if len(ics) > 1 and ics.std() > 0 else 0.0


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.dropna(subset=["score", "label"]).reset_index(drop=True)


def book_weights(frame: pd.DataFrame, quantile: float, gross: float = 1.0,
                 max_weight: float = 1.0) -> pd.Series:
    """Per-row weights of :func:`alphaline.trading.portfolio.long_short_weights` over each
    date of a ``date, score, label`` frame (rows without a score or label hold nothing)."""
    f = _scored(frame)
    return long_short_weights(f["score"], quantile, gross, max_weight, f["date"].to_numpy())


def _book_returns(f: pd.DataFrame, weights: pd.Series, horizon: int) -> pd.Series:
    returns = (weights * f["label"]).groupby(f["date"].to_numpy()).sum().sort_index()
    returns = returns[f.groupby("date").size().reindex(returns.index) >= 2]
    return returns.iloc[::horizon]


def long_short_returns(frame: pd.DataFrame, quantile: float, horizon: int = 1,
                       gross: float = 1.0, max_weight: float = 1.0) -> pd.Series:
    """Per-date return of the book (long the top, short the bottom ``quantile``).

    With ``horizon > 1`` labels overlap; every ``horizon``-th date is kept so that the
    returns are non-overlapping.
    """
    f = _scored(frame)
    w = long_short_weights(f["score"], quantile, gross, max_weight, f["date"].to_numpy())
    return _book_returns(f, w, horizon)


def sized_long_short_returns(frame: pd.DataFrame, horizon: int = 1, gross: float = 1.0,
                             max_weight: float = 1.0) -> pd.Series:
    """Per-date return of the book sized by ``size`` (meta-labeled bets)."""
    f = frame.dropna(subset=["label"]).reset_index(drop=True)
    w = sized_long_short_weights(f["size"], gross, max_weight, f["date"].to_numpy())
    return _book_returns(f, w, horizon)


def rebalanced_book(frame: pd.DataFrame, quantile: float, horizon: int = 1,
                    gross: float = 1.0, max_weight: float = 1.0) -> pd.DataFrame:
    """The book held at each rebalance (every ``horizon``-th date): dates × symbols."""
    f = _scored(frame)
    symbol = f["symbol"] if "symbol" in f else pd.Series(f.index)
    w = pd.Series(book_weights(f, quantile, gross, max_weight).to_numpy(),
                  index=pd.MultiIndex.from_arrays([f["date"].to_numpy(), symbol.to_numpy()],
                                                  names=["date", "symbol"]))
    return w.unstack("symbol", fill_value=0.0).sort_index().iloc[::horizon]


def turnover(frame: pd.DataFrame, quantile: float, horizon: int = 1, gross: float = 1.0,
             max_weight: float = 1.0) -> pd.Series:
    """One-way turnover of the book at each rebalance (every ``horizon``-th date): the sum
    of |weight change|; the first rebalance counts the entry."""
    w = rebalanced_book(frame, quantile, horizon, gross, max_weight)
    if w.empty:
        return pd.Series(dtype="float64")
    traded = w.diff().abs().sum(axis=1)
    traded.iloc[0] = w.iloc[0].abs().sum()
    return traded


def net_long_short_returns(frame: pd.DataFrame, quantile: float, horizon: int,
                           costs: ResearchCosts | None, gross: float = 1.0,
                           max_weight: float = 1.0) -> pd.Series:
    """Long-short returns less what :mod:`alphaline.trading.costs` charges the same book
    (commission, half spread, impact, borrow; as a fraction of ``costs.nav``); ``costs``
    None: before costs."""
    returns = long_short_returns(frame, quantile, horizon, gross, max_weight)
    if costs is None:
        return returns
    charged = book_costs(rebalanced_book(frame, quantile, horizon, gross, max_weight), costs,
                         sessions_held=horizon)
    return returns - charged.reindex(returns.index).fillna(0.0)


def sharpe(returns: ArrayLike) -> float:
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    if len(r) < 2 or r.std(ddof=1) == 0:
        return 0.0
    return float(r.mean() / r.std(ddof=1))


def sortino(returns: ArrayLike) -> float:
    """Mean over downside deviation (root mean square of the negative returns), per period."""
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if len(r) else 0.0
    return float(r.mean() / downside) if len(r) > 1 and downside > 0 else 0.0


def annualize(ratio: float, periods_per_year: float) -> float:
    """A per-period Sharpe or Sortino ratio on a yearly scale."""
    return ratio * math.sqrt(periods_per_year)


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


def summarize(frame: pd.DataFrame, quantile: float, horizon: int, sessions_per_year: float,
              costs: ResearchCosts | None = None, gross: float = 1.0, max_weight: float = 1.0
              ) -> dict[str, float]:
    """Out-of-sample figures for one set of predictions (``date, symbol, score, label``)."""
    ic = daily_ic(frame)
    ric = daily_ic(frame, rank=True)
    ls = long_short_returns(frame, quantile, horizon, gross, max_weight)
    sr = sharpe(ls)
    per_year = sessions_per_year / horizon
    return {
        "ic": float(ic.mean()) if len(ic) else 0.0,
        "rank_ic": float(ric.mean()) if len(ric) else 0.0,
        "icir": icir(ric),
        "hit_rate": float((ric > 0).mean()) if len(ric) else 0.0,
        "sharpe": sr,
        "sharpe_annualized": annualize(sr, per_year),
        "sortino_annualized": annualize(sortino(ls), per_year),
        "n_periods": len(ls),
        **({"turnover": float(turnover(frame, quantile, horizon, gross, max_weight).mean()),
            "sharpe_net_annualized": annualize(sharpe(net_long_short_returns(
                frame, quantile, horizon, costs, gross, max_weight)), per_year)}
           if "symbol" in frame else {}),
    }


def fold_metrics(oos: pd.DataFrame, quantile: float, horizon: int, sessions_per_year: float,
                 costs: ResearchCosts | None, gross: float = 1.0, max_weight: float = 1.0
                 ) -> pd.DataFrame:
    """One row per ``fold`` of out-of-sample predictions: IC, rank IC, ICIR, hit rate (share
    of dates with a positive rank IC), turnover, and the long-short Sharpe after costs."""
    rows = []
    for fold, part in oos.groupby("fold", sort=True):
        ric = daily_ic(part, rank=True)
        net = net_long_short_returns(part, quantile, horizon, costs, gross, max_weight)
        rows.append({
            "fold": int(fold), "start": part["date"].min(), "end": part["date"].max(),
            "ic": float(daily_ic(part).mean()), "rank_ic": float(ric.mean()),
            "icir": icir(ric), "hit_rate": float((ric > 0).mean()) if len(ric) else 0.0,
            "turnover": float(turnover(part, quantile, horizon, gross, max_weight).mean()),
            "sharpe_net": annualize(sharpe(net), sessions_per_year / horizon),
        })
    return pd.DataFrame(rows)
