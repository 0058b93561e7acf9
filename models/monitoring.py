"""Live monitoring: does the champion still earn its keep, and is the data it reads healthy?

Pure functions over frames the drift check reads at its edges (the ledger's signals, the
validated bars, the NAV history):

- :func:`live_ic`: the champion's signals joined with the labels that have since realized
  (``close[t+1+h] / close[t+1] - 1``), one IC and rank IC per signal day;
- :func:`cusum_decay`: a sequential test on that daily rank IC — one bad day never fires it,
  a run of days that is more likely under "decayed" than under "as the backtest said" does;
- :func:`book_tracking`: the ledger book's realized return against the research book's
  return on the same signals and days;
- :func:`data_health`: staleness, missing bars and quarantined symbols of a run;
- :func:`retrain_decision`: decay or controlled drift, unless a retrain happened too recently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaline.models.metrics import ic_series, icir, long_short_returns

WINSOR_SD = 3.0  # the decay test's daily rank IC is clipped this many sd from the expected


def live_ic(signals: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per signal day: ``ic``, ``rank_ic`` and ``n`` (names with a realized label).

    ``signals``: ``date, symbol, score``; ``labels``: ``date, symbol, label``. Days whose
    labels have not realized yet (the last ``1 + h`` sessions) have no row.
    """
    joined = _joined(signals, labels)
    if joined.empty:
        return pd.DataFrame({"ic": [], "rank_ic": [], "n": []},
                            index=pd.DatetimeIndex([], name="date"))
    dates = joined["date"].to_numpy()
    out = pd.DataFrame({
        "ic": ic_series(joined["score"], joined["label"], dates, rank=False),
        "rank_ic": ic_series(joined["score"], joined["label"], dates, rank=True),
    })
    out["n"] = joined.groupby("date").size().reindex(out.index).astype(int)
    return out.dropna(subset=["rank_ic"])


