"""Validate a batch of bars with Great Expectations, and act on failures by their scope.

Rules that GX has no expectation for (exchange calendar, per-symbol order, one-day moves,
freshness) are computed as check columns first and then asserted by GX, so that every rule
on the rows lands in one GX result and in the Data Docs. Two presence rules cannot be asked
of rows that are not there and are judged before GX: an empty file, and a symbol the
universe holds that has no bar on the day the daily batch is for.

Scope: a failure of the batch's shape (missing columns, a wrong dtype, rows with no symbol)
stops the batch; a failure confined to named symbols quarantines those symbols
(``validation.on_symbol_failure: quarantine_symbol``) while the rest proceeds, or stops the
batch (``stop_batch``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd

from alphaline.calendar import latest_session, sessions
from alphaline.config import ValidationParams
from alphaline.errors import DataRejected
from alphaline.io import write_json, write_parquet, write_text
from alphaline.pipelines.sources import (
    REQUIRED_COLUMNS,
    is_placeholder,
    provided_fields,
)

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
    "check_no_spike": "one-day move beyond the limit that the next session undoes (bad tick)",
    "check_split_recorded": "one-day move matches a split factor but no split_ratio is "
                            "recorded (split rule)",
    "check_move_confirmed": "one-day move beyond the limit on the last bar: held back until "
                            "the next session shows whether it persists",
}
EMPTY_FILE = "file has no bars (an empty file is not a silent drop)"
MISSING_TODAY = "symbol in the universe has no bar on the batch's day"


@dataclass
class Failure:
    rule: str
    column: str | None
    rows: int
    details: list[str] = field(default_factory=list)
    # Symbols the failing rows belong to; empty when the failure is the batch's (its shape,
    # or rows with no symbol), which stops the batch whatever on_symbol_failure says.
    symbols: list[str] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return "symbol" if self.symbols else "batch"

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
    warnings: list[str] = field(default_factory=list)
    # Filled by validate_or_quarantine when symbols were held back and the rest proceeds.
    quarantined: dict[str, list[str]] = field(default_factory=dict)
    quarantine_dir: Path | None = None

    def summary(self) -> str:
        return "\n".join(line for f in self.failures for line in f.lines())

    @property
    def batch_failures(self) -> list[Failure]:
        return [f for f in self.failures if f.scope == "batch"]

    def symbol_reasons(self) -> dict[str, list[str]]:
        """Each failing symbol with the lines that name it (or the rule when none do)."""
        out: dict[str, list[str]] = {}
        for f in self.failures:
            for sym in f.symbols:
                mine = [line for line in f.lines() if f"symbol {sym}:" in line]
                out.setdefault(sym, []).extend(mine or [f.rule])
        return out

    def passed(self, bars: pd.DataFrame) -> pd.DataFrame:
        """The rows that proceed: all but the quarantined symbols' and empty-file marks."""
        keep = ~bars["symbol"].isin(list(self.quarantined)) & ~is_placeholder(bars)
        return bars[keep]


class ValidationFailed(DataRejected):
    def __init__(self, report: ValidationReport, quarantine_dir: Path, why: str = ""):
        self.report, self.quarantine_dir = report, quarantine_dir
        super().__init__(
            f"batch failed validation{why}; quarantined in {quarantine_dir}\n{report.summary()}"
        )


def split_like(ratio: pd.Series, factors: list[float], tolerance: float) -> pd.Series:
    """Whether each price ratio is within ``tolerance`` of a split factor or its inverse."""
    candidates = np.array([*factors, *(1.0 / f for f in factors)])
    r = ratio.to_numpy(dtype="float64")[:, None]
    return pd.Series((np.abs(r / candidates - 1.0) <= tolerance).any(axis=1), index=ratio.index)


def judge_moves(bars: pd.DataFrame, params: ValidationParams) -> pd.DataFrame:
    """Row-aligned verdicts on one-day moves beyond ``max_abs_daily_return`` (pure).

    The size of a move is the larger of the price ratio and its inverse, minus 1, so a
    halving counts like a doubling. A move beyond the limit on a row without a recorded
    split is a *spike* when the next close returns to within ``revert_tolerance`` of the
    close before it (a bad tick: refused), *unconfirmed* when there is no next close yet
    (held back), and otherwise *persistent*: refused when the ratio matches a split factor
    (a split nobody recorded), else accepted with a warning (a real move, e.g. earnings).
    The row that undoes a spike is not judged again.
    """
    dates = pd.to_datetime(bars["date"], errors="coerce")
    close = pd.to_numeric(bars["close"], errors="coerce")
    order = pd.DataFrame({"s": bars["symbol"].astype(str), "d": dates}).sort_values(
        ["s", "d"], kind="stable").index
    c, sym = close.loc[order], bars["symbol"].astype(str).loc[order]
    prev, nxt = c.groupby(sym).shift(1), c.groupby(sym).shift(-1)
    ratio = c / prev
    size = np.maximum(ratio, 1.0 / ratio) - 1.0
    recorded = (bars["split_ratio"].loc[order].fillna(1.0) != 1.0) if "split_ratio" in bars \
        else pd.Series(False, index=order)
    big = (size > params.max_abs_daily_return) & ~recorded
    reverts = (nxt / prev - 1.0).abs() <= params.revert_tolerance
    first_spike = big & reverts
    undoes = first_spike.groupby(sym).shift(1, fill_value=False).astype(bool)
    judged = big & ~undoes
    spike = judged & reverts
    unconfirmed = judged & nxt.isna()
    persistent = judged & nxt.notna() & ~reverts
    split = persistent & split_like(ratio, params.split_factors, params.split_tolerance)
    out = pd.DataFrame({"ratio": ratio, "spike": spike, "unconfirmed": unconfirmed,
                        "split": split, "warn": persistent & ~split}, index=order)
    return out.reindex(bars.index)


