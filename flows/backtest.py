"""backtest: the replay of the daily flow over history, as a flow run the Prefect UI shows
(a Markdown summary and a link to the HTML report)."""

from __future__ import annotations

import datetime as dt
import math

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from alphaline.console import run_log
from alphaline.pipelines.backtest import run_backtest
from alphaline.project import Project
from alphaline.reporting import stats as st
from alphaline.reporting.publish import link_artifact
from alphaline.runtime import configure_environment
from alphaline.trading.backtest.result import BacktestResult


def backtest_figures(result: BacktestResult) -> list[dict]:
    """``metric, value`` rows: the report's headline figures (after costs), costs by kind,
    fills and the equal-weight baseline's Sharpe on the same sessions."""
    daily = result.daily
    periods = int(result.meta.get("sessions_per_year", st.SESSIONS_PER_YEAR))
    figures = st.headline(daily["returns"], periods)
    rows = [{"metric": "sessions", "value": len(daily)},
            {"metric": "nav_start", "value": float(daily["nav"].iloc[0])},
            {"metric": "nav_end", "value": float(daily["nav"].iloc[-1])},
            *({"metric": k, "value": _finite(v)} for k, v in figures.items()),
            *({"metric": f"cost_{k}", "value": float(daily[k].sum())}
              for k in ("commission", "spread", "impact", "borrow") if k in daily),
            {"metric": "fills", "value": len(result.trades)}]
    if "equal_weight" in result.baselines:
        base = st.headline(result.baselines["equal_weight"].reindex(daily.index), periods)
        rows.append({"metric": "equal_weight_sharpe", "value": _finite(base["sharpe"])})
    return rows


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@flow(name="backtest", log_prints=True)
def backtest(start: dt.date, end: dt.date, root: str | None = None, retrain: str = "none",
             name: str | None = None, progress: bool = True) -> dict:
    """Replay ``[start, end]`` (``retrain``: none | monthly) and publish its report."""
    configure_environment()
    project = Project.load(root)
    project.ensure_dirs()
    with run_log("backtest", project.state_dir / "logs"):
        out = run_backtest(project, start, end, retrain=retrain, name=name,
                           progress=progress)
    daily = out.result.daily
    versions = ", ".join(out.result.versions["version"])
    summary = (f"# Backtest {daily.index[0].date()} → {daily.index[-1].date()}\n\n"
               f"{len(daily)} sessions, retrain {retrain}, models {versions}; NAV "
               f"{daily['nav'].iloc[0]:,.0f} → {daily['nav'].iloc[-1]:,.0f} after "
               f"{daily[['commission', 'spread', 'impact', 'borrow']].sum().sum():,.0f} of "
               f"costs; {len(out.result.trades):,} fills.\n\nReport: {out.report}\n")
    create_markdown_artifact(summary, key="backtest-summary",
                             description=f"backtest {out.directory.name}")
    link_artifact(out.report, key="backtest-report",
                  description=f"backtest {out.directory.name}: the HTML report")
    create_table_artifact(backtest_figures(out.result),
                          key="backtest-figures",
                          description=f"backtest {out.directory.name}: key figures")
    get_run_logger().info("backtest report: %s", out.report)
    return {"report": str(out.report), "directory": str(out.directory),
            "sessions": len(daily), "nav_start": float(daily["nav"].iloc[0]),
            "nav_end": float(daily["nav"].iloc[-1]), "fills": len(out.result.trades),
            "versions": list(out.result.versions["version"]),
            "mlflow_run_id": out.mlflow_run_id}
