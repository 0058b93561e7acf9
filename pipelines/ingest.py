"""Ingest: bars from the configured source, validated, then written where they belong.

Two stores. Research history (``data/raw``, ``data/validated``) is a DVC output that
``dvc checkout``/``dvc repro`` may rewind; what the daily flow appends lives in the live store
(``state/live/bars.parquet``), which nothing in DVC touches. The research ingest reads the
live store up to ``data.end`` beside the source, so bars the source can no longer deliver
are not lost.

Nothing downstream is written unless the part of the batch that proceeds passed every rule:
a batch failure writes nothing; failing symbols are quarantined and left out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from alphaline.calendar import latest_session, sessions
from alphaline.errors import MissingPrerequisite
from alphaline.features.definitions import check_inputs, feature_names
from alphaline.io import write_parquet
from alphaline.pipelines.sources import (
    BAR_COLUMNS,
    OPTIONAL_COLUMNS,
    make_source,
    provided_fields,
)
from alphaline.pipelines.validate import ValidationReport, validate_or_quarantine
from alphaline.project import Project

log = logging.getLogger(__name__)


def fetch(project: Project, start: dt.date, end: dt.date) -> pd.DataFrame:
    return make_source(project.params, project.root).load(start, end)


def validate_batch(project: Project, bars: pd.DataFrame, as_of: dt.date | None = None,
                   expected: Mapping[str, str] | None = None) -> ValidationReport:
    """Great Expectations on one batch, acted on by scope: a batch failure is quarantined
    (``ValidationFailed``); failing symbols are held back (``report.quarantined``)."""
    p = project.params
    return validate_or_quarantine(bars, p.validation, p.data.calendar, project.gx_dir,
                                  project.quarantine_dir, as_of, expected)


def check_feature_inputs(project: Project, bars: pd.DataFrame, where: str) -> None:
    """Refuse, before anything is computed, selected features whose inputs ``bars`` lack."""
    check_inputs(feature_names(project.params.features.sets), provided_fields(bars), where)


def clean(bars: pd.DataFrame) -> pd.DataFrame:
    """Validated bars in contract form: contract columns only, sorted by (symbol, date)."""
    keep = [c for c in [*BAR_COLUMNS, *OPTIONAL_COLUMNS] if c in bars.columns]
    return bars[keep].sort_values(["symbol", "date"], ignore_index=True)


def merge(existing: pd.DataFrame | None, batch: pd.DataFrame) -> pd.DataFrame:
    """New rows win over stored rows with the same (symbol, date)."""
    if existing is None or existing.empty:
        return clean(batch)
    combined = pd.concat([existing, clean(batch)], ignore_index=True)
    combined = combined.drop_duplicates(["symbol", "date"], keep="last")
    return clean(combined)


def load_validated(project: Project) -> pd.DataFrame:
    if not project.validated_bars.is_file():
        raise MissingPrerequisite(
            f"{project.validated_bars} not found: run `alphaline ingest` and `alphaline "
            "validate` (or `dvc repro`) first")
    return pd.read_parquet(project.validated_bars)


def read_live(project: Project, start: dt.date | None = None,
              end: dt.date | None = None) -> pd.DataFrame | None:
    """The live store's bars in [start, end], each tagged with the store as its origin."""
    if not project.live_bars.is_file():
        return None
    bars = pd.read_parquet(project.live_bars)
    if start is not None:
        bars = bars[bars["date"] >= pd.Timestamp(start)]
    if end is not None:
        bars = bars[bars["date"] <= pd.Timestamp(end)]
    return bars.assign(origin=str(project.live_bars)) if len(bars) else None


def with_live(live: pd.DataFrame | None, source: pd.DataFrame) -> pd.DataFrame:
    """The source's bars plus the live store's bars the source no longer delivers (the
    source wins where both have a (symbol, date): it may carry a correction)."""
    if live is None or live.empty:
        return source
    combined = pd.concat([live, source], ignore_index=True)
    dated = combined["date"].notna()
    keep = ~combined.duplicated(["symbol", "date"], keep="last") | ~dated
    return combined[keep].sort_values(["symbol", "date"], ignore_index=True)


