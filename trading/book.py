"""The one book builder: scores (and meta-label sizes) → target weights, from ``portfolio:``.

:func:`build_book` is the only entry point; walk-forward metrics, the gate, the backtest and
the daily flow call it (or, for the research panel, the vectorized
:func:`alphaline.trading.portfolio.leg_weights` it is built on). Steps, in order:

1. **sides and strengths** by ``portfolio.method``: ``quantile_long_short`` (+1 for a
   date's top ``quantile``, -1 for its bottom), ``long_only_top_k`` (+1 for the ``top_k``
   best scores), ``meta_sized_long_short`` (the meta-labeler's signed bet size);
2. **within-leg weighting** by ``portfolio.weighting``: equal, or skfolio's inverse
   volatility, risk budgeting (risk parity) or hierarchical risk parity on a Ledoit-Wolf
   covariance of the last ``covariance_lookback`` sessions' returns;
3. **legs**: each leg scaled to ``gross / 2`` (long-only: ``min(gross, risk net limit)``),
   each name capped at the smaller of the two per-name limits and, with ``kelly_fraction``,
   at ``kelly_fraction × (2p − 1)`` of its meta-label probability ``p``; the heavier leg
   scaled down to the lighter;
4. **volatility target**: the whole book scaled down so that its forecast volatility
   (Ledoit-Wolf covariance, or GARCH forecasts with the sample correlation) is at most
   ``vol_target`` a year;
5. **neutrality**: with ``beta_neutral`` / ``sector_neutral``, each name is shrunk (never
   grown, never flipped) by the linear program that keeps the most gross while holding the
   book dollar-neutral, ``|Σ w β| ≤ max_beta_exposure`` and every sector's net within
   ``max_sector_net``;
6. **limits guard**: if rounding left any exposure a hair over a limit, the whole book is
   scaled by the smallest limit/exposure ratio, which every homogeneous limit survives.

So every book satisfies gross, net, per-name, sector and beta limits exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from alphaline.calendar import sessions_per_year
from alphaline.config import Params, PortfolioParams
from alphaline.errors import MissingPrerequisite
from alphaline.trading.portfolio import leg_weights, quantile_sides

# An exposure over its limit by more than float noise (sums over thousands of names) is
# scaled back to the limit; the risk engine's own tolerance (1e-9) is far wider.
_NOISE = 1e-12


@dataclass(frozen=True)
class BookLimits:
    """The exposures every built book stays within (fractions of NAV)."""

    gross: float  # target and cap of Σ|w|
    net: float  # |Σ w|
    name: float  # |w_i|
    sector: float  # |Σ_{i ∈ sector} w_i|, when the data carry sectors
    beta: float  # |Σ w_i β_i|, when the data carry betas

    @classmethod
    def from_params(cls, p: Params) -> BookLimits:
        """The smaller of the book's own caps and the risk engine's limits: the risk engine
        checks sector and beta exposure whenever the data carry them, neutral or not."""
        pf, risk = p.portfolio, p.risk
        return cls(gross=min(pf.gross_exposure, risk.max_gross_exposure),
                   net=risk.max_net_exposure,
                   name=min(pf.max_position_weight, risk.max_position_weight),
                   sector=min(pf.max_sector_net if pf.sector_neutral else math.inf,
                              risk.max_sector_exposure),
                   beta=min(pf.max_beta_exposure if pf.beta_neutral else math.inf,
                            risk.max_beta_exposure))


@dataclass(frozen=True)
class BookContext:
    """What the covariance-based steps read besides the scores.

    ``returns``: daily returns, sessions × symbols, up to the decision date (a panel's dates
    each take the rows up to themselves). ``sector``, ``beta`` and ``vol_forecast`` (daily
    GARCH forecast) are per symbol; a ``sector``, ``beta`` or ``garch_vol`` column in the
    scores wins over them.
    """

    returns: pd.DataFrame | None
    sector: pd.Series | None
    beta: pd.Series | None
    vol_forecast: pd.Series | None


NO_CONTEXT = BookContext(None, None, None, None)


def book_context(bars: pd.DataFrame, day: object, lookback: int,
                 vectors: pd.DataFrame | None = None) -> BookContext:
    """The context for ``day``'s book from the bars (``date, symbol, close`` [+ ``sector``])
    and the day's feature vectors (``symbol`` + ``garch_vol`` / ``beta_60`` when the risk set
    is selected)."""
    hist = bars[bars["date"] <= pd.Timestamp(day)]
    closes = hist.pivot_table(index="date", columns="symbol", values="close").sort_index()
    returns = closes.pct_change(fill_method=None).iloc[1:].tail(lookback)
    sector = (hist.groupby("symbol")["sector"].last() if "sector" in hist else None)
    beta = vol = None
    if vectors is not None:
        v = vectors.set_index("symbol")
        beta = v.get("beta_60")
        vol = v.get("garch_vol")
    return BookContext(returns, sector, beta, vol)


def _strengths(scores: pd.DataFrame, pf: PortfolioParams, dates: np.ndarray | None
               ) -> np.ndarray:
    """Signed strength per row: the side (or bet size) before any weighting."""
    if pf.method == "quantile_long_short":
        return quantile_sides(scores["score"], pf.quantile, dates).to_numpy(dtype="float64")
    if pf.method == "long_only_top_k":
        s = pd.Series(scores["score"].to_numpy(dtype="float64"))
        keys = np.zeros(len(s)) if dates is None else dates
        rank = s.groupby(keys).rank(method="first", ascending=False).to_numpy()
        return np.where(np.isfinite(s.to_numpy()) & (rank <= pf.top_k), 1.0, 0.0)
    if "size" not in scores:
        raise MissingPrerequisite("portfolio.method meta_sized_long_short needs the "
                                  "meta-labeler's bet sizes: set model.meta_label.enabled")
    return np.nan_to_num(scores["size"].to_numpy(dtype="float64"), nan=0.0)


def _caps(scores: pd.DataFrame, pf: PortfolioParams, limits: BookLimits) -> np.ndarray:
    """Per-name cap: the per-name limit, and the fractional-Kelly cap ``f × (2p − 1)`` of an
    even-odds bet won with probability ``p`` (a name with ``p ≤ 0.5`` gets nothing)."""
    cap = np.full(len(scores), limits.name)
    if pf.kelly_fraction is not None:
        if "probability" not in scores:
            raise MissingPrerequisite("portfolio.kelly_fraction needs meta-label "
                                      "probabilities: set model.meta_label.enabled")
        p = np.nan_to_num(scores["probability"].to_numpy(dtype="float64"), nan=0.0)
        cap = np.minimum(cap, pf.kelly_fraction * np.clip(2 * p - 1, 0, None))
    return cap


def _per_symbol(scores: pd.DataFrame, column: str, fallback: pd.Series | None
                ) -> np.ndarray | None:
    if column in scores:
        return scores[column].to_numpy()
    if fallback is None:
        return None
    return fallback.reindex(scores["symbol"]).to_numpy()


def _history(context: BookContext, day: object, symbols: list[str], lookback: int
             ) -> pd.DataFrame:
    if context.returns is None:
        raise MissingPrerequisite("this portfolio configuration needs a returns history "
                                  "(BookContext.returns) for its covariance estimate")
    r = context.returns
    if day is not None:
        r = r[r.index <= day]
    return r.reindex(columns=symbols).tail(lookback)


def _skfolio(weighting: str):
    from skfolio import RiskMeasure
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import HierarchicalRiskParity, InverseVolatility, RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    prior = EmpiricalPrior(covariance_estimator=LedoitWolf())
    if weighting == "inverse_volatility":
        return InverseVolatility(prior_estimator=prior)
    if weighting == "risk_parity":
        return RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior)
    return HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior)


def leg_allocation(returns: pd.DataFrame, weighting: str) -> np.ndarray:
    """skfolio's long-only allocation of one leg (weights summing to 1) from its names'
    returns. A name with under half the window of returns gets the leg's mean weight; a
    missing session inside the window counts as no move."""
    n = returns.shape[1]
    if weighting == "equal" or n < 2:
        return np.full(n, 1.0 / max(n, 1))
    enough = returns.notna().sum().to_numpy() >= max(len(returns) // 2, 2)
    w = np.full(n, np.nan)
    if enough.sum() >= 2:
        X = returns.loc[:, enough].fillna(0.0).to_numpy()
        w[enough] = _skfolio(weighting).fit(X).weights_
    elif enough.sum() == 1:
        w[enough] = 1.0
    w = np.where(np.isfinite(w), w, np.nanmean(w) if np.isfinite(w).any() else 1.0)
    return w / w.sum()


def _covariance(context: BookContext, day: object, symbols: list[str], lookback: int,
                garch: np.ndarray | None) -> np.ndarray:
    """Daily covariance of ``symbols``: skfolio's Ledoit-Wolf on the returns window; with
    GARCH forecasts, their volatilities with the window's correlation (or alone, uncorrelated,
    when there is no history)."""
    from skfolio.moments import LedoitWolf

    if garch is not None and context.returns is None:
        return np.diag(np.nan_to_num(garch.astype("float64"), nan=0.0) ** 2)
    r = _history(context, day, symbols, lookback).fillna(0.0)
    cov = LedoitWolf().fit(r.to_numpy()).covariance_
    if garch is None:
        return cov
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd).clip(min=1e-300)
    g = np.where(np.isfinite(garch.astype("float64")), garch.astype("float64"), sd)
    return corr * np.outer(g, g)


def neutralize(w: np.ndarray, *, net: float, beta: np.ndarray | None, max_beta: float | None,
               sector: np.ndarray | None, max_sector: float | None) -> np.ndarray:
    """Shrink each name by a factor in [0, 1] to keep the most gross while ``|Σ w| ≤ net``,
    ``|Σ w β| ≤ max_beta`` and each sector's ``|net| ≤ max_sector`` (a linear program:
    HiGHS through scipy). Scaling to zero is always feasible, so a book always results."""
    held = np.flatnonzero(w != 0)
    if len(held) == 0:
        return w
    a = w[held]
    rows, upper = [a, -a], [net, net]
    if max_beta is not None and beta is not None:
        b = a * beta[held].astype("float64")
        rows += [b, -b]
        upper += [max_beta, max_beta]
    if max_sector is not None and sector is not None:
        codes, _ = pd.factorize(sector[held])
        for k in range(codes.max() + 1):
            s = np.where(codes == k, a, 0.0)
            rows += [s, -s]
            upper += [max_sector, max_sector]
    res = linprog(-np.abs(a), A_ub=np.vstack(rows), b_ub=np.maximum(
        np.array(upper) * (1 - 1e-6), 0.0), bounds=(0.0, 1.0), method="highs")
    out = np.zeros_like(w)
    if res.status == 0:
        out[held] = a * np.clip(res.x, 0.0, 1.0)
    return out


def enforce_limits(w: np.ndarray, limits: BookLimits, dates: np.ndarray | None = None,
                   beta: np.ndarray | None = None, sector: np.ndarray | None = None
                   ) -> np.ndarray:
    """Scale each date's book by the smallest limit/exposure ratio when any exposure is over
    its limit: every limit is homogeneous, so the scaled book meets them all."""
    w = np.asarray(w, dtype="float64")
    codes, uniques = pd.factorize(np.zeros(len(w)) if dates is None else dates)
    n = len(uniques)

    def by_date(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=n)

    ratio = np.ones(n)

    def bound(exposure: np.ndarray, limit: float) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(exposure > limit + _NOISE, limit / exposure, 1.0)
        np.minimum(ratio, r, out=ratio)

    bound(by_date(np.abs(w)), limits.gross)
    bound(np.abs(by_date(w)), limits.net)
    top = np.zeros(n)
    np.maximum.at(top, codes, np.abs(w))
    bound(top, limits.name)
    if beta is not None:
        bound(np.abs(by_date(w * _betas(beta))), limits.beta)
    if sector is not None:
        keys = pd.factorize(pd.Series(list(zip(codes, _sectors(sector), strict=True))))[0]
        sector_net = np.abs(np.bincount(keys, weights=w))
        worst = np.zeros(n)
        np.maximum.at(worst, codes, sector_net[keys])
        bound(worst, limits.sector)
    return w * ratio[codes]


def _betas(beta: np.ndarray) -> np.ndarray:
    """A name without a beta counts as the market (β = 1), as the risk engine counts it."""
    b = pd.to_numeric(pd.Series(beta), errors="coerce").to_numpy(dtype="float64")
    return np.where(np.isfinite(b), b, 1.0)


def _sectors(sector: np.ndarray) -> np.ndarray:
    """A name without a sector is in the risk engine's ``(no sector)`` group."""
    return pd.Series(sector, dtype="object").where(pd.notna(sector), "(no sector)").to_numpy()


