"""`alphaline backtest` on a trained project: the replay, its walk-forward refits, the report."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from typer.testing import CliRunner

from alphaline.flows.cli import EXIT_CONFIG, app
from alphaline.models.registry import Registry
from alphaline.pipelines.backtest import labels_known_by, run_backtest


def test_backtest_with_monthly_refits_writes_its_report(trained_project):
    start, end = dt.date(2023, 5, 22), dt.date(2023, 6, 30)
    out = run_backtest(trained_project, start, end, retrain="monthly", name="wf",
                       progress=False)
    versions = out.result.versions.set_index("version")
    assert list(versions.index) == ["wf-2023-05", "wf-2023-06"]
    h = trained_project.params.features.label_horizon
    for version, row in versions.iterrows():
        # each refit saw only labels realized before the first day it traded
        assert row["trained_through"] < row["first_day"], version
        sessions_between = pd.bdate_range(row["trained_through"], row["first_day"])
        assert len(sessions_between) >= 2 + h
    traded = out.result.trades.groupby("model_version")["decided_on"].agg(["min", "max"])
    assert traded.loc["wf-2023-06", "min"] >= pd.Timestamp("2023-06-01")
    daily = out.result.daily
    assert daily.index[0].date() == start and daily.index[-1].date() == end
    assert daily["nav"].iloc[-1] != daily["nav"].iloc[0]
    assert set(out.result.baselines.columns) >= {"equal_weight", "reversal_1m"}
    html = out.report.read_text()
    assert out.report.name == "index.html"
    for section in ("Performance", "Turnover and costs", "Model explanations", "Trade journal"):
        assert f"<h2>{section}" in html
    summary = json.loads((out.directory / "summary.json").read_text())
    assert summary["versions"] == ["wf-2023-05", "wf-2023-06"]
    client = Registry.for_project(trained_project).client
    files = {a.path for a in client.list_artifacts(out.mlflow_run_id, "report")}
    assert "report/index.html" in files


def test_backtest_cli_resumes_and_refuses_bad_ranges(trained_project):
    runner = CliRunner()
    root = str(trained_project.root)
    args = ["backtest", "--start", "2023-06-12", "--end", "2023-06-30", "--name", "cli",
            "--root", root]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    page = first.output.strip().splitlines()[-1]
    assert page.endswith("reports/backtest/cli/index.html")
    again = runner.invoke(app, args)  # a finished run resumes at its last session
    assert again.exit_code == 0, again.output
    def summary(output: str) -> str:
        return next(line for line in output.splitlines() if "sessions, NAV" in line)

    assert summary(again.output) == summary(first.output)
    bad = runner.invoke(app, ["backtest", "--start", "2023-06-30", "--end", "2023-06-01",
                              "--root", root])
    assert bad.exit_code == EXIT_CONFIG and "before --start" in bad.output


def test_labels_known_by_a_day_end_before_it():
    dates = pd.bdate_range("2024-01-01", periods=10).to_numpy()
    labels = pd.DataFrame({"date": dates, "label": range(10)})
    known = labels_known_by(labels, dates, pd.Timestamp(dates[6]).date(), horizon=1)
    # close[t+2] must be at or before day 6: t ≤ 4
    assert known["date"].max() == dates[4]
