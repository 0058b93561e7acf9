"""One function per chart: frames in, a matplotlib ``Figure`` out; :func:`svg_data_uri`
turns a figure into the ``<img>`` source the page inlines.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot): no global state, no
GUI backend, safe in a flow's worker thread. SVG keeps a page small (tens of kB a chart
against 4.6 MB of plotly.js per page, which a daily report a year would repeat 252 times),
sharp at any zoom, printable, and it needs no script to draw, so a report opens from a
``file://`` URL offline and cannot fail to render for want of JavaScript.
"""

from __future__ import annotations

import base64
import io

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

STRATEGY, BASELINE, MUTED = "#1f4e79", "#d08c2b", "#9aa5b1"
COST_COLORS = {"commission": "#1f4e79", "spread": "#4f9d69", "impact": "#d08c2b",
               "borrow": "#b5475b"}
WIDTH = 10.0

_STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
    "svg.hashsalt": "alphaline",  # the same figure gives the same bytes
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e7eb",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#9aa5b1",
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
}


def _figure(height: float = 3.2, ncols: int = 1, nrows: int = 1, **kw) -> tuple[Figure, object]:
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=True, **kw)
    return fig, axes


def svg_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/svg+xml;base64,…`` URI (no file beside the page)."""
    buf = io.BytesIO()
    with mpl.rc_context(_STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pct(ax, axis: str = "y", decimals: int = 0) -> None:
    fmt = PercentFormatter(1.0, decimals=decimals)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def equity(strategy: pd.Series, baseline: pd.Series | None, others: pd.DataFrame | None = None,
           switches: dict[str, pd.Timestamp] | None = None) -> Figure:
    """Growth of one dollar: the strategy after costs against the equal-weight universe;
    ``switches`` (version → first session) marks where a walk-forward's new model took over."""
    fig, ax = _figure(3.6)
    with mpl.rc_context(_STYLE):
        for version, day in (switches or {}).items():
            ax.axvline(day, color=MUTED, lw=0.8, ls=":")
            ax.annotate(str(version), (day, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", va="top", fontsize=7.5,
                        color="#52606d")
        if others is not None:
            for name in others:
                ax.plot(others.index, (1 + others[name].fillna(0)).cumprod(), color=MUTED,
                        lw=0.8, alpha=0.8, label=name.replace("_", " "))
        if baseline is not None:
            ax.plot(baseline.index, (1 + baseline.fillna(0)).cumprod(), color=BASELINE,
                    lw=1.4, label="equal weight")
        ax.plot(strategy.index, (1 + strategy.fillna(0)).cumprod(), color=STRATEGY, lw=1.8,
                label="strategy (after costs)")
        ax.axhline(1.0, color="#52606d", lw=0.6)
        ax.set_title("Growth of $1")
        # above the plot, right of the title: never over the lines
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, borderaxespad=0.2)
    return fig


def underwater(dd: pd.Series, baseline_dd: pd.Series | None = None) -> Figure:
    """Drawdown from the running peak: how deep and how long the strategy was under water."""
    fig, ax = _figure(2.6)
    with mpl.rc_context(_STYLE):
        if baseline_dd is not None:
            ax.plot(baseline_dd.index, baseline_dd, color=BASELINE, lw=1.0,
                    label="equal weight")
        ax.fill_between(dd.index, dd, 0, color=STRATEGY, alpha=0.35, lw=0)
        ax.plot(dd.index, dd, color=STRATEGY, lw=1.0, label="strategy")
        _pct(ax)
        ax.set_title("Underwater (drawdown from peak)")
        ax.legend(loc="lower left", ncols=2)
    return fig


def rolling_figures(roll: pd.DataFrame, window: int) -> Figure:
    """Rolling Sharpe, Sortino and volatility, each on its own panel."""
    fig, axes = _figure(5.4, nrows=3, sharex=True)
    with mpl.rc_context(_STYLE):
        for ax, col, label in zip(axes, ("sharpe", "sortino", "volatility"),
                                  ("Sharpe", "Sortino", "volatility"), strict=True):
            ax.plot(roll.index, roll[col], color=STRATEGY, lw=1.1)
            ax.set_ylabel(label)
            if col == "volatility":
                _pct(ax, decimals=1)
            else:
                ax.axhline(0.0, color="#52606d", lw=0.6)
        axes[0].set_title(f"Rolling {window}-session figures (annualized)")
    return fig


def monthly_heatmap(table: pd.DataFrame) -> Figure:
    """Years × months, green up and red down, each cell labelled with its return."""
    values = table.to_numpy(dtype="float64")
    fig, ax = _figure(0.9 + 0.42 * max(len(table), 1))
    with mpl.rc_context(_STYLE):
        finite = np.abs(values[np.isfinite(values)])
        lim = float(finite.max()) if finite.size and finite.max() > 0 else 0.01
        im = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", aspect="auto",
                       norm=TwoSlopeNorm(0.0, -lim, lim))
        ax.set_xticks(range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                  "Sep", "Oct", "Nov", "Dec"])
        ax.set_yticks(range(len(table)), [str(y) for y in table.index])
        ax.grid(False)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.1%}", ha="center", va="center", fontsize=7.5,
                        color="#102a43")
        fig.colorbar(im, ax=ax, format=PercentFormatter(1.0, decimals=0), shrink=0.8)
        ax.set_title("Monthly returns")
    return fig