def _needs_per_date(pf: PortfolioParams, beta: np.ndarray | None, sector: np.ndarray | None
                    ) -> bool:
    return (pf.weighting != "equal" or pf.vol_target is not None or beta is not None
            or sector is not None)


def build_book(scores: pd.DataFrame, params: Params, context: BookContext = NO_CONTEXT
               ) -> pd.Series:
    """Target weights (fractions of NAV), one per row of ``scores``.

    ``scores``: ``symbol, score`` with optional ``date`` (a panel: one book per date),
    ``size`` and ``probability`` (meta-labeling), ``sector``, ``beta``, ``garch_vol``.
    Equal weighting without a volatility target or neutrality is vectorized over a panel;
    the covariance-based steps run date by date.
    """
    pf = params.portfolio
    limits = BookLimits.from_params(params)
    dates = scores["date"].to_numpy() if "date" in scores else None
    signed = _strengths(scores, pf, dates)
    cap = _caps(scores, pf, limits)
    long_total = limits.gross / 2
    short_total = limits.gross / 2
    if pf.method == "long_only_top_k":
        long_total, short_total = min(limits.gross, limits.net), 0.0
    beta = _per_symbol(scores, "beta", context.beta)
    sector = _per_symbol(scores, "sector", context.sector)
    if pf.beta_neutral and (beta is None or not np.isfinite(beta.astype("float64")).any()):
        raise MissingPrerequisite("portfolio.beta_neutral needs a beta per name (a beta "
                                  "column, or the risk feature set's beta_60)")
    if pf.sector_neutral and sector is None:
        raise MissingPrerequisite("portfolio.sector_neutral needs a sector per name (a "
                                  "sector column in the bars)")
    if pf.beta_neutral:  # a name without a beta cannot be neutralized: it is left out
        signed = np.where(np.isfinite(beta.astype("float64")), signed, 0.0)
    if pf.sector_neutral:
        signed = np.where(pd.notna(sector), signed, 0.0)

    if not _needs_per_date(pf, beta, sector):
        w = leg_weights(signed, long_total, short_total, cap, dates)
    else:
        w = np.zeros(len(scores))
        garch = _per_symbol(scores, "garch_vol", context.vol_forecast)
        keys = np.zeros(len(scores)) if dates is None else dates
        for day, rows in pd.Series(np.arange(len(scores))).groupby(keys).groups.items():
            idx = np.asarray(rows)
            when = None if dates is None else day
            w[idx] = _day_book(scores.iloc[idx], signed[idx], cap[idx], pf, limits, context,
                               when, long_total, short_total,
                               None if beta is None else beta[idx],
                               None if sector is None else sector[idx],
                               None if garch is None else garch[idx],
                               sessions_per_year(params.data.calendar))
    return pd.Series(enforce_limits(w, limits, dates, beta, sector), index=scores.index,
                     name="weight")


