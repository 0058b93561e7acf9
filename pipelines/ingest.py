"""Ingest: bars from the configured source, validated, then merged into the validated store.

Nothing downstream is written unless the whole batch passes validation.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from alphaline.calendar import latest_session, sessions
from alphaline.errors import MissingPrerequisite
from alphaline.io import write_parquet
from alphaline.pipelines.sources import BAR_COLUMNS, OPTIONAL_COLUMNS, make_source
from alphaline.pipelines.validate import ValidationReport, validate_or_quarantine
from alphaline.project import Project

log = logging.getLogger(__name__)


def fetch(project: Project, start: dt.date, end: dt.date) -> pd.DataFrame:
    return make_source(project.params, project.root).load(start, end)


def validate_batch(project: Project, bars: pd.DataFrame, as_of: dt.date | None = None
                   ) -> ValidationReport:
    """Great Expectations on one batch; on failure it is quarantined (``ValidationFailed``)."""
    p = project.params
    return validate_or_quarantine(bars, p.validation, p.data.calendar, project.gx_dir,
                                  project.quarantine_dir, as_of)


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


def ingest_history(project: Project) -> pd.DataFrame:
    """The research history [data.start, data.end] → data/raw/bars.parquet."""
    bars = fetch(project, project.params.data.start, project.params.data.end)
    write_parquet(bars, project.raw_bars)
    return bars


def validate_history(project: Project) -> ValidationReport:
    """data/raw → GX → data/validated (only when every rule passes)."""
    if not project.raw_bars.is_file():
        raise MissingPrerequisite(f"{project.raw_bars} not found: run `alphaline ingest` first")
    bars = pd.read_parquet(project.raw_bars)
    report = validate_batch(project, bars)
    write_parquet(clean(bars), project.validated_bars)
    return report


def fetch_window(project: Project, day: dt.date, lookback_sessions: int = 10) -> pd.DataFrame:
    """The daily fetch: the last few sessions up to ``day`` (overlap heals late corrections)."""
    cal = project.params.data.calendar
    day_ts = latest_session(cal, day)
    window = sessions(cal, day_ts - pd.Timedelta(days=lookback_sessions * 2 + 10), day_ts)
    start = window[-lookback_sessions - 1] if len(window) > lookback_sessions else window[0]
    return fetch(project, start.date(), day_ts.date())


def store_batch(project: Project, batch: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Validate a daily batch (fresh as of ``day``), then merge it into the validated store."""
    validate_batch(project, batch, as_of=latest_session(project.params.data.calendar, day).date())
    existing = pd.read_parquet(project.validated_bars) if project.validated_bars.is_file() else None
    merged = merge(existing, batch)
    write_parquet(merged, project.validated_bars)
    return merged