def turnover_costs(daily: pd.DataFrame) -> Figure:
    """Turnover per session and the cumulative cost by kind, in basis points of NAV."""
    fig, (top, bottom) = _figure(4.6, nrows=2, sharex=True)
    with mpl.rc_context(_STYLE):
        # one filled step path, not a bar per session: thousands of sessions stay light
        top.fill_between(daily.index, daily["turnover"], step="mid", color=STRATEGY,
                         alpha=0.8, lw=0)
        top.set_ylabel("turnover")
        _pct(top)
        top.set_title("Turnover and cost attribution")
        prev_nav = daily["nav"].shift(1).fillna(daily["nav"].iloc[0])
        kinds = [k for k in COST_COLORS if k in daily]
        cum = pd.DataFrame({k: (daily[k].fillna(0) / prev_nav * 1e4).cumsum() for k in kinds})
        bottom.stackplot(cum.index, *[cum[k] for k in kinds], labels=kinds,
                         colors=[COST_COLORS[k] for k in kinds], alpha=0.85)
        bottom.set_ylabel("cumulative cost, bp")
        bottom.legend(loc="upper left", ncols=len(kinds))
    return fig


def exposures(daily: pd.DataFrame, sectors: pd.DataFrame | None) -> Figure:
    """Gross, net, long, short and beta over time; each sector's net weight when known."""
    with_sectors = sectors is not None and not sectors.empty
    fig, axes = _figure(5.4 if with_sectors else 3.0, nrows=2 if with_sectors else 1,
                        sharex=True)
    ax = axes[0] if with_sectors else axes
    with mpl.rc_context(_STYLE):
        for col, color, lw in (("gross", "#102a43", 1.4), ("net", STRATEGY, 1.4),
                               ("long", "#4f9d69", 0.9), ("short", "#b5475b", 0.9),
                               ("beta", BASELINE, 1.2)):
            if col in daily and daily[col].notna().any():
                ax.plot(daily.index, daily[col], color=color, lw=lw, label=col)
        ax.axhline(0.0, color="#52606d", lw=0.6)
        ax.set_title("Exposures (fraction of NAV; beta = Σ weight × beta)")
        ax.legend(loc="upper left", ncols=5)
        if with_sectors:
            sx = axes[1]
            palette = mpl.colormaps["tab10"]
            for i, name in enumerate(sectors):
                sx.plot(sectors.index, sectors[name], lw=1.0, color=palette(i % 10),
                        label=str(name))
            sx.axhline(0.0, color="#52606d", lw=0.6)
            sx.set_ylabel("sector net")
            sx.legend(loc="upper left", ncols=min(len(sectors.columns), 6), fontsize=8)
    return fig


def ic_panel(ic: pd.DataFrame, decay: pd.DataFrame, window: int = 21) -> Figure:
    """Left: rolling mean IC and rank IC (next-day horizon). Right: mean IC by horizon."""
    fig, (left, right) = _figure(3.2, ncols=2, width_ratios=[2.2, 1])
    with mpl.rc_context(_STYLE):
        w = max(1, min(window, len(ic)))
        left.plot(ic.index, ic["ic"].rolling(w, min_periods=1).mean(), color=BASELINE,
                  lw=1.1, label="IC")
        left.plot(ic.index, ic["rank_ic"].rolling(w, min_periods=1).mean(), color=STRATEGY,
                  lw=1.4, label="rank IC")
        left.axhline(0.0, color="#52606d", lw=0.6)
        left.set_title(f"IC over time ({w}-session mean, 1-day horizon)")
        left.legend(loc="upper left", ncols=2)
        x = np.arange(len(decay))
        right.bar(x - 0.2, decay["ic"], width=0.4, color=BASELINE, label="IC")
        right.bar(x + 0.2, decay["rank_ic"], width=0.4, color=STRATEGY, label="rank IC")
        right.set_xticks(x, [f"{h}d" for h in decay.index])
        right.axhline(0.0, color="#52606d", lw=0.6)
        right.set_title("Decay by horizon")
        right.legend(loc="upper right")
    return fig


def quantile_panel(table: pd.DataFrame, spread: pd.Series) -> Figure:
    """Left: mean next-day return by score quantile (bp). Right: top minus bottom, cumulated."""
    fig, (left, right) = _figure(3.0, ncols=2, width_ratios=[1, 2])
    with mpl.rc_context(_STYLE):
        means = table.mean() * 1e4
        colors = [STRATEGY if v >= 0 else "#b5475b" for v in means]
        left.bar([str(q) for q in means.index], means.to_numpy(), color=colors)
        left.set_xlabel("score quantile (1 = lowest)")
        left.set_ylabel("mean next-day return, bp")
        left.set_title("Return by score quantile")
        right.plot(spread.index, spread.fillna(0).cumsum(), color=STRATEGY, lw=1.4)
        right.axhline(0.0, color="#52606d", lw=0.6)
        _pct(right)
        right.set_title("Top minus bottom quantile, cumulative (before costs)")
    return fig