def _day_book(scores: pd.DataFrame, signed: np.ndarray, cap: np.ndarray, pf: PortfolioParams,
              limits: BookLimits, context: BookContext, day: object, long_total: float,
              short_total: float, beta: np.ndarray | None, sector: np.ndarray | None,
              garch: np.ndarray | None, per_year: float) -> np.ndarray:
    symbols = scores["symbol"].astype(str).to_numpy()
    if pf.weighting != "equal":
        for leg in (signed > 0, signed < 0):
            names = list(symbols[leg])
            if len(names) > 1:
                hist = _history(context, day, names, pf.covariance_lookback)
                signed[leg] = signed[leg] * leg_allocation(hist, pf.weighting) * len(names)
    w = leg_weights(signed, long_total, short_total, cap)
    if pf.vol_target is not None and (w != 0).any():
        held = np.flatnonzero(w)
        cov = _covariance(context, day, list(symbols[held]), pf.covariance_lookback,
                          None if garch is None else garch[held])
        vol = math.sqrt(max(float(w[held] @ cov @ w[held]), 0.0) * per_year)
        if vol > pf.vol_target:
            w = w * (pf.vol_target / vol)
    if beta is not None or sector is not None:  # neutral, or within the risk limits
        w = neutralize(w, net=0.0 if short_total > 0 else limits.net,
                       beta=None if beta is None else _betas(beta), max_beta=limits.beta,
                       sector=None if sector is None else _sectors(sector),
                       max_sector=limits.sector)
    return w