def move_warnings(bars: pd.DataFrame, moves: pd.DataFrame) -> list[str]:
    rows = bars.loc[moves["warn"].fillna(False).astype(bool)]
    origin = rows["origin"].astype(str) if "origin" in rows else pd.Series("<batch>",
                                                                           index=rows.index)
    return [f"{origin[i]}: symbol {rows.at[i, 'symbol']}: one-day move of "
            f"{moves.at[i, 'ratio'] - 1:+.1%} on {pd.Timestamp(rows.at[i, 'date']).date()} "
            "persists: accepted (a real move; check the news or a corporate action)"
            for i in rows.index]


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
    moves = judge_moves(frame, params)
    frame["check_no_spike"] = ~moves["spike"].fillna(False).astype(bool)
    frame["check_split_recorded"] = ~moves["split"].fillna(False).astype(bool)
    frame["check_move_confirmed"] = ~moves["unconfirmed"].fillna(False).astype(bool)
    if as_of is not None and not valid.empty:
        cal = sessions(calendar, min(valid.min(), pd.Timestamp(as_of)), as_of)
        position = pd.Series(np.arange(len(cal)), index=cal)
        # Judged on each symbol's last row only (other rows stay null, which GX skips).
        last = dates.groupby(frame["symbol"]).transform("max")
        stale = (len(cal) - 1 - dates.map(position)).astype("float64")
        frame["check_sessions_stale"] = stale.where(dates == last)
    return frame


def build_suite(params: ValidationParams, freshness: bool,
                fields: list[str] | None = None) -> gx.ExpectationSuite:
    """The bars suite over the OHLCV ``fields`` the batch carries (close always; open, high,
    low and volume when present: close-only data is a valid batch)."""
    fields = fields or ["open", "high", "low", "close", "volume"]
    prices = [c for c in PRICE_COLUMNS if c in fields]
    e = gx.expectations
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    suite.add_expectation(e.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS,
                                                         exact_match=False))
    suite.add_expectation(e.ExpectColumnValuesToBeOfType(column="date", type_="datetime64[ns]"))
    for col in ["symbol", "date", *fields]:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    for col in fields:
        suite.add_expectation(e.ExpectColumnValuesToBeOfType(column=col, type_="float64"))
    for col in prices:
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=col, min_value=0,
                                                              strict_min=True))
    if "volume" in fields:
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    for a, b in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        if a in fields and b in fields:
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


def _symbols_of(frame: pd.DataFrame, index: list) -> list[str]:
    """The symbols of the failing rows; empty when any of them has none (a batch failure)."""
    symbols = frame.loc[frame.index.intersection(index), "symbol"] \
        if "symbol" in frame else pd.Series(dtype=object)
    if symbols.empty or symbols.isna().any():
        return []
    return sorted(symbols.astype(str).unique())


def presence_failures(bars: pd.DataFrame, calendar: str, as_of: dt.date | None,
                      expected: Mapping[str, str] | None) -> list[Failure]:
    """Empty files (their placeholder rows) and, for a daily batch, symbols the universe
    (``expected``: symbol → where it is expected from) holds that have no bar on ``as_of``."""
    out = []
    marks = bars[is_placeholder(bars)] if "date" in bars and "close" in bars else bars.iloc[:0]
    for origin, grp in marks.groupby(marks.get("origin", pd.Series("<batch>", index=marks.index))
                                     .astype(str)):
        named = grp["symbol"].dropna().astype(str).tolist()
        who = f"symbol {named[0]}: " if named and grp["symbol"].notna().all() else ""
        out.append(Failure(rule=EMPTY_FILE, column=None, rows=0,
                           details=[f"{origin}: {who}the file holds no rows"],
                           symbols=named if grp["symbol"].notna().all() else []))
    if expected and as_of is not None and "date" in bars:
        day = latest_session(calendar, as_of)
        dates = pd.to_datetime(bars["date"], errors="coerce")
        have = set(bars.loc[dates == day, "symbol"].astype(str))
        for sym in sorted(set(expected) - have):
            out.append(Failure(rule=MISSING_TODAY, column=None, rows=0, symbols=[sym],
                               details=[f"{expected[sym]}: symbol {sym}: no bar on {day.date()}"
                                        " (a halt, a delisting or a late file)"]))
    return out


