"""The daily risk report: VaR and CVaR four ways, historical stress tests, exposures, the
trading state and how far each kill switch is from firing. Pure: positions, price history
and (optionally) a covariance in; a dict and its Markdown out.

Losses are positive numbers in dollars (and as a share of NAV). ``confidence`` c means the
loss exceeded on a (1 − c) share of days.

- **historical**: today's positions revalued over the past ``history_sessions`` of returns
  (the book's hypothetical P&L), the empirical (1 − c) quantile and the mean beyond it;
- **parametric**: normal P&L with that history's mean and standard deviation,
  VaR = −(μ + σ z), CVaR = −(μ − σ φ(z) / (1 − c)), z = Φ⁻¹(1 − c);
- **Cornish–Fisher**: z corrected for the history's skew S and excess kurtosis K,
  z' = z + (z² − 1) S/6 + (z³ − 3z) K/24 − (2z³ − 5z) S²/36 (CVaR: the mean of z' over
  the tail's levels);
- **Monte Carlo**: multivariate normal returns from the covariance (seeded generator), the
  P&L of today's positions under each draw.

Stress tests apply a historical move of the market (S&P 500, close to close or to the
trough named below) to each position times its beta, plus an optional shock by sector:

- 2008 Lehman week: 2008-09-12 close 1,251.70 → 2008-09-17 close 1,156.39, −7.6 %
  (S&P Dow Jones Indices, S&P 500 daily closes);
- 2010 flash crash: 2010-05-05 close 1,165.87 → 2010-05-06 intraday low 1,065.79, −8.6 %
  (CFTC–SEC, "Findings Regarding the Market Events of May 6, 2010", 2010-09-30);
- March 2020: 2020-02-19 close 3,386.15 → 2020-03-23 close 2,237.40, −33.9 %
  (S&P Dow Jones Indices, S&P 500 daily closes);
- 2022 rates shock: 2022-01-03 close 4,796.56 → 2022-10-12 close 3,577.03, −25.4 %
  (S&P Dow Jones Indices, S&P 500 daily closes).

A scenario's ``sectors`` adds a move by sector on top (none by default: the index moves are
the documented figures; add sector shocks from your own source).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from alphaline.config import RiskReportParams
from alphaline.trading.kill_switches import KillSwitchDecision


@dataclass(frozen=True)
class Scenario:
    name: str
    window: str
    market: float  # the market's return over the window
    source: str
    sectors: Mapping[str, float] = field(default_factory=dict)  # extra return by sector


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("2008 Lehman week", "2008-09-12 → 2008-09-17", 1156.39 / 1251.70 - 1,
             "S&P Dow Jones Indices, S&P 500 daily closes"),
    Scenario("2010 flash crash", "2010-05-05 close → 2010-05-06 intraday low",
             1065.79 / 1165.87 - 1,
             "CFTC-SEC, Findings Regarding the Market Events of May 6, 2010"),
    Scenario("March 2020", "2020-02-19 → 2020-03-23", 2237.40 / 3386.15 - 1,
             "S&P Dow Jones Indices, S&P 500 daily closes"),
    Scenario("2022 rates shock", "2022-01-03 → 2022-10-12", 3577.03 / 4796.56 - 1,
             "S&P Dow Jones Indices, S&P 500 daily closes"),
)


def position_values(positions: Mapping[str, float], prices: Mapping[str, float]) -> pd.Series:
    """Dollar value of each held name at ``prices`` (a name without a price is left out)."""
    values = {s: q * prices[s] for s, q in positions.items()
              if q and s in prices and np.isfinite(prices[s])}
    return pd.Series(values, dtype="float64").sort_index()


def daily_returns(closes: pd.DataFrame, sessions: int) -> pd.DataFrame:
    """Simple returns of the last ``sessions`` sessions; ``closes``: date × symbol (a bars
    table pivots to it with ``bars.pivot(index="date", columns="symbol", values="close")``).
    A day a name did not trade counts as no move."""
    return closes.sort_index().pct_change(fill_method=None).iloc[1:].tail(sessions).fillna(0.0)


def historical_var(pnl: pd.Series | np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) of the empirical P&L: the loss at the (1 − c) quantile, the mean beyond."""
    x = np.asarray(pnl, dtype="float64")
    q = np.quantile(x, 1 - confidence)
    return float(-q), float(-x[x <= q].mean())


