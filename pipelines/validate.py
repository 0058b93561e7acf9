"""Validate a batch of bars with Great Expectations; quarantine it when any rule fails.

Rules that GX has no expectation for (exchange calendar, per-symbol order, one-day moves
without a split record, freshness) are computed as check columns first and then asserted by
GX, so that every rule lands in one GX result and in the Data Docs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd

from alphaline.calendar import sessions
from alphaline.config import ValidationParams
from alphaline.errors import DataRejected
from alphaline.io import write_json, write_parquet, write_text
from alphaline.pipelines.sources import BAR_COLUMNS

log = logging.getLogger(__name__)

PRICE_COLUMNS = ["open", "high", "low", "close"]
SUITE_NAME = "bars"

# What each expectation means to a person reading the quarantine report.
RULES = {
    "expect_table_columns_to_match_set": "required columns present",
    "expect_column_values_to_be_of_type": "column has the contract dtype",
    "expect_column_values_to_not_be_null": "no missing values",
    "expect_column_values_to_be_between": "value within its allowed range",
    "expect_compound_columns_to_be_unique": "unique (symbol, date)",
    "expect_column_values_to_be_in_set": "check column holds",
    "expect_column_max_to_be_between": "last date fresh enough",
}

CHECK_RULES = {
    "check_on_calendar": "date is an exchange session",
    "check_sorted": "dates strictly increasing within each symbol",
    "check_move": "one-day move within the limit unless a split is recorded",
}


@dataclass
class Failure:
    rule: str
    column: str | None
    rows: int
    details: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{self.rule}" + (f" [{self.column}]" if self.column else "")
        if not self.details:
            return [f"{head}: failed ({self.rows} rows)"]
        return [f"{head}: {d}" for d in self.details]


@dataclass
class ValidationReport:
    success: bool
    failures: list[Failure]
    result: dict
    rows: int
    docs_url: str | None = None

    def summary(self) -> str:
        return "\n".join(line for f in self.failures for line in f.lines())


class ValidationFailed(DataRejected):
    def __init__(self, report: ValidationReport, quarantine_dir: Path):
        self.report, self.quarantine_dir = report, quarantine_dir
        super().__init__(
            f"batch failed validation; quarantined in {quarantine_dir}\n{report.summary()}"
        )


def add_check_columns(bars: pd.DataFrame, params: ValidationParams, calendar: str,
                      as_of: dt.date | None) -> pd.DataFrame:
    """Derive one boolean column per rule GX cannot express directly (pure, row-aligned)."""
    frame = bars.copy()
    dates = pd.to_datetime(frame["date"], errors="coerce")
    valid = dates.dropna()
    if valid.empty:
        frame["check_on_calendar"] = False
    else:
        cal = sessions(calendar, valid.min(), valid.max())
        frame["check_on_calendar"] = dates.isin(cal)
    prev_date = dates.groupby(frame["symbol"]).shift(1)
    frame["check_sorted"] = prev_date.isna() | (dates > prev_date)
    close = pd.to_numeric(frame["close"], errors="coerce")
    order = dates.sort_values(kind="stable").index
    prev_close = close.loc[order].groupby(frame.loc[order, "symbol"]).shift(1).reindex(frame.index)
    move = (close / prev_close - 1.0).abs()
    split = frame["split_ratio"].fillna(1.0) != 1.0 if "split_ratio" in frame else False
    frame["check_move"] = move.isna() | (move <= params.max_abs_daily_return) | split
    if as_of is not None:
        cal = sessions(calendar, min(valid.min(), pd.Timestamp(as_of)), as_of)
        position = pd.Series(np.arange(len(cal)), index=cal)
        # Judged on each symbol's last row only (other rows stay null, which GX skips).
        last = dates.groupby(frame["symbol"]).transform("max")
        stale = (len(cal) - 1 - dates.map(position)).astype("float64")
        frame["check_sessions_stale"] = stale.where(dates == last)
    return frame


def build_suite(params: ValidationParams, freshness: bool) -> gx.ExpectationSuite:
    e = gx.expectations
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    suite.add_expectation(e.ExpectTableColumnsToMatchSet(column_set=BAR_COLUMNS, exact_match=False))
    suite.add_expectation(e.ExpectColumnValuesToBeOfType(column="date", type_="datetime64[ns]"))
    for col in ["symbol", "date", *PRICE_COLUMNS, "volume"]:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    for col in [*PRICE_COLUMNS, "volume"]:
        suite.add_expectation(e.ExpectColumnValuesToBeOfType(column=col, type_="float64"))
    for col in PRICE_COLUMNS:
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=col, min_value=0,
                                                              strict_min=True))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    for a, b in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        suite.add_expectation(e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"))
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "date"]))
    for col in CHECK_RULES:
        suite.add_expectation(e.ExpectColumnValuesToBeInSet(column=col, value_set=[True]))
    if freshness:
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(
            column="check_sessions_stale", max_value=params.max_staleness_days))
    return suite


def _context(gx_dir: Path):
    ctx = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    ctx.variables.progress_bars = {"globally": False}
    return ctx


def _describe_rows(frame: pd.DataFrame, index: list) -> list[str]:
    """One line per (origin, symbol): which dates broke the rule."""
    rows = frame.loc[frame.index.intersection(index)]
    out = []
    origin = rows["origin"] if "origin" in rows else pd.Series("<batch>", index=rows.index)
    for (src, sym), grp in rows.groupby([origin.astype(str), rows["symbol"].astype(str)]):
        days = pd.to_datetime(grp["date"], errors="coerce")
        listed = ", ".join(str(d.date()) if pd.notna(d) else "<no date>" for d in days[:5])
        more = f" (+{len(days) - 5} more)" if len(days) > 5 else ""
        out.append(f"{src}: symbol {sym}: {len(grp)} row(s) on {listed}{more}")
    return out


def validate_bars(bars: pd.DataFrame, params: ValidationParams, calendar: str, gx_dir: Path,
                  as_of: dt.date | None = None) -> ValidationReport:
    """Run the bars suite over ``bars``; nothing is written but GX's own store and docs."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    frame = bars.reset_index(drop=True)
    if not missing:
        frame = add_check_columns(frame, params, calendar, as_of)
    ctx = _context(gx_dir)
    source = ctx.data_sources.add_or_update_pandas("bars")
    asset = next((a for a in source.assets if a.name == "batch"), None) or \
        source.add_dataframe_asset("batch")
    batch_def = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add_or_update(build_suite(params, freshness=as_of is not None))
    definition = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(data=batch_def, suite=suite, name="bars_batch"))
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name="bars_checkpoint",
        validation_definitions=[definition],
        actions=[gx.checkpoint.UpdateDataDocsAction(name="update_docs")],
        result_format={"result_format": "COMPLETE"},
    ))
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    result = next(iter(run.run_results.values()))
    failures = []
    for res in result.results:
        if res.success:
            continue
        kwargs = res.expectation_config.kwargs
        column = kwargs.get("column") or (
            f"{kwargs['column_A']} vs {kwargs['column_B']}" if "column_A" in kwargs else None)
        if "column_A" in kwargs:
            rule = f"{kwargs['column_A']} >= {kwargs['column_B']}"
        else:
            rule = CHECK_RULES.get(column) or RULES.get(res.expectation_config.type,
                                                        res.expectation_config.type)
        index = res.result.get("unexpected_index_list") or []
        if res.exception_info and res.exception_info.get("raised_exception"):
            details = [res.exception_info.get("exception_message", "raised an error")]
        elif res.expectation_config.type == "expect_table_columns_to_match_set":
            details = [f"missing columns {missing}"]
        else:
            details = _describe_rows(frame, index)
        if column == "check_sessions_stale":
            rule = f"last date within {params.max_staleness_days} sessions of {as_of}"
        failures.append(Failure(rule=rule, column=column, rows=len(index), details=details))
    urls = ctx.get_docs_sites_urls()
    return ValidationReport(
        success=bool(run.success), failures=failures, result=result.to_json_dict(),
        rows=len(frame), docs_url=urls[0]["site_url"] if urls else None,
    )


def quarantine(bars: pd.DataFrame, report: ValidationReport, root: Path,
               now: dt.datetime | None = None) -> Path:
    """Keep the rejected batch with the reasons beside it; return its folder."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / stamp
    folder.mkdir(parents=True, exist_ok=False)
    write_parquet(bars.reset_index(drop=True), folder / "bars.parquet")
    write_json(report.result, folder / "gx_result.json")
    write_text(report.summary() + "\n", folder / "failures.txt")
    write_json({"rows": report.rows, "failed_rules": [f.rule for f in report.failures],
                "data_docs": report.docs_url}, folder / "summary.json")
    log.error("batch quarantined in %s:\n%s", folder, report.summary())
    return folder


def validate_or_quarantine(bars: pd.DataFrame, params: ValidationParams, calendar: str,
                           gx_dir: Path, quarantine_root: Path,
                           as_of: dt.date | None = None) -> ValidationReport:
    report = validate_bars(bars, params, calendar, gx_dir, as_of)
    if not report.success:
        raise ValidationFailed(report, quarantine(bars, report, quarantine_root))
    return report