def ingest_history(project: Project) -> pd.DataFrame:
    """The research history [data.start, data.end] from the source and the live store
    → data/raw/bars.parquet; refused first when the selected features need columns that the
    data lack."""
    p = project.params.data
    bars = with_live(read_live(project, p.start, p.end), fetch(project, p.start, p.end))
    check_feature_inputs(project, bars, f"data.source {p.source!r}")
    write_parquet(bars, project.raw_bars)
    return bars


def validate_history(project: Project) -> ValidationReport:
    """data/raw → GX → data/validated: every symbol that passed (failing ones quarantined,
    or nothing written under ``on_symbol_failure: stop_batch`` or a batch failure)."""
    if not project.raw_bars.is_file():
        raise MissingPrerequisite(f"{project.raw_bars} not found: run `alphaline ingest` first")
    bars = pd.read_parquet(project.raw_bars)
    report = validate_batch(project, bars)
    write_parquet(clean(report.passed(bars)), project.validated_bars)
    return report


def fetch_window(project: Project, day: dt.date, lookback_sessions: int = 10) -> pd.DataFrame:
    """The daily fetch: the last few sessions up to ``day`` (overlap heals late corrections)."""
    cal = project.params.data.calendar
    day_ts = latest_session(cal, day)
    window = sessions(cal, day_ts - pd.Timedelta(days=lookback_sessions * 2 + 10), day_ts)
    start = window[-lookback_sessions - 1] if len(window) > lookback_sessions else window[0]
    return fetch(project, start.date(), day_ts.date())


def live_history(project: Project) -> pd.DataFrame | None:
    """What the daily flow builds on: the live store, seeded from (and filled in with) the
    research history; the live store wins where both hold a (symbol, date)."""
    research = pd.read_parquet(project.validated_bars) if project.validated_bars.is_file() \
        else None
    live = pd.read_parquet(project.live_bars) if project.live_bars.is_file() else None
    if research is None:
        return live
    return merge(research, live) if live is not None else clean(research)


def universe(history: pd.DataFrame | None, calendar: str, recent_sessions: int,
             where: str) -> dict[str, str]:
    """Symbols that traded in the history's last ``recent_sessions`` + 1 sessions: each is
    expected to have a bar in the next daily batch (symbol → where it is expected from)."""
    if history is None or history.empty:
        return {}
    last = pd.Timestamp(history["date"].max())
    recent = sessions(calendar, last - pd.Timedelta(days=3 * recent_sessions + 10), last)
    since = recent[-recent_sessions - 1] if len(recent) > recent_sessions else recent[0]
    active = history.loc[history["date"] >= since, "symbol"].astype(str).unique()
    return {s: f"{where} (in the universe)" for s in sorted(active)}


@dataclass
class StoredBatch:
    """The live bars after today's batch, and what validation held back or warned about."""

    bars: pd.DataFrame
    quarantined: dict[str, list[str]] = field(default_factory=dict)  # symbol → reasons
    warnings: list[str] = field(default_factory=list)


def store_batch(project: Project, batch: pd.DataFrame, day: dt.date) -> StoredBatch:
    """Validate a daily batch (fresh as of ``day``, every universe symbol present), then
    merge the part that passed into the live store. Research outputs are never written."""
    cal = project.params.data.calendar
    history = live_history(project)
    expected = universe(history, cal, project.params.validation.max_staleness_days,
                        str(project.live_bars))
    report = validate_batch(project, batch, as_of=latest_session(cal, day).date(),
                            expected=expected)
    merged = merge(history, report.passed(batch))
    check_feature_inputs(project, merged, str(project.live_bars))
    write_parquet(merged, project.live_bars)
    return StoredBatch(merged, report.quarantined, report.warnings)
