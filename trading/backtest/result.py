"""What a backtest hands to reports and to the gate: one typed result for both engines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

DAILY_COLUMNS = [
    "nav",          # end-of-session net asset value, dollars
    "returns",      # nav / previous nav − 1 (first session: against the initial cash)
    "gross",        # Σ|w| at the close, fraction of NAV
    "net",          # Σ w
    "long",         # Σ w⁺
    "short",        # Σ w⁻ (≤ 0)
    "turnover",     # Σ|traded notional| / NAV of the session's fills
    "commission",   # dollars charged that session, by kind
    "spread",
    "impact",
    "borrow",
]
TRADE_COLUMNS = ["decided_on", "filled_on", "symbol", "quantity", "price", "commission",
                 "spread", "impact", "model_version"]


@dataclass
class BacktestResult:
    """One backtest, day by day.

    - ``daily``: indexed by session (``DatetimeIndex`` named ``date``), :data:`DAILY_COLUMNS`,
      plus ``beta`` (Σ wβ, NaN without betas) when known.
    - ``weights``: sessions × symbols, the book held at each close (fractions of NAV).
    - ``trades``: one row per fill, :data:`TRADE_COLUMNS` (``quantity`` signed shares).
    - ``closes``: sessions × symbols close prices the backtest marked at (for IC decay and
      quantile spreads at horizons 1–20).
    - ``scores``: ``date, symbol, score`` the book was built from (the model's output that day).
    - ``baselines``: sessions × {equal_weight, momentum_12_1, reversal_1m[, unsized_primary]}:
      each baseline's daily after-cost returns on the same days, costs and book method.
    - ``versions``: ``version, first_day, last_day, trained_through`` of every model that
      traded (one row without retraining).
    - ``sectors``: symbol → sector when the data carry sectors.
    - ``meta``: engine, run id, start, end, params digest, anything the report prints.
    """

    daily: pd.DataFrame
    weights: pd.DataFrame
    trades: pd.DataFrame
    closes: pd.DataFrame
    scores: pd.DataFrame
    baselines: pd.DataFrame
    versions: pd.DataFrame
    sectors: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def returns(self) -> pd.Series:
        return self.daily["returns"]