def parametric_var(mu: float, sigma: float, confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) of a normal P&L with mean ``mu`` and standard deviation ``sigma``."""
    z = stats.norm.ppf(1 - confidence)
    return float(-(mu + sigma * z)), float(-(mu - sigma * stats.norm.pdf(z) / (1 - confidence)))


def _cornish_fisher_z(z: np.ndarray, skew: float, excess_kurtosis: float) -> np.ndarray:
    s, k = skew, excess_kurtosis
    return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36


def cornish_fisher_var(mu: float, sigma: float, skew: float, excess_kurtosis: float,
                       confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) with the normal quantile corrected for skew and excess kurtosis; CVaR
    averages the corrected quantile over the tail's probability levels."""
    alpha = 1 - confidence
    z = _cornish_fisher_z(np.array([stats.norm.ppf(alpha)]), skew, excess_kurtosis)[0]
    levels = (np.arange(2000) + 0.5) / 2000 * alpha  # midpoints of the tail's levels
    tail = _cornish_fisher_z(stats.norm.ppf(levels), skew, excess_kurtosis)
    return float(-(mu + sigma * z)), float(-(mu + sigma * tail.mean()))


def monte_carlo_var(values: pd.Series, covariance: pd.DataFrame, confidence: float,
                    draws: int, seed: int) -> tuple[float, float]:
    """(VaR, CVaR) of today's positions under zero-mean normal returns with
    ``covariance`` (names as in ``values``), from a seeded generator."""
    cov = covariance.reindex(index=values.index, columns=values.index).fillna(0.0)
    rng = np.random.default_rng(seed)
    returns = rng.multivariate_normal(np.zeros(len(values)), cov.to_numpy(), size=draws,
                                      method="eigh")
    return historical_var(returns @ values.to_numpy(), confidence)


def estimate_betas(returns: pd.DataFrame) -> dict[str, float]:
    """Each name's beta to the equal-weight market of ``returns``' columns."""
    market = returns.mean(axis=1)
    var = market.var()
    if not var > 0:
        return {s: 1.0 for s in returns.columns}
    return {s: float(returns[s].cov(market) / var) for s in returns.columns}


def stress(values: pd.Series, betas: Mapping[str, float], sectors: Mapping[str, str] | None,
           nav: float, scenarios: Sequence[Scenario] = SCENARIOS) -> list[dict]:
    """P&L of today's positions in each scenario: value × (beta × market + sector shock).
    A name without a beta moves with the market (beta 1)."""
    rows = []
    for sc in scenarios:
        moves = pd.Series({s: betas.get(s, 1.0) * sc.market
                           + sc.sectors.get((sectors or {}).get(s, ""), 0.0)
                           for s in values.index}, dtype="float64")
        pnl = float((values * moves).sum()) if len(values) else 0.0
        rows.append({"scenario": sc.name, "window": sc.window, "market": sc.market,
                     "pnl": pnl, "pnl_pct_nav": pnl / nav, "source": sc.source})
    return rows


def exposures(values: pd.Series, nav: float, betas: Mapping[str, float],
              sectors: Mapping[str, str] | None, top: int) -> dict:
    """Gross, net, beta, by sector, and the largest names, as shares of NAV."""
    w = values / nav
    out = {"gross": float(w.abs().sum()), "net": float(w.sum()),
           "beta": float(sum(w[s] * betas.get(s, 1.0) for s in w.index)),
           "long": float(w[w > 0].sum()), "short": float(w[w < 0].sum()),
           "names": int((w != 0).sum())}
    if sectors is not None:
        by = w.groupby(lambda s: sectors.get(s, "(no sector)"))
        out["sectors"] = {k: {"net": float(g.sum()), "gross": float(g.abs().sum())}
                          for k, g in by}
    order = w.abs().sort_values(ascending=False).index[:top]
    out["top"] = [{"symbol": s, "weight": float(w[s])} for s in order]
    return out