def _joined(signals: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    s = signals[["date", "symbol", "score"]].assign(date=pd.to_datetime(signals["date"]))
    y = labels[["date", "symbol", "label"]].assign(date=pd.to_datetime(labels["date"]))
    return s.merge(y, on=["date", "symbol"]).dropna(subset=["score", "label"])


def live_summary(series: pd.DataFrame) -> dict[str, float | int | str | None]:
    """Mean IC and rank IC, ICIR and hit rate (share of days with a positive rank IC)."""
    ric = series["rank_ic"] if len(series) else pd.Series(dtype="float64")
    return {
        "sessions": len(series),
        "first": str(series.index.min().date()) if len(series) else None,
        "last": str(series.index.max().date()) if len(series) else None,
        "ic": float(series["ic"].mean()) if len(series) else None,
        "rank_ic": float(ric.mean()) if len(series) else None,
        "icir": icir(ric) if len(series) > 1 else None,
        "hit_rate": float((ric > 0).mean()) if len(series) else None,
    }


@dataclass(frozen=True)
class DecayTest:
    """A CUSUM of the log-likelihood ratio "decayed" vs "as expected", day by day."""

    expected: float  # rank IC the champion's backtest earned (H0)
    decayed: float  # rank IC that counts as decayed (H1)
    sd: float  # standard deviation of one day's rank IC
    threshold: float  # alarm level, log-likelihood units: false alarms ≈ once per e^threshold
    statistic: pd.Series = field(repr=False)  # the CUSUM after each day
    alarm_day: pd.Timestamp | None  # the first day the statistic reached the threshold

    @property
    def alarm(self) -> bool:
        return self.alarm_day is not None

    @property
    def last(self) -> float:
        return float(self.statistic.iloc[-1]) if len(self.statistic) else 0.0

    def reason(self) -> str:
        """One sentence with the figures, for logs, alerts and the model version's tag."""
        if not self.alarm:
            return (f"no decay: CUSUM {self.last:.2f} < {self.threshold:g} over "
                    f"{len(self.statistic)} sessions")
        after = int(self.statistic.index.get_loc(self.alarm_day)) + 1
        return (f"decay: live rank IC CUSUM reached {self.threshold:g} on "
                f"{self.alarm_day.date()} after {after} sessions (expected rank IC "
                f"{self.expected:.4f}, decayed {self.decayed:.4f}, daily sd {self.sd:.4f})")

    def as_dict(self) -> dict:
        return {"expected": self.expected, "decayed": self.decayed, "sd": self.sd,
                "threshold": self.threshold, "statistic": self.last,
                "sessions": len(self.statistic), "alarm": self.alarm,
                "alarm_day": str(self.alarm_day.date()) if self.alarm else None,
                "reason": self.reason()}


def cusum_decay(rank_ic: pd.Series, expected: float, sd: float, threshold: float,
                decayed_fraction: float = 0.0) -> DecayTest:
    """Page's CUSUM on the daily rank IC: H0 mean ``expected``, H1 mean
    ``decayed_fraction × expected``, Gaussian with ``sd``.

    Each day adds ``(μ0 − μ1)/σ² · ((μ0 + μ1)/2 − x)``, the log-likelihood ratio of that
    day (``x`` clipped at μ0 ± 3σ); the sum is floored at zero, so good days cannot bank
    credit for later bad ones beyond that. Expected detection delay ≈
    ``threshold / ((μ0 − μ1)² / 2σ²)`` sessions.
    A champion that expects no positive IC cannot decay: the statistic stays at zero.
    """
    if not sd > 0 or not math.isfinite(sd):
        raise ValueError(f"the daily rank IC's standard deviation must be positive, got {sd}")
    if not 0 <= decayed_fraction < 1:
        raise ValueError(f"decayed_fraction must lie in [0, 1), got {decayed_fraction}")
    x = rank_ic.dropna().astype("float64")
    decayed = decayed_fraction * expected
    if not expected > 0:
        stat = pd.Series(np.zeros(len(x)), index=x.index)
        return DecayTest(expected, decayed, sd, threshold, stat, None)
    # A day's rank IC is winsorized at ±WINSOR_SD around the expected: a market shock's one
    # or two wild cross-sections (fat tails) cannot fire the test alone.
    day = np.clip(x.to_numpy(), expected - WINSOR_SD * sd, expected + WINSOR_SD * sd)
    step = (expected - decayed) / sd**2 * ((expected + decayed) / 2 - day)
    values = np.empty(len(step))
    s = 0.0
    for i, inc in enumerate(step):
        s = max(0.0, s + inc)
        values[i] = s
    stat = pd.Series(values, index=x.index)
    crossed = np.flatnonzero(values >= threshold)
    return DecayTest(expected, decayed, sd, threshold, stat,
                     pd.Timestamp(x.index[crossed[0]]) if len(crossed) else None)


def book_tracking(signals: pd.DataFrame, labels: pd.DataFrame, nav: pd.DataFrame,
                  sessions: pd.DatetimeIndex, quantile: float, horizon: int,
                  gross: float = 1.0, max_weight: float = 1.0) -> dict:
    """The ledger book's realized return against the research book (long the top, short the
    bottom ``quantile`` of the same signals) over the same days.

    A signal of day ``t`` earns its label over sessions ``t+1 → t+1+h``; the ledger's NAV
    over those same sessions is what the book actually made (after costs and the risk
    engine's refusals). ``nav``: ``day, nav``; ``sessions``: the exchange calendar.
    """
    expected = long_short_returns(_joined(signals, labels), quantile, horizon, gross,
                                  max_weight)
    if expected.empty or nav.empty:
        return {"sessions": 0, "expected_return": None, "realized_return": None,
                "tracking_difference": None}
    navs = nav.assign(day=pd.to_datetime(nav["day"])).set_index("day")["nav"].sort_index()
    pos = {d: i for i, d in enumerate(sessions)}
    realized, kept = [], []
    for day in expected.index:
        i = pos.get(pd.Timestamp(day))
        if i is None or i + 1 + horizon >= len(sessions):
            continue
        start, end = sessions[i + 1], sessions[i + 1 + horizon]
        if start in navs.index and end in navs.index and navs[start] > 0:
            realized.append(navs[end] / navs[start] - 1)
            kept.append(day)
    if not kept:
        return {"sessions": 0, "expected_return": None, "realized_return": None,
                "tracking_difference": None}
    exp_r = float(np.prod(1 + expected.loc[kept].to_numpy()) - 1)
    real_r = float(np.prod(1 + np.asarray(realized)) - 1)
    return {"sessions": len(kept), "first": str(pd.Timestamp(kept[0]).date()),
            "last": str(pd.Timestamp(kept[-1]).date()), "expected_return": exp_r,
            "realized_return": real_r, "tracking_difference": real_r - exp_r}


def sessions_behind(last: pd.Timestamp | None, as_of: pd.Timestamp,
                    sessions: pd.DatetimeIndex) -> int | None:
    """Exchange sessions after ``last`` up to and including ``as_of`` (0: up to date)."""
    if last is None or pd.isna(last):
        return None
    return int(((sessions > pd.Timestamp(last)) & (sessions <= pd.Timestamp(as_of))).sum())


def data_health(bars: pd.DataFrame, window: pd.DatetimeIndex,
                quarantined: dict[str, list[str]] | None = None) -> dict:
    """Staleness, missing bars and quarantined share over ``window`` (exchange sessions,
    the last one the as-of day). The universe is every symbol with a bar in the window; a
    symbol is expected on every session from its first bar in the window on."""
    as_of = window[-1]
    recent = bars[(pd.to_datetime(bars["date"]) >= window[0])
                  & (pd.to_datetime(bars["date"]) <= as_of)]
    recent = recent.assign(date=pd.to_datetime(recent["date"]))
    first = recent.groupby("symbol")["date"].min()
    last = recent.groupby("symbol")["date"].max()
    expected = sum(int(((window >= f) & (window <= as_of)).sum()) for f in first)
    present = int(recent[["symbol", "date"]].drop_duplicates().shape[0])
    behind = {str(s): sessions_behind(d, as_of, window) for s, d in last.items()}
    stale = {s: n for s, n in behind.items() if n}
    held = sorted(set(quarantined or {}) & {str(s) for s in first.index})
    universe = len(first)
    return {
        "as_of": str(as_of.date()), "sessions": len(window), "universe": universe,
        "bars_expected": expected, "bars_missing": expected - present,
        "missing_share": (expected - present) / expected if expected else 0.0,
        "stale_symbols": dict(sorted(stale.items(), key=lambda kv: -kv[1])),
        "max_staleness_sessions": max(stale.values(), default=0),
        "quarantined": held,
        "quarantined_share": len(held) / universe if universe else 0.0,
    }


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: tuple[str, ...]  # why a retrain is due (decay, drift): empty when none is
    suppressed: str | None  # why a due retrain is not started (the cooldown)

    def reason(self) -> str:
        return "; ".join(self.reasons)


def retrain_decision(decay: DecayTest | None, drift_reasons: list[str],
                     sessions_since_retrain: int | None, cooldown_sessions: int
                     ) -> RetrainDecision:
    """Retrain on decay, or on drift that passed its controls; never within
    ``cooldown_sessions`` of the last retrain (a fresh model's first days cannot tell)."""
    reasons = ([decay.reason()] if decay is not None and decay.alarm else []) + drift_reasons
    if not reasons:
        return RetrainDecision(False, (), None)
    if sessions_since_retrain is not None and sessions_since_retrain < cooldown_sessions:
        return RetrainDecision(False, tuple(reasons),
                               f"cooldown: the last retrain was {sessions_since_retrain} "
                               f"sessions ago (< {cooldown_sessions})")
    return RetrainDecision(True, tuple(reasons), None)
