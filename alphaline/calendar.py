"""Exchange trading days: every date in alphaline is a session of the configured exchange."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from alphaline.errors import MissingPrerequisite


@lru_cache(maxsize=8)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name, start="1990-01-01")


def sessions(name: str, start: dt.date | str, end: dt.date | str) -> pd.DatetimeIndex:
    """Exchange sessions in [start, end] as tz-naive midnight timestamps."""
    return _calendar(name).sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))


def is_session(name: str, day: dt.date | str) -> bool:
    return bool(_calendar(name).is_session(pd.Timestamp(day)))


def previous_session(name: str, day: dt.date | str) -> pd.Timestamp:
    return _calendar(name).previous_session(pd.Timestamp(day))


def latest_session(name: str, day: dt.date | str) -> pd.Timestamp:
    """``day`` if it is a session, else the last session before it."""
    ts = pd.Timestamp(day)
    cal = _calendar(name)
    return ts if cal.is_session(ts) else cal.date_to_session(ts, direction="previous")


@lru_cache(maxsize=8)
def sessions_per_year(name: str) -> float:
    """Average sessions per calendar year of the exchange over 2010–2019: the one
    annualization constant of every ratio, fixed so that a figure does not move with the date
    it is computed on."""
    cal = _calendar(name)
    counts = [len(cal.sessions_in_range(f"{y}-01-01", f"{y}-12-31")) for y in range(2010, 2020)]
    return float(sum(counts) / len(counts))


def session_close(name: str, day: dt.date | str) -> dt.datetime:
    """When the session ``day`` closes (timezone-aware UTC; early closes included)."""
    return _calendar(name).session_close(pd.Timestamp(day)).to_pydatetime()


def require_settled(name: str, day: dt.date, delay: dt.timedelta, now: dt.datetime,
                    tz: str) -> None:
    """Refuse a day whose close (plus ``delay`` for the final bars) is still ahead of ``now``:
    trading it would read a bar that does not exist yet, or one that will still change."""
    ready = session_close(name, day) + delay
    if now < ready:
        local = ready.astimezone(zoneinfo.ZoneInfo(tz))
        wait = int((ready - now).total_seconds() // 60)
        raise MissingPrerequisite(
            f"{day} is not settled: the {name} session closes at "
            f"{session_close(name, day).astimezone(zoneinfo.ZoneInfo(tz)):%H:%M %Z} and the "
            f"day runs from {local:%Y-%m-%d %H:%M %Z} (close + {delay.total_seconds() / 60:.0f} "
            f"min), {wait} min from now; "
            f"`alphaline trade --force` runs it anyway")