def risk_report(positions: Mapping[str, float], closes: pd.DataFrame, nav: float,
                params: RiskReportParams, *, covariance: pd.DataFrame | None = None,
                betas: Mapping[str, float] | None = None,
                sectors: Mapping[str, str] | None = None, state: dict | None = None,
                headroom: list[dict] | None = None,
                decision: KillSwitchDecision | None = None) -> dict:
    """The risk section of the day's report.

    ``positions``: shares by symbol; ``closes``: date × symbol closes through today (the
    last row prices the book); ``covariance``: of daily returns (default: the sample
    covariance of the last ``history_sessions``); ``betas``: default estimated against the
    equal-weight market of ``closes``; ``state``: ``{"state", "reason", "since", "actor"}``;
    ``headroom``: from :func:`alphaline.trading.kill_switches.headroom`; ``decision``: the
    day's kill-switch verdict (the switches that fired, the book's scale, a no-trade reason).
    """
    c = params.confidence
    last = closes.sort_index().ffill().iloc[-1].to_dict() if len(closes) else {}
    values = position_values(positions, last)
    returns = daily_returns(closes, params.history_sessions)
    betas = dict(betas) if betas is not None else estimate_betas(returns)
    report: dict = {"nav": nav, "confidence": c, "state": state, "headroom": headroom or [],
                    "exposures": exposures(values, nav, betas, sectors, params.top_names),
                    "stress": stress(values, betas, sectors, nav), "var": {},
                    "kill_switches": None if decision is None else {
                        "rules": list(decision.rules), "reasons": list(decision.reasons),
                        "state": decision.state, "scale": decision.scale,
                        "keep_fraction": decision.keep_fraction,
                        "cancel_working": decision.cancel_working,
                        "no_trade_reason": decision.no_trade_reason}}
    if len(values) == 0 or len(returns) < 2:
        return report
    pnl = returns.reindex(columns=values.index).fillna(0.0) @ values
    mu, sigma = float(pnl.mean()), float(pnl.std(ddof=1))
    cov = covariance if covariance is not None else returns.reindex(columns=values.index) \
        .fillna(0.0).cov()
    methods = {
        "historical": historical_var(pnl, c),
        "parametric": parametric_var(mu, sigma, c),
        "cornish_fisher": cornish_fisher_var(mu, sigma, float(stats.skew(pnl)),
                                             float(stats.kurtosis(pnl)), c),
        "monte_carlo": monte_carlo_var(values, cov, c, params.monte_carlo_draws, params.seed),
    }
    report["var"] = {name: {"var": v, "cvar": cv, "var_pct_nav": v / nav,
                            "cvar_pct_nav": cv / nav} for name, (v, cv) in methods.items()}
    report["history_sessions"] = len(returns)
    return report


def risk_markdown(report: dict) -> str:
    """The report as a Markdown section (``## Risk``)."""
    lines = ["## Risk", ""]
    state = report.get("state")
    if state:
        lines.append(f"- trading state: **{state['state']}** — {state.get('reason', '')} "
                     f"({state.get('actor', '')}, since {state.get('since', '')})")
    switches = report.get("kill_switches")
    if switches and switches["no_trade_reason"]:
        lines.append(f"- **no trading today**: {switches['no_trade_reason']}")
    if switches:
        lines += [f"- kill switch: {why}" for why in switches["reasons"]]
        if switches["scale"] < 1:
            lines.append(f"- book scaled to {switches['scale']:.0%} of its targets")
    e = report["exposures"]
    lines.append(f"- exposure: gross {e['gross']:.2f}, net {e['net']:+.3f}, beta "
                 f"{e['beta']:+.3f}, {e['names']} names")
    if report["var"]:
        lines += ["", f"| VaR {report['confidence']:.1%} (1 day) | VaR | CVaR | VaR % NAV |"
                      " CVaR % NAV |", "|---|---:|---:|---:|---:|"]
        for name, v in report["var"].items():
            lines.append(f"| {name} | {v['var']:,.0f} | {v['cvar']:,.0f} | "
                         f"{v['var_pct_nav']:.2%} | {v['cvar_pct_nav']:.2%} |")
    lines += ["", "| stress scenario | window | market | P&L | % NAV |",
              "|---|---|---:|---:|---:|"]
    for s in report["stress"]:
        lines.append(f"| {s['scenario']} | {s['window']} | {s['market']:+.1%} | "
                     f"{s['pnl']:+,.0f} | {s['pnl_pct_nav']:+.2%} |")
    if e.get("sectors"):
        lines += ["", "| sector | net | gross |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['net']:+.3f} | {v['gross']:.3f} |"
                  for k, v in sorted(e["sectors"].items())]
    if e["top"]:
        lines += ["", "| top names | weight |", "|---|---:|"]
        lines += [f"| {t['symbol']} | {t['weight']:+.2%} |" for t in e["top"]]
    if report["headroom"]:
        lines += ["", "| kill switch | value | fires at | headroom |", "|---|---:|---:|---:|"]
        lines += [f"| {h['rule']} | {h['value']:.2%} | {h['limit']:.2%} | {h['headroom']:+.2%} |"
                  for h in report["headroom"]]
    return "\n".join(lines) + "\n"
