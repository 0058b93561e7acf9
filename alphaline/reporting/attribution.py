"""Where the book's risk and the money went: sector exposures and costs by kind."""

from __future__ import annotations

import pandas as pd

COST_KINDS = ("commission", "spread", "impact", "borrow")


def sector_exposure(weights: pd.DataFrame, sectors: dict[str, str]) -> pd.DataFrame:
    """sessions × sector: the net weight held in each sector (names without one: 'unknown')."""
    if not sectors or weights.empty:
        return pd.DataFrame(index=weights.index)
    labels = pd.Series({s: sectors.get(s, "unknown") for s in weights.columns})
    return weights.fillna(0.0).T.groupby(labels).sum().T.sort_index(axis=1)


def cost_table(daily: pd.DataFrame, sessions_per_year: int = 252) -> pd.DataFrame:
    """Per cost kind: dollars paid, basis points of the average NAV per year, and the share
    of all costs. A kind the backtest did not report is left out, not shown as zero."""
    kinds = [k for k in COST_KINDS if k in daily]
    paid = daily[kinds].fillna(0.0).sum()
    years = max(len(daily) / sessions_per_year, 1e-9)
    avg_nav = float(daily["nav"].mean())
    total = float(paid.sum())
    table = pd.DataFrame({
        "dollars": paid,
        "bp_per_year": paid / avg_nav / years * 1e4,
        "share": paid / total if total > 0 else paid * 0.0,
    })
    table.loc["total"] = [total, total / avg_nav / years * 1e4, 1.0 if total > 0 else 0.0]
    return table


def before_cost_returns(daily: pd.DataFrame) -> pd.Series:
    """The returns the book would have earned with no costs charged: each session's costs
    added back as a fraction of the NAV it started from."""
    kinds = [k for k in COST_KINDS if k in daily]
    start = daily["nav"] / (1.0 + daily["returns"])
    return daily["returns"] + daily[kinds].fillna(0.0).sum(axis=1) / start