def validate_bars(bars: pd.DataFrame, params: ValidationParams, calendar: str, gx_dir: Path,
                  as_of: dt.date | None = None,
                  expected: Mapping[str, str] | None = None) -> ValidationReport:
    """Run the bars suite over ``bars``; nothing is written but GX's own store and docs.

    ``expected`` (daily batches): symbol → where the universe holds it; each must have a
    bar on ``as_of``'s session.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in bars.columns]
    frame = bars.reset_index(drop=True)
    presence = presence_failures(frame, calendar, as_of, expected) if not missing else []
    warnings: list[str] = []
    fields = provided_fields(frame) if not missing else []
    if not missing:
        frame = frame[~is_placeholder(frame)].reset_index(drop=True)
        frame = add_check_columns(frame, params, calendar, as_of)
        warnings = move_warnings(frame, judge_moves(frame, params))
        for line in warnings:
            log.warning("%s", line)
    ctx = _context(gx_dir)
    source = ctx.data_sources.add_or_update_pandas("bars")
    asset = next((a for a in source.assets if a.name == "batch"), None) or \
        source.add_dataframe_asset("batch")
    batch_def = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add_or_update(build_suite(params, freshness=as_of is not None,
                                                 fields=fields or None))
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
    failures = list(presence)
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
            index = []
        elif res.expectation_config.type == "expect_table_columns_to_match_set":
            details = [f"missing columns {missing}"]
            index = []
        else:
            details = _describe_rows(frame, index)
        if column == "check_sessions_stale":
            rule = f"last date within {params.max_staleness_days} sessions of {as_of}"
        failures.append(Failure(rule=rule, column=column, rows=len(index), details=details,
                                symbols=_symbols_of(frame, index)))
    urls = ctx.get_docs_sites_urls()
    return ValidationReport(
        success=bool(run.success) and not presence, failures=failures,
        result=result.to_json_dict(), rows=len(frame), warnings=warnings,
        docs_url=urls[0]["site_url"] if urls else None,
    )


def _stamp(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def quarantine(bars: pd.DataFrame, report: ValidationReport, root: Path,
               now: dt.datetime | None = None) -> Path:
    """Keep the rejected batch with the reasons beside it; return its folder."""
    folder = root / _stamp(now)
    folder.mkdir(parents=True, exist_ok=False)
    write_parquet(bars.reset_index(drop=True), folder / "bars.parquet")
    write_json(report.result, folder / "gx_result.json")
    write_text(report.summary() + "\n", folder / "failures.txt")
    write_json({"scope": "batch", "rows": report.rows,
                "failed_rules": [f.rule for f in report.failures],
                "symbols": report.symbol_reasons(), "data_docs": report.docs_url},
               folder / "summary.json")
    log.error("batch quarantined in %s:\n%s", folder, report.summary())
    return folder


def quarantine_symbols(bars: pd.DataFrame, report: ValidationReport, root: Path,
                       now: dt.datetime | None = None) -> Path:
    """Hold back the failing symbols' rows, with the reasons, while the rest proceeds."""
    reasons = report.symbol_reasons()
    folder = root / _stamp(now)
    folder.mkdir(parents=True, exist_ok=False)
    held = bars[bars["symbol"].astype(str).isin(list(reasons))]
    write_parquet(held.reset_index(drop=True), folder / "bars.parquet")
    write_json(report.result, folder / "gx_result.json")
    write_text("\n".join(f"{sym}: {line}" for sym, lines in reasons.items() for line in lines)
               + "\n", folder / "failures.txt")
    write_json({"scope": "symbol", "rows": len(held), "symbols": reasons,
                "data_docs": report.docs_url}, folder / "summary.json")
    log.error("symbols quarantined in %s (the rest proceeds): %s", folder,
              "; ".join(f"{s}: {r[0]}" for s, r in reasons.items()))
    return folder


def validate_or_quarantine(bars: pd.DataFrame, params: ValidationParams, calendar: str,
                           gx_dir: Path, quarantine_root: Path,
                           as_of: dt.date | None = None,
                           expected: Mapping[str, str] | None = None) -> ValidationReport:
    """Validate; act on the failures by scope.

    A batch failure, or any failure under ``on_symbol_failure: stop_batch``, quarantines the
    whole batch and raises ``ValidationFailed``. Otherwise the failing symbols are held
    back (``report.quarantined``: symbol → reasons) and ``report.passed(bars)`` is the part
    that proceeds: it passed every rule.
    """
    report = validate_bars(bars, params, calendar, gx_dir, as_of, expected)
    if report.success:
        return report
    if report.batch_failures:
        raise ValidationFailed(report, quarantine(bars, report, quarantine_root))
    if params.on_symbol_failure == "stop_batch":
        raise ValidationFailed(report, quarantine(bars, report, quarantine_root),
                               " (validation.on_symbol_failure: stop_batch)")
    report.quarantined = report.symbol_reasons()
    report.quarantine_dir = quarantine_symbols(bars, report, quarantine_root)
    return report
