"""Figures of a daily returns series: the standard ones from empyrical, PSR/DSR from
:mod:`alphaline.models.metrics`, and stationary-bootstrap bands from ``arch``.

Standard statistics come from a maintained library rather than formulas written here, so
a report's Sharpe is the one anyone else would compute from the same returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import empyrical as ep
import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap, optimal_block_length
from scipy import stats as sps

from alphaline.models.metrics import deflated_sharpe, probabilistic_sharpe
from alphaline.models.metrics import sharpe as per_period_sharpe

SESSIONS_PER_YEAR = 252


def headline(returns: pd.Series, periods: int = SESSIONS_PER_YEAR) -> dict[str, float]:
    """CAGR, annualized Sharpe, Sortino and volatility, max drawdown, Calmar, total return."""
    r = returns.dropna()
    if len(r) < 2:
        return {k: float("nan") for k in ("cagr", "sharpe", "sortino", "volatility",
                                          "max_drawdown", "calmar", "total_return")}
    return {
        "cagr": float(ep.cagr(r, annualization=periods)),
        "sharpe": float(ep.sharpe_ratio(r, annualization=periods)),
        "sortino": float(ep.sortino_ratio(r, annualization=periods)),
        "volatility": float(ep.annual_volatility(r, annualization=periods)),
        "max_drawdown": float(ep.max_drawdown(r)),
        "calmar": float(ep.calmar_ratio(r, annualization=periods)),
        "total_return": float(ep.cum_returns_final(r)),
    }


def psr(returns: pd.Series) -> float:
    """P(true Sharpe > 0) from the per-period estimate, its length, skew and raw kurtosis."""
    r = returns.dropna().to_numpy(dtype="float64")
    if len(r) < 3:
        return float("nan")
    return probabilistic_sharpe(per_period_sharpe(r), len(r), float(sps.skew(r)),
                                float(sps.kurtosis(r, fisher=False)))


def dsr(returns: pd.Series, given: dict | None) -> float | None:
    """The deflated Sharpe: ``given["deflated_sharpe"]`` as the training measured it, or
    computed here from ``given["trial_sharpes"]`` and ``given["n_trials"]``; None without."""
    if not given:
        return None
    if "deflated_sharpe" in given:
        return float(given["deflated_sharpe"])
    if "trial_sharpes" in given and "n_trials" in given:
        return deflated_sharpe(returns.dropna(), list(given["trial_sharpes"]),
                               int(given["n_trials"]))
    raise ValueError("dsr: give 'deflated_sharpe', or 'trial_sharpes' and 'n_trials'; got "
                     f"{sorted(given)}")


def drawdown(returns: pd.Series) -> pd.Series:
    """Underwater curve: wealth over its running peak, minus one (≤ 0)."""
    wealth = ep.cum_returns(returns.fillna(0.0), starting_value=1.0)
    return wealth / np.maximum.accumulate(np.maximum(wealth, 1.0)) - 1.0


def rolling(returns: pd.Series, window: int, periods: int = SESSIONS_PER_YEAR) -> pd.DataFrame:
    """Rolling annualized Sharpe, Sortino and volatility over ``window`` sessions."""
    r = returns.fillna(0.0)
    return pd.DataFrame({
        "sharpe": ep.roll_sharpe_ratio(r, window=window, annualization=periods),
        "sortino": ep.roll_sortino_ratio(r, window=window, annualization=periods),
        "volatility": ep.roll_annual_volatility(r, window=window, annualization=periods),
    }, index=r.index).iloc[window - 1:]


def monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each month: years × months 1–12 (NaN where no session)."""
    m = ep.aggregate_returns(returns.fillna(0.0), "monthly")
    table = m.unstack()
    return table.reindex(columns=range(1, 13))


def yearly_table(columns: dict[str, pd.Series], periods: int = SESSIONS_PER_YEAR
                 ) -> pd.DataFrame:
    """Per calendar year and series: compounded return, Sharpe, max drawdown."""
    rows = []
    for name, r in columns.items():
        r = r.dropna()
        for year, part in r.groupby(r.index.year):
            rows.append({"year": int(year), "series": name,
                         "return": float(ep.cum_returns_final(part)),
                         "sharpe": float(ep.sharpe_ratio(part, annualization=periods))
                         if len(part) > 2 else float("nan"),
                         "max_drawdown": float(ep.max_drawdown(part))})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    wide = frame.pivot(index="year", columns="series")
    wide.columns = [f"{series} {figure}" for figure, series in wide.columns]
    order = [f"{s} {f}" for s in columns for f in ("return", "sharpe", "max_drawdown")]
    return wide[[c for c in order if c in wide.columns]]


def path_figures(x: np.ndarray, periods: int = SESSIONS_PER_YEAR) -> np.ndarray:
    """Annualized Sharpe, CAGR and max drawdown of one path, in plain numpy because the
    bootstrap calls it hundreds of times (a test holds it to empyrical's figures)."""
    wealth = np.cumprod(1.0 + x)
    sd = x.std(ddof=1)
    years = len(x) / periods
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return np.array([
        x.mean() / sd * np.sqrt(periods) if sd > 0 else 0.0,
        wealth[-1] ** (1.0 / years) - 1.0 if wealth[-1] > 0 else -1.0,
        float((wealth / peak - 1.0).min()),
    ])


@dataclass(frozen=True)
class BootstrapBands:
    """Stationary-bootstrap draws of Sharpe, CAGR and max drawdown, with the block length."""

    draws: pd.DataFrame  # reps × {sharpe, cagr, max_drawdown}
    block_length: float
    observed: dict[str, float]

    def band(self, low: float = 0.05, high: float = 0.95) -> pd.DataFrame:
        """Per figure: observed, the low/median/high quantiles of the draws."""
        q = self.draws.quantile([low, 0.5, high]).T
        q.columns = [f"p{round(low * 100)}", "median", f"p{round(high * 100)}"]
        q.insert(0, "observed", pd.Series(self.observed))
        return q


def bootstrap_bands(returns: pd.Series, reps: int = 500, seed: int = 0,
                    periods: int = SESSIONS_PER_YEAR) -> BootstrapBands:
    """Resample the returns in blocks of random length (Politis & Romano), the mean block
    length chosen by Politis & White's rule, and recompute the three figures on each path.

    Blocks keep the serial dependence (volatility clusters, autocorrelated P&L) that an
    i.i.d. resample would destroy, so the bands are not too narrow.
    """
    r = returns.dropna().to_numpy(dtype="float64")
    if len(r) < 10:
        raise ValueError(f"bootstrap_bands: {len(r)} returns; at least 10 are needed")
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat series has no autocorrelation
        block = float(optimal_block_length(r)["stationary"].iloc[0])
    block = max(1.0, block) if np.isfinite(block) else 1.0

    bs = StationaryBootstrap(block, r, seed=np.random.default_rng(seed))
    draws = pd.DataFrame(bs.apply(path_figures, reps, {"periods": periods}),
                         columns=["sharpe", "cagr", "max_drawdown"])
    h = headline(pd.Series(r))
    observed = {k: h[k] for k in ("sharpe", "cagr", "max_drawdown")}
    return BootstrapBands(draws, block, observed)