def shap_bars(frame: pd.DataFrame, version: str, top: int = 15) -> Figure:
    """Mean |SHAP| per feature for one model version, largest on top."""
    f = frame.sort_values("mean_abs_shap", ascending=True).tail(top)
    fig, ax = _figure(0.8 + 0.24 * max(len(f), 1))
    with mpl.rc_context(_STYLE):
        ax.barh(f["feature"].astype(str), f["mean_abs_shap"], color=STRATEGY)
        ax.set_xlabel("mean |SHAP| (score units)")
        ax.set_title(f"Model version {version}: what moves the score")
        ax.grid(axis="y", visible=False)
    return fig


def bootstrap_panel(draws: pd.DataFrame, observed: dict[str, float], low: float = 0.05,
                    high: float = 0.95) -> Figure:
    """Histogram of the bootstrapped Sharpe, CAGR and max drawdown: the shaded band holds
    90% of the paths; the dark line is the backtest as it happened."""
    fig, axes = _figure(2.8, ncols=3)
    with mpl.rc_context(_STYLE):
        for ax, col, label in zip(axes, ("sharpe", "cagr", "max_drawdown"),
                                  ("Sharpe", "CAGR", "max drawdown"), strict=True):
            x = draws[col].to_numpy()
            lo, hi = np.quantile(x, [low, high])
            ax.hist(x, bins=40, color=MUTED)
            ax.axvspan(lo, hi, color=STRATEGY, alpha=0.12)
            ax.axvline(observed[col], color=STRATEGY, lw=1.6)
            ax.set_title(label)
            ax.set_yticks([])
            if col != "sharpe":
                _pct(ax, "x")
            else:
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1f}"))
    return fig


def nav_history(nav: pd.DataFrame) -> Figure:
    """The ledger's NAV by day, with gross and net exposure beneath."""
    fig, (top, bottom) = _figure(4.2, nrows=2, sharex=True, height_ratios=[2, 1])
    days = pd.to_datetime(nav["day"])
    with mpl.rc_context(_STYLE):
        top.plot(days, nav["nav"], color=STRATEGY, lw=1.6, marker="o" if len(nav) < 40 else None,
                 ms=3)
        top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        top.set_title("NAV")
        bottom.plot(days, nav["gross_exposure"], color="#102a43", lw=1.2, label="gross")
        bottom.plot(days, nav["net_exposure"], color=BASELINE, lw=1.2, label="net")
        bottom.axhline(0.0, color="#52606d", lw=0.6)
        bottom.legend(loc="upper left", ncols=2)
        bottom.set_ylabel("exposure")
        if len(days) <= 15:  # a few days: one tick each, not hours between them
            bottom.set_xticks(days, [d.strftime("%Y-%m-%d") for d in days])
            fig.autofmt_xdate()
        else:
            locator = AutoDateLocator(minticks=3, maxticks=9)
            bottom.xaxis.set_major_locator(locator)
            bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return fig


def book_bars(weights: pd.Series, top: int = 30) -> Figure:
    """Today's book: the largest positions by absolute weight, longs blue, shorts red."""
    w = weights[weights.abs().sort_values(ascending=False).index[:top]].sort_values()
    fig, ax = _figure(0.8 + 0.2 * max(len(w), 1))
    with mpl.rc_context(_STYLE):
        ax.barh(w.index.astype(str), w.to_numpy(),
                color=[STRATEGY if v >= 0 else "#b5475b" for v in w])
        _pct(ax, "x", 1)
        ax.axvline(0.0, color="#52606d", lw=0.6)
        ax.grid(axis="y", visible=False)
        ax.set_title("Book at the close (weight of NAV)")
    return fig


def live_ic(series: pd.DataFrame, expected: float | None = None) -> Figure:
    """The champion's live daily rank IC (bars), its running mean and the running mean IC
    (lines), against the rank IC its walk-forward earned (dashed)."""
    fig, ax = _figure(3.0)
    with mpl.rc_context(_STYLE):
        colors = [STRATEGY if v >= 0 else "#b5475b" for v in series["rank_ic"]]
        ax.bar(series.index, series["rank_ic"], color=colors, alpha=0.45, width=0.8,
               label="daily rank IC")
        n = np.arange(1, len(series) + 1)
        ax.plot(series.index, series["rank_ic"].cumsum() / n, color=STRATEGY, lw=1.6,
                label="rank IC, running mean")
        ax.plot(series.index, series["ic"].cumsum() / n, color=BASELINE, lw=1.2,
                label="IC, running mean")
        if expected is not None and np.isfinite(expected):
            ax.axhline(expected, color="#52606d", lw=1.0, ls="--",
                       label=f"walk-forward rank IC {expected:.3f}")
        ax.axhline(0.0, color="#52606d", lw=0.6)
        ax.set_title("Live IC of the champion's signals (labels realized)")
        # beneath the axes: over them it would hide the first days' bars
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=4, fontsize=8)
        locator = AutoDateLocator(minticks=3, maxticks=9)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return fig
