"""Live performance of the champion, as the daily report shows it: is the live book doing
what its walk-forward said it would?

Pure functions over frames the daily flow reads at its edge (the ledger's signals and NAV,
the labels computed from the live bars, the champion's run metrics in the registry):

- the live IC / rank IC series and hit rate: :func:`~alphaline.models.monitoring.live_ic`
  on the champion's signals joined with the labels that have since realized;
- the research book on those same signals and days
  (:func:`~alphaline.models.monitoring.book_tracking`, before costs);
- :func:`walk_forward_expectation`: the ledger book's realized return since the champion's
  first signal against what its walk-forward after-cost Sharpe expects at the risk the live
  book actually took.

Why the expectation is a Sharpe scaled by the live book's volatility: the registry records
the champion's walk-forward after-cost Sharpe (``oos_traded_sharpe_net_annualized``, the
traded book through the cost model; ``oos_sharpe_net_annualized`` when the bars carried no
prices) but not a mean daily return, and a Sharpe is the return per unit of risk: at the
live book's own daily volatility σ it expects ``SR / √(sessions per year) × σ`` a session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaline.models.monitoring import book_tracking, live_ic, live_summary

# Fewer sessions with realized labels than this: the page says so instead of a figure.
MIN_LIVE_SESSIONS = 5
# The registry's after-cost walk-forward Sharpes, in order of preference.
EXPECTATION_METRICS = ("oos_traded_sharpe_net_annualized", "oos_sharpe_net_annualized")


def expected_sharpe(run_metrics: dict[str, float]) -> tuple[str | None, float | None]:
    """The champion's walk-forward after-cost annualized Sharpe and the metric it came from
    (``(None, None)`` when the registry records neither)."""
    for name in EXPECTATION_METRICS:
        value = run_metrics.get(name)
        if value is not None and math.isfinite(float(value)):
            return name, float(value)
    return None, None


def walk_forward_expectation(nav: pd.DataFrame, first_signal: pd.Timestamp | None,
                             sessions: pd.DatetimeIndex, sharpe_annualized: float | None,
                             per_year: float) -> dict:
    """The ledger book's daily returns since the champion's first signal against the
    walk-forward's after-cost Sharpe.

    The book a signal of day ``t`` asks for is filled at the close of ``t+1``; its first
    return is the next session's. ``nav``: ``day, nav`` (the ledger's NAV history);
    ``sessions``: the exchange calendar. Returns ``sessions`` (daily returns counted),
    ``realized_return``, ``expected_return`` (compounded), ``realized_sharpe`` and
    ``expected_sharpe`` (annualized), and ``t_stat`` of the realized mean against the
    expected one (None where it cannot be measured).
    """
    out: dict = {"sessions": 0, "first": None, "last": None, "realized_return": None,
                 "expected_return": None, "realized_sharpe": None,
                 "expected_sharpe": sharpe_annualized, "t_stat": None}
    if first_signal is None or nav.empty:
        return out
    later = sessions[sessions > pd.Timestamp(first_signal)]
    if not len(later):
        return out
    navs = (nav.assign(day=pd.to_datetime(nav["day"])).set_index("day")["nav"]
            .sort_index().astype("float64"))
    navs = navs[navs.index >= later[0]]
    returns = navs.pct_change().dropna()
    returns = returns[np.isfinite(returns.to_numpy())]
    n = len(returns)
    if n == 0:
        return out
    realized = float(np.prod(1 + returns.to_numpy()) - 1)
    out.update(sessions=n, first=str(returns.index[0].date()),
               last=str(returns.index[-1].date()), realized_return=realized)
    sd = float(returns.std(ddof=1)) if n > 1 else float("nan")
    if not (math.isfinite(sd) and sd > 0):
        return out
    mean = float(returns.mean())
    out["realized_sharpe"] = mean / sd * math.sqrt(per_year)
    if sharpe_annualized is None:
        return out
    expected_daily = sharpe_annualized / math.sqrt(per_year) * sd
    out["expected_return"] = float((1 + expected_daily) ** n - 1)
    out["t_stat"] = (mean - expected_daily) / (sd / math.sqrt(n))
    return out


@dataclass(frozen=True)
class LivePerformance:
    """What the champion's live signals and book have earned so far, and what was expected."""

    version: str
    horizon: int  # the label's horizon: a signal's label realizes 1 + h sessions later
    series: pd.DataFrame = field(repr=False)  # ic, rank_ic, n per signal day
    summary: dict  # live_summary: sessions, first, last, ic, rank_ic, icir, hit_rate
    research_book: dict  # book_tracking: ledger book vs the research book, same signals
    expectation: dict  # walk_forward_expectation
    backtest_rank_ic: float | None  # the walk-forward's rank IC (oos_rank_ic)
    expectation_metric: str | None  # which registry metric the expectation read
    signal_days: int  # the champion's signal days in the ledger, realized or not
    min_sessions: int = MIN_LIVE_SESSIONS

    @property
    def enough(self) -> bool:
        """Enough sessions with realized labels for the live figures to mean something."""
        return self.summary["sessions"] >= self.min_sessions

    def waiting(self) -> str:
        """Why the live figures are not shown yet (one sentence)."""
        n = self.summary["sessions"]
        return (f"Too few labels have realized yet: {n} of the champion v{self.version}'s "
                f"{self.signal_days} signal days have a realized label (a signal's label "
                f"realizes {1 + self.horizon} sessions after it); live IC, rank IC and hit "
                f"rate are shown from {self.min_sessions} sessions on.")

    def figures(self) -> list[dict]:
        """``metric, value`` rows for a Prefect table artifact (None where not measured)."""
        s, b, e = self.summary, self.research_book, self.expectation
        shown = self.enough
        return [
            {"metric": "live_sessions_realized", "value": s["sessions"]},
            {"metric": "live_ic", "value": s["ic"] if shown else None},
            {"metric": "live_rank_ic", "value": s["rank_ic"] if shown else None},
            {"metric": "backtest_rank_ic", "value": self.backtest_rank_ic},
            {"metric": "live_hit_rate", "value": s["hit_rate"] if shown else None},
            {"metric": "book_realized_return", "value": e["realized_return"]},
            {"metric": "book_expected_return_walk_forward", "value": e["expected_return"]},
            {"metric": "book_realized_sharpe", "value": e["realized_sharpe"]},
            {"metric": "walk_forward_sharpe_after_costs", "value": e["expected_sharpe"]},
            {"metric": "research_book_return_same_signals", "value": b["expected_return"]},
            {"metric": "ledger_book_return_same_signals", "value": b["realized_return"]},
        ]

    def markdown(self) -> str:
        """The report's "Live performance" section."""
        s, b, e = self.summary, self.research_book, self.expectation
        lines = ["## Live performance", ""]
        if self.enough:
            lines += [
                f"- champion v{self.version}, {s['sessions']} sessions with realized labels "
                f"({s['first']} .. {s['last']})",
                f"- IC {_fmt(s['ic'])}, rank IC {_fmt(s['rank_ic'])} (walk-forward "
                f"{_fmt(self.backtest_rank_ic)}), ICIR {_fmt(s['icir'])}, hit rate "
                f"{_fmt(s['hit_rate'], '.1%')}",
            ]
        else:
            lines.append(f"- {self.waiting()}")
        if e["sessions"]:
            lines.append(
                f"- book over {e['sessions']} sessions ({e['first']} .. {e['last']}): realized "
                f"{_fmt(e['realized_return'], '+.2%')}, expected "
                f"{_fmt(e['expected_return'], '+.2%')} at the walk-forward's after-cost "
                f"Sharpe {_fmt(e['expected_sharpe'], '.2f')} "
                f"({self.expectation_metric or 'not recorded'}); realized Sharpe "
                f"{_fmt(e['realized_sharpe'], '.2f')}, t {_fmt(e['t_stat'], '+.2f')}")
        else:
            lines.append("- book: no session since the champion's first signal has a NAV yet")
        if b["sessions"]:
            lines.append(
                f"- same signals, same {b['sessions']} days: ledger book "
                f"{_fmt(b['realized_return'], '+.2%')}, research book before costs "
                f"{_fmt(b['expected_return'], '+.2%')}")
        if len(self.series):
            lines += ["", "| signal day | IC | rank IC | names |", "|---|---|---|---|"]
            lines += [f"| {d.date()} | {r.ic:.4f} | {r.rank_ic:.4f} | {int(r.n)} |"
                      for d, r in self.series.tail(10).iterrows()]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        return {"version": self.version, "enough": self.enough, "summary": self.summary,
                "research_book": self.research_book, "expectation": self.expectation,
                "backtest_rank_ic": self.backtest_rank_ic,
                "expectation_metric": self.expectation_metric,
                "signal_days": self.signal_days}


