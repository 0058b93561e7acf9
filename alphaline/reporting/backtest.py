"""The backtest report: one self-contained ``index.html`` per backtest or walk-forward."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from alphaline.reporting import attribution, charts, signal
from alphaline.reporting import stats as st
from alphaline.reporting.html import (
    Figure,
    Section,
    Table,
    Text,
    chart,
    num,
    pct,
    plain_pct,
    table_html,
    write_page,
)
from alphaline.trading.backtest.result import DAILY_COLUMNS, TRADE_COLUMNS, BacktestResult

JOURNAL_ROWS = 200  # the page shows the latest fills; trades.csv beside it holds them all


def check_result(result: BacktestResult) -> None:
    """Refuse a result the report cannot read, naming what is wrong."""
    missing = [c for c in DAILY_COLUMNS if c not in result.daily]
    if missing:
        raise ValueError(f"BacktestResult.daily: missing columns {missing}")
    if not isinstance(result.daily.index, pd.DatetimeIndex):
        raise ValueError("BacktestResult.daily: the index must be a DatetimeIndex of sessions")
    if len(result.daily) < 10:
        raise ValueError(f"BacktestResult.daily: {len(result.daily)} sessions; a report needs "
                         "at least 10")
    bad = result.daily["returns"].isna() | ~result.daily["returns"].abs().lt(math.inf)
    if bad.any():
        raise ValueError("BacktestResult.daily: returns not finite on "
                         f"{result.daily.index[bad][0].date()}")
    missing = [c for c in TRADE_COLUMNS if c not in result.trades]
    if missing:
        raise ValueError(f"BacktestResult.trades: missing columns {missing}")
    missing = [c for c in ("date", "symbol", "score") if c not in result.scores]
    if missing and len(result.scores.columns):
        raise ValueError(f"BacktestResult.scores: missing columns {missing}")


def write_backtest_report(result: BacktestResult, out_dir: Path, *, title: str,
                          shap_by_version: dict[str, pd.DataFrame] | None = None,
                          dsr: dict | None = None, bootstrap_reps: int = 500) -> Path:
    """Write ``out_dir/index.html`` (and ``trades.csv``, the full journal) and return the page.

    ``shap_by_version``: version → frame ``feature, mean_abs_shap``. ``dsr``: either
    ``{"deflated_sharpe": x, "n_trials": n}`` as training measured it, or
    ``{"trial_sharpes": [...], "n_trials": n}`` to deflate this backtest's own Sharpe.
    """
    check_result(result)
    for version, frame in (shap_by_version or {}).items():
        missing = {"feature", "mean_abs_shap"} - set(frame.columns)
        if missing:
            raise ValueError(f"shap_by_version[{version!r}]: missing columns {sorted(missing)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    daily = result.daily.sort_index()
    periods = int(result.meta.get("sessions_per_year", st.SESSIONS_PER_YEAR))
    r = daily["returns"]
    ew = (result.baselines["equal_weight"].reindex(r.index)
          if "equal_weight" in result.baselines else None)
    others = result.baselines.drop(columns=["equal_weight"], errors="ignore").reindex(r.index)
    gross_r = attribution.before_cost_returns(daily)

    figs = st.headline(r, periods)
    before = st.headline(gross_r, periods)
    base = st.headline(ew, periods) if ew is not None else None
    psr = st.psr(r)
    deflated = st.dsr(r, dsr)
    bands = st.bootstrap_bands(r, reps=bootstrap_reps, periods=periods,
                               seed=int(result.meta.get("seed", 0)))

    header = _key_figures(figs, before, base, psr, deflated, dsr)
    sections = [
        _performance(r, ew, others, base, periods, _switches(result.versions, r.index)),
        _calendar(r, ew, periods),
        _costs(daily, periods),
        _exposures(daily, result),
        *_signal(result),
        _bootstrap(bands),
        _shap(shap_by_version),
        _journal(result, out_dir),
    ]
    meta = result.meta
    subtitle = " · ".join(str(x) for x in (
        f"{r.index[0].date()} → {r.index[-1].date()} ({len(r)} sessions)",
        meta.get("engine") and f"engine {meta['engine']}",
        meta.get("run_id") and f"run {meta['run_id']}",
        meta.get("params_digest") and f"params {str(meta['params_digest'])[:12]}",
    ) if x)
    path = out_dir / "index.html"
    write_page(path, title=title, subtitle=subtitle, figures=header,
               sections=[s for s in sections if s is not None],
               footer="All returns after commission, spread, impact and borrow unless a chart "
                      "says otherwise. Statistics: empyrical; bootstrap: arch "
                      "(stationary bootstrap, Politis–White block length).")
    return path


def _tone(v: float | None, good_above: float = 0.0) -> str:
    if v is None or not math.isfinite(v):
        return ""
    return "good" if v > good_above else "bad"


def _key_figures(figs: dict, before: dict, base: dict | None, psr: float,
                 deflated: float | None, dsr: dict | None) -> list[Figure]:
    out = [
        Figure("CAGR", pct(figs["cagr"]), "after costs", _tone(figs["cagr"])),
        Figure("Sharpe", num(figs["sharpe"]), f"before costs {num(before['sharpe'])}",
               _tone(figs["sharpe"])),
        Figure("Sortino", num(figs["sortino"]), "annualized", _tone(figs["sortino"])),
        Figure("Max drawdown", pct(figs["max_drawdown"]), f"vol {plain_pct(figs['volatility'])}",
               "bad" if figs["max_drawdown"] < -0.2 else ""),
        Figure("Cost drag", pct(figs["cagr"] - before["cagr"]), "CAGR after − before costs"),
    ]
    if base is not None:
        out.append(Figure("vs equal weight", pct(figs["cagr"] - base["cagr"]),
                          f"EW CAGR {pct(base['cagr'])}, Sharpe {num(base['sharpe'])}",
                          _tone(figs["cagr"] - base["cagr"])))
    out.append(Figure("PSR", plain_pct(psr, 0), "P(true Sharpe > 0)", _tone(psr, 0.95)))
    if deflated is not None:
        trials = (dsr or {}).get("n_trials")
        out.append(Figure("DSR", plain_pct(deflated, 0),
                          f"deflated for {trials} trials" if trials else "deflated Sharpe",
                          _tone(deflated, 0.95)))
    return out


def _switches(versions: pd.DataFrame, sessions: pd.DatetimeIndex) -> dict[str, pd.Timestamp]:
    """Version → the session it started trading, for every version after the first."""
    if len(versions) < 2 or "first_day" not in versions:
        return {}
    starts = {str(v): pd.Timestamp(d) for v, d in zip(versions["version"],
                                                       versions["first_day"], strict=True)
              if d is not None and not pd.isna(d)}
    return {v: d for v, d in sorted(starts.items(), key=lambda kv: kv[1])
            if sessions[0] < d <= sessions[-1]}


def _performance(r: pd.Series, ew: pd.Series | None, others: pd.DataFrame,
                 base: dict | None, periods: int, switches: dict[str, pd.Timestamp]
                 ) -> Section:
    window = 63 if len(r) >= 126 else max(5, len(r) // 3)
    figures = pd.DataFrame({"strategy": st.headline(r, periods),
                            **({"equal weight": base} if base is not None else {}),
                            **{c.replace("_", " "): st.headline(others[c], periods)
                               for c in others}}).T
    fmt = {c: pct for c in ("cagr", "max_drawdown", "total_return")}
    fmt |= {"volatility": plain_pct, "sharpe": num, "sortino": num, "calmar": num}
    return Section("performance", "Performance", [
        chart("equity", charts.equity(r, ew, others if len(others.columns) else None,
                                      switches),
              "Growth of one dollar, strategy against the equal-weight universe",
              "Dotted lines: a new model version took over (walk-forward refit)."
              if switches else ""),
        Table(table_html(figures.rename_axis("series"), fmt)),
        chart("drawdown", charts.underwater(st.drawdown(r),
                                            st.drawdown(ew) if ew is not None else None),
              "Underwater drawdown"),
        chart("rolling", charts.rolling_figures(st.rolling(r, window, periods), window),
              "Rolling Sharpe, Sortino and volatility"),
    ], "The strategy's daily returns after costs against the equal-weight book of the same "
       "universe (and the other baselines in grey), all on the same sessions.")


def _calendar(r: pd.Series, ew: pd.Series | None, periods: int) -> Section:
    cols = {"strategy": r, **({"equal weight": ew} if ew is not None else {})}
    yearly = st.yearly_table(cols, periods)
    fmt = {c: (num if c.endswith("sharpe") else pct) for c in yearly.columns}
    return Section("calendar", "Months and years", [
        chart("monthly", charts.monthly_heatmap(st.monthly_table(r)), "Monthly returns"),
        Table(table_html(yearly, fmt)),
    ])


def _costs(daily: pd.DataFrame, periods: int) -> Section:
    table = attribution.cost_table(daily, periods).rename_axis("cost")
    return Section("costs", "Turnover and costs", [
        chart("costs", charts.turnover_costs(daily), "Turnover and cumulative costs by kind"),
        Table(table_html(table, {"dollars": lambda v: num(v, 0), "bp_per_year": num,
                                 "share": lambda v: plain_pct(v, 0)}),
              f"Mean turnover {plain_pct(float(daily['turnover'].mean()))} of NAV a session."),
    ])


def _exposures(daily: pd.DataFrame, result: BacktestResult) -> Section:
    sectors = attribution.sector_exposure(result.weights, result.sectors)
    return Section("exposures", "Exposures", [
        chart("exposures", charts.exposures(daily, sectors if len(sectors.columns) else None),
              "Gross, net, long, short, beta and sector exposures"),
    ])


def _signal(result: BacktestResult) -> list[Section]:
    if result.scores.empty or result.closes.empty:
        return [Section("signal", "Signal", [Text("No scores in this result.")])]
    by_horizon = signal.ic_by_horizon(result.scores, result.closes)
    ic, decay = by_horizon[1], signal.decay_table(by_horizon)
    q = signal.quantile_returns(result.scores, result.closes)
    spread = signal.quantile_spread(q)
    fmt = {"ic": lambda v: num(v, 4), "rank_ic": lambda v: num(v, 4), "rank_ic_t": num,
           "dates": lambda v: f"{int(v):,}"}
    return [
        Section("ic", "Information coefficient", [
            chart("ic", charts.ic_panel(ic, decay), "IC and rank IC over time and by horizon"),
            Table(table_html(decay, fmt)),
        ], "Correlation of each day's scores with the returns that followed (trade at the "
           "next close); the horizon table shows how fast the signal fades."),
        Section("quantiles", "Quantile returns", [
            chart("quantiles", charts.quantile_panel(q, spread),
                  "Mean return per score quantile and the top-minus-bottom spread"),
        ]),
    ]


def _bootstrap(bands: st.BootstrapBands) -> Section:
    table = bands.band().rename_axis("figure")
    pretty = table.copy()
    for c in pretty.columns:  # CAGR and drawdown as percentages, Sharpe as a number
        pretty[c] = pretty[c].astype(object)
        pretty.loc["cagr", c] = pct(float(table.loc["cagr", c]))
        pretty.loc["max_drawdown", c] = pct(float(table.loc["max_drawdown", c]))
        pretty.loc["sharpe", c] = num(float(table.loc["sharpe", c]))
    return Section("bootstrap", "Monte Carlo bands", [
        chart("bootstrap", charts.bootstrap_panel(bands.draws, bands.observed),
              "Stationary-bootstrap distributions of Sharpe, CAGR and max drawdown"),
        Table(table_html(pretty)),
    ], f"{len(bands.draws)} stationary-bootstrap paths (mean block "
       f"{bands.block_length:.1f} sessions): the range the same daily returns, drawn in a "
       "different order, would have shown. A Sharpe band that straddles zero is not evidence "
       "of skill.")


def _shap(shap_by_version: dict[str, pd.DataFrame] | None) -> Section:
    if not shap_by_version:
        return Section("shap", "Model explanations",
                       [Text("No SHAP summary was given for this run.")])
    blocks = []
    for version, frame in shap_by_version.items():
        blocks.append(chart(f"shap-{version}", charts.shap_bars(frame, str(version)),
                            f"Mean absolute SHAP per feature, version {version}"))
    return Section("shap", "Model explanations", blocks,
                   "Mean |SHAP| per feature for each model version that traded: how much "
                   "each feature moved the score on average.")


def _journal(result: BacktestResult, out_dir: Path) -> Section:
    trades = result.trades.sort_values(["filled_on", "symbol"]) \
        if len(result.trades) else result.trades
    trades.to_csv(out_dir / "trades.csv", index=False)
    blocks: list = []
    if len(result.versions):
        blocks.append(Table(table_html(result.versions, index=False), "Model versions traded"))
    if len(trades):
        shown = trades.tail(JOURNAL_ROWS)
        fmt = {"quantity": lambda v: f"{v:+,.0f}", "price": lambda v: num(v, 2),
               "commission": lambda v: num(v, 2), "spread": lambda v: num(v, 2),
               "impact": lambda v: num(v, 2)}
        blocks.append(Table(table_html(shown, fmt, index=False),
                            f"The latest {len(shown):,} of {len(trades):,} fills; "
                            "trades.csv beside this page holds them all."))
    else:
        blocks.append(Text("No trades."))
    return Section("journal", "Trade journal", blocks)
