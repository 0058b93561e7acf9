"""What the scores said about the returns that followed: IC over time, its decay with the
horizon, and the returns of each score quantile.

Forward returns follow the project's label: a score decided at the close of ``t`` trades at
``t+1``, so its ``h``-day return is ``close[t+1+h] / close[t+1] − 1``. IC itself comes from
:func:`alphaline.models.metrics.ic_series`, the one place the project computes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alphaline.models.metrics import ic_series

HORIZONS = (1, 2, 5, 10, 20)


def forward_returns(closes: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """sessions × symbols: the ``horizon``-session return of a trade filled at the next close."""
    entry = closes.shift(-1)
    return closes.shift(-(1 + horizon)) / entry - 1.0


def scored_returns(scores: pd.DataFrame, closes: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """``date, symbol, score, label`` for every score whose forward return is known."""
    fwd = forward_returns(closes, horizon).stack().rename("label")
    fwd.index.names = ["date", "symbol"]
    fwd = fwd.reset_index()
    fwd["date"] = pd.to_datetime(fwd["date"])  # sessions as Timestamps, whatever came in
    s = scores[["date", "symbol", "score"]].copy()
    s["date"] = pd.to_datetime(s["date"])
    out = s.merge(fwd, on=["date", "symbol"], how="inner")
    return out.dropna(subset=["score", "label"])


def ic_over_time(scores: pd.DataFrame, closes: pd.DataFrame, horizon: int = 1) -> pd.DataFrame:
    """Per date: IC (Pearson) and rank IC (Spearman) of the score with its forward return."""
    f = scored_returns(scores, closes, horizon)
    return pd.DataFrame({"ic": ic_series(f["score"], f["label"], f["date"], rank=False),
                         "rank_ic": ic_series(f["score"], f["label"], f["date"], rank=True)})


def ic_by_horizon(scores: pd.DataFrame, closes: pd.DataFrame,
                  horizons: tuple[int, ...] = HORIZONS) -> dict[int, pd.DataFrame]:
    """:func:`ic_over_time` at each horizon."""
    return {h: ic_over_time(scores, closes, h) for h in horizons}


def decay_table(by_horizon: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean IC and rank IC at each horizon, with the t-statistic of the rank IC's mean
    (overlapping horizons make neighbouring dates dependent: the t-stat is optimistic)."""
    rows = []
    for h, ic in by_horizon.items():
        n = len(ic)
        sd = float(ic["rank_ic"].std()) if n > 1 else float("nan")
        rows.append({"horizon": h, "ic": float(ic["ic"].mean()) if n else float("nan"),
                     "rank_ic": float(ic["rank_ic"].mean()) if n else float("nan"),
                     "rank_ic_t": float(ic["rank_ic"].mean() / sd * np.sqrt(n))
                     if n > 1 and sd > 0 else float("nan"),
                     "dates": n})
    return pd.DataFrame(rows).set_index("horizon")


def ic_decay(scores: pd.DataFrame, closes: pd.DataFrame, horizons: tuple[int, ...] = HORIZONS
             ) -> pd.DataFrame:
    """:func:`decay_table` of the scores' IC at ``horizons``."""
    return decay_table(ic_by_horizon(scores, closes, horizons))


def quantile_returns(scores: pd.DataFrame, closes: pd.DataFrame, quantiles: int = 5,
                     horizon: int = 1) -> pd.DataFrame:
    """Per date and score quantile (1 = lowest), the mean forward return of its names."""
    f = scored_returns(scores, closes, horizon)
    counts = f.groupby("date")["score"].transform("size")
    f = f[counts >= quantiles].copy()
    if f.empty:
        return pd.DataFrame(columns=list(range(1, quantiles + 1)), dtype="float64")
    ranks = f.groupby("date")["score"].rank(method="first")
    f["quantile"] = np.ceil(ranks / counts[f.index] * quantiles).astype(int).clip(1, quantiles)
    return f.pivot_table(index="date", columns="quantile", values="label", aggfunc="mean")


def quantile_spread(table: pd.DataFrame) -> pd.Series:
    """Top quantile minus bottom quantile, per date: what a long-short of the extremes earned
    before costs (per ``horizon`` when the table's horizon is longer than one day)."""
    if table.empty:
        return pd.Series(dtype="float64")
    return (table[table.columns.max()] - table[table.columns.min()]).rename("spread")
