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


def long_short_returns(frame: pd.DataFrame, quantile: float, horizon: int = 1) -> pd.Series:
    """Per-date return of a dollar-neutral book: long the top, short the bottom quantile.

    With ``horizon > 1`` labels overlap; every ``horizon``-th date is kept so that the
    returns are non-overlapping.
    """
    def ls(g: pd.DataFrame) -> float:
        n = max(int(len(g) * quantile), 1)
        ordered = g.sort_values("score")
        return 0.5 * (ordered["label"].iloc[-n:].mean() - ordered["label"].iloc[:n].mean())
    returns = _per_date(frame.dropna(subset=["score", "label"]), ls)
    return returns.iloc[::horizon]


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


def summarize(frame: pd.DataFrame, quantile: float, horizon: int) -> dict[str, float]:
    """Out-of-sample figures for one set of predictions (``date, score, label``)."""
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
    }
