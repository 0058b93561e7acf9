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
    report = run(good.drop(columns=["close"]), tmp_path)
    assert not report.success and report.batch_failures
    assert "missing columns ['close']" in report.summary()


def test_close_only_batch_is_valid(good, tmp_path):
    close_only = good.drop(columns=["open", "high", "low", "volume"])
    assert run(close_only, tmp_path).success
    close_only.loc[4, "close"] = None
    assert "no missing values [close]" in run(close_only, tmp_path).summary()


def test_quarantine_keeps_batch_and_reasons(good, tmp_path):
    bad = good.copy()
    bad.loc[3, "close"] = -2.0
    stop = PARAMS.model_copy(update={"on_symbol_failure": "stop_batch"})
    with pytest.raises(ValidationFailed, match="on_symbol_failure: stop_batch") as err:
        validate_or_quarantine(bad, stop, "XNYS", tmp_path / "gx", tmp_path / "quarantine")
    folder = err.value.quarantine_dir
    assert folder.parent == tmp_path / "quarantine"
    assert len(pd.read_parquet(folder / "bars.parquet")) == len(bad)
    assert json.loads((folder / "gx_result.json").read_text())["success"] is False
    assert "SYN000" in (folder / "failures.txt").read_text()


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _external_project(tmp_path, **overrides):
    external = tmp_path / "external"
    external.mkdir()
    bars, _ = generate_market(3, "2022-01-03", "2023-06-30", seed=2)
    for sym, frame in bars.groupby("symbol"):
        frame.drop(columns="symbol").to_csv(external / f"{sym}.csv", index=False)
    project = make_project(tmp_path / "p", data__source="files", data__files__path=str(external),
                           **overrides)
    return project, external


def _break_low(external):
    frame = pd.read_csv(external / "SYN001.csv")
    frame.loc[40, "low"] = frame.loc[40, "high"] * 1.1
    frame.to_csv(external / "SYN001.csv", index=False)


def test_cli_stop_batch_quarantines_bad_files_and_changes_nothing(tmp_path):
    """on_symbol_failure: stop_batch — one bad row: exit 3, quarantine, validated untouched."""
    project, external = _external_project(tmp_path, validation__on_symbol_failure="stop_batch")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--root", str(project.root)]).exit_code == 0
    assert runner.invoke(app, ["validate", "--root", str(project.root)]).exit_code == 0
    before = digest(project.validated_bars)

    _break_low(external)
    assert runner.invoke(app, ["ingest", "--root", str(project.root)]).exit_code == 0
    result = runner.invoke(app, ["validate", "--root", str(project.root)])
    assert result.exit_code == EXIT_INVALID_DATA, result.output
    assert "SYN001.csv" in result.output and "SYN001" in result.output
    assert digest(project.validated_bars) == before
    assert len(list(project.quarantine_dir.iterdir())) == 1


def test_cli_quarantines_only_the_failing_symbol(tmp_path):
    """The default (quarantine_symbol): the bad symbol is held back, the rest proceeds."""
    project, external = _external_project(tmp_path)
    _break_low(external)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--root", str(project.root)]).exit_code == 0
    result = runner.invoke(app, ["validate", "--root", str(project.root)])
    assert result.exit_code == 0, result.output
    assert "1 symbol(s) quarantined" in result.output and "SYN001" in result.output
    validated = pd.read_parquet(project.validated_bars)
    assert sorted(validated["symbol"].unique()) == ["SYN000", "SYN002"]
    (folder,) = project.quarantine_dir.iterdir()
    held = pd.read_parquet(folder / "bars.parquet")
    assert set(held["symbol"]) == {"SYN001"} and len(held) > 300
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scope"] == "symbol"
    assert "low" in summary["symbols"]["SYN001"][0] and "SYN001.csv" in \
        summary["symbols"]["SYN001"][0]


def test_batch_failure_stops_the_batch_under_quarantine_symbol(good, tmp_path):
    bad = good.copy()
    bad.loc[3, "symbol"] = None  # a row no symbol owns: the batch's failure
    with pytest.raises(ValidationFailed):
        validate_or_quarantine(bad, PARAMS, "XNYS", tmp_path / "gx", tmp_path / "q")
    bad = good.copy()
    bad.loc[3, "close"] = -2.0
    report = validate_or_quarantine(bad, PARAMS, "XNYS", tmp_path / "gx", tmp_path / "q")
    assert list(report.quarantined) == ["SYN000"]
    assert set(report.passed(bad)["symbol"]) == {"SYN001", "SYN002", "SYN003"}


def _one_symbol(good, row: int, factor: float, persist: bool):
    """SYN000 with its prices × ``factor`` from ``row`` on (or on that one bar only)."""
    bars = good[good["symbol"] == "SYN000"].reset_index(drop=True).copy()
    scale = pd.Series(1.0, index=bars.index)
    if persist:
        scale.loc[row:] = factor
    else:
        scale.loc[row] = factor
    for col in ["open", "high", "low", "close"]:
        bars[col] = bars[col] * scale
    return bars


def test_move_that_persists_is_accepted_with_a_warning(good, tmp_path):
    """AMD on 2016-04-22: +52 % on earnings, and it stayed."""
    bars = _one_symbol(good, 20, 1.52, persist=True)
    report = run(bars, tmp_path)
    assert report.success, report.summary()
    assert len(report.warnings) == 1 and "one-day move of +5" in report.warnings[0]
    assert "SYN000" in report.warnings[0] and "persists" in report.warnings[0]


def test_spike_that_reverts_is_a_bad_tick(good, tmp_path):
    bars = _one_symbol(good, 20, 10.0, persist=False)  # one bar ×10, the next session back
    report = run(bars, tmp_path)
    assert not report.success
    assert [f.column for f in report.failures] == ["check_no_spike"]
    assert "bad tick" in report.summary() and "SYN000" in report.summary()


def test_two_for_one_drop_without_a_record_needs_a_split(good, tmp_path):
    bars = _one_symbol(good, 20, 0.5, persist=True)
    report = run(bars, tmp_path)
    assert [f.column for f in report.failures] == ["check_split_recorded"]
    assert "split rule" in report.summary()
    bars["split_ratio"] = 1.0
    bars.loc[20, "split_ratio"] = 2.0
    assert run(bars, tmp_path).success


def test_a_big_move_on_the_last_bar_waits_for_the_next_session(good, tmp_path):
    last = int((good["symbol"] == "SYN000").sum()) - 1
    bars = _one_symbol(good, last, 1.8, persist=True)
    report = run(bars, tmp_path)
    assert [f.column for f in report.failures] == ["check_move_confirmed"]


def test_a_universe_symbol_without_todays_bar_is_named(good, tmp_path):
    day = dt.date(2023, 3, 31)
    batch = good[~((good["symbol"] == "SYN002") & (good["date"] == pd.Timestamp(day)))]
    expected = {s: "state/live/bars.parquet" for s in ["SYN000", "SYN001", "SYN002", "SYN003"]}
    report = validate_bars(batch, PARAMS, "XNYS", tmp_path / "gx", day, expected)
    assert not report.success
    (failure,) = report.failures
    assert failure.symbols == ["SYN002"] and "no bar on 2023-03-31" in failure.details[0]
