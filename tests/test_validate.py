import datetime as dt
import hashlib
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaline.config import load_params
from alphaline.flows.cli import EXIT_INVALID_DATA, app
from alphaline.pipelines.synthetic import generate_market
from alphaline.pipelines.validate import ValidationFailed, validate_bars, validate_or_quarantine
from tests.conftest import REPO, make_project

PARAMS = load_params(REPO / "params.yaml").validation


@pytest.fixture(scope="module")
def good():
    bars, _ = generate_market(4, "2023-01-03", "2023-03-31", seed=1)
    bars["origin"] = "prices/good.csv"
    return bars


def run(bars, tmp_path, as_of=None):
    return validate_bars(bars, PARAMS, "XNYS", tmp_path / "gx", as_of)


def test_good_batch_passes(good, tmp_path):
    report = run(good, tmp_path, as_of=dt.date(2023, 3, 31))
    assert report.success and report.failures == []
    assert report.docs_url and report.docs_url.endswith("index.html")


@pytest.mark.parametrize(("row", "column", "value", "rule"), [
    (5, "close", lambda b: -1.0, "value within its allowed range"),
    (7, "high", lambda b: b.loc[7, "low"] * 0.9, "high >= open"),
    (9, "volume", lambda b: None, "no missing values"),
    (9, "volume", lambda b: -5.0, "value within its allowed range"),
    (11, "date", lambda b: pd.Timestamp("2023-01-07"), "date is an exchange session"),
    (12, "date", lambda b: b.loc[11, "date"], "unique (symbol, date)"),
    (20, "close", lambda b: b.loc[20, "high"] * 3, "one-day move"),
])
def test_each_rule_names_file_symbol_dates(good, tmp_path, row, column, value, rule):
    bad = good.copy()
    bad.loc[row, column] = value(bad)
    bad["high"] = bad[["high", "close"]].max(axis=1) if column == "close" else bad["high"]
    report = run(bad, tmp_path)
    assert not report.success
    lines = [line for f in report.failures for line in f.lines()]
    hits = [line for line in lines if rule in line]
    assert hits, lines
    assert any("prices/good.csv" in h and "SYN000" in h and "2023-" in h for h in hits), hits


def test_a_recorded_split_allows_the_move(good, tmp_path):
    bad = good.copy()
    bad["split_ratio"] = 1.0
    bad.loc[20:, "close"] = bad.loc[20:, "close"] * 0.25
    bad.loc[20:, ["open", "high", "low"]] = bad.loc[20:, ["open", "high", "low"]] * 0.25
    bad = bad[bad["symbol"] == "SYN000"]
    assert not run(bad, tmp_path).success
    bad.loc[20, "split_ratio"] = 4.0
    assert run(bad, tmp_path).success


def test_unsorted_dates_and_wrong_dtype_fail(good, tmp_path):
    shuffled = pd.concat([good.iloc[10:], good.iloc[:10]], ignore_index=True)
    report = run(shuffled, tmp_path)
    assert any("strictly increasing" in f.rule for f in report.failures)
    typed = good.copy()
    typed["close"] = typed["close"].astype(str)
    report = run(typed, tmp_path)
    assert any("dtype" in f.rule and f.column == "close" for f in report.failures)


def test_stale_data_fails_freshness(good, tmp_path):
    report = run(good, tmp_path, as_of=dt.date(2023, 4, 28))
    assert [f.column for f in report.failures] == ["check_sessions_stale"]
    assert "SYN000: 1 row(s) on 2023-03-31" in report.summary()


def test_missing_column_is_reported(good, tmp_path):
    report = run(good.drop(columns=["volume"]), tmp_path)
    assert not report.success
    assert "missing columns ['volume']" in report.summary()


def test_quarantine_keeps_batch_and_reasons(good, tmp_path):
    bad = good.copy()
    bad.loc[3, "close"] = -2.0
    with pytest.raises(ValidationFailed) as err:
        validate_or_quarantine(bad, PARAMS, "XNYS", tmp_path / "gx", tmp_path / "quarantine")
    folder = err.value.quarantine_dir
    assert folder.parent == tmp_path / "quarantine"
    assert len(pd.read_parquet(folder / "bars.parquet")) == len(bad)
    assert json.loads((folder / "gx_result.json").read_text())["success"] is False
    assert "SYN000" in (folder / "failures.txt").read_text()


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_cli_quarantines_bad_files_and_changes_nothing(tmp_path):
    """A user's CSV folder with one bad row: exit 3, quarantine, validated data untouched."""
    external = tmp_path / "external"
    external.mkdir()
    bars, _ = generate_market(3, "2022-01-03", "2023-06-30", seed=2)
    for sym, frame in bars.groupby("symbol"):
        frame.drop(columns="symbol").to_csv(external / f"{sym}.csv", index=False)
    project = make_project(tmp_path / "p", data__source="files", data__files__path=str(external))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--root", str(project.root)]).exit_code == 0
    assert runner.invoke(app, ["validate", "--root", str(project.root)]).exit_code == 0
    before = digest(project.validated_bars)

    frame = pd.read_csv(external / "SYN001.csv")
    frame.loc[40, "low"] = frame.loc[40, "high"] * 1.1
    frame.to_csv(external / "SYN001.csv", index=False)
    assert runner.invoke(app, ["ingest", "--root", str(project.root)]).exit_code == 0
    result = runner.invoke(app, ["validate", "--root", str(project.root)])
    assert result.exit_code == EXIT_INVALID_DATA, result.output
    assert "SYN001.csv" in result.output and "SYN001" in result.output
    assert digest(project.validated_bars) == before
    assert len(list(project.quarantine_dir.iterdir())) == 1