def live_performance(version: str, signals: pd.DataFrame, labels: pd.DataFrame,
                     nav: pd.DataFrame, sessions: pd.DatetimeIndex, run_metrics: dict,
                     horizon: int, quantile: float, per_year: float, gross: float = 1.0,
                     max_weight: float = 1.0, min_sessions: int = MIN_LIVE_SESSIONS
                     ) -> LivePerformance:
    """The champion's live performance.

    ``signals``: ``date, symbol, score`` of the champion's ledger signals; ``labels``:
    ``date, symbol, label`` from the bars known today; ``nav``: the ledger's NAV history;
    ``run_metrics``: the champion's training-run metrics from the registry.
    """
    series = live_ic(signals, labels)
    metric, sharpe = expected_sharpe(run_metrics)
    first = pd.Timestamp(pd.to_datetime(signals["date"]).min()) if len(signals) else None
    rank_ic = run_metrics.get("oos_rank_ic")
    return LivePerformance(
        version=version, horizon=horizon, series=series, summary=live_summary(series),
        research_book=book_tracking(signals, labels, nav, sessions, quantile, horizon,
                                    gross, max_weight),
        expectation=walk_forward_expectation(nav, first, sessions, sharpe, per_year),
        backtest_rank_ic=None if rank_ic is None else float(rank_ic),
        expectation_metric=metric,
        signal_days=int(pd.to_datetime(signals["date"]).nunique()) if len(signals) else 0,
        min_sessions=min_sessions)


def _fmt(x: object, spec: str = ".4f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, spec)
