"""The Feast repository: DuckDB offline store over the Parquet feature table, SQLite online.

Definitions are built from the feature registry, so the Feast schema cannot drift from the
computation. Rows are stamped at the session close (UTC): a point-in-time join for a
decision at a close sees that day's features and never a later day's.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import yaml
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from feast.repo_config import RepoConfig
from feast.types import Float32
from feast.value_type import ValueType

from alphaline.features.definitions import get

PROJECT = "alphaline"
VIEW = "bar_features"
SERVICE = "alphaline_model"
TIMESTAMP = "event_timestamp"


@lru_cache(maxsize=4)
def _closes(calendar: str) -> pd.Series:
    cal = xcals.get_calendar(calendar, start="1990-01-01")
    return cal.schedule["close"]


def session_close(dates: pd.Series | pd.DatetimeIndex, calendar: str) -> pd.Series:
    """UTC close time of each session date: when its bar (and features) became known."""
    closes = _closes(calendar)
    stamps = pd.Series(pd.to_datetime(dates)).map(closes)
    if stamps.isna().any():
        bad = pd.Series(pd.to_datetime(dates))[stamps.isna()].iloc[0]
        raise ValueError(f"{bad.date()} is not a {calendar} session")
    return stamps.dt.tz_convert("UTC")


def repo_config(feast_dir: Path) -> RepoConfig:
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(feast_dir / "registry.db"),
        offline_store={"type": "duckdb"},
        online_store={"type": "sqlite", "path": str(feast_dir / "online.db")},
        entity_key_serialization_version=3,
        repo_path=str(feast_dir),
    )


def definitions(feature_table: Path, names: list[str]) -> list:
    symbol = Entity(name="symbol", join_keys=["symbol"], value_type=ValueType.STRING,
                    description="instrument ticker")
    source = FileSource(name="bar_features_source", path=str(feature_table),
                        timestamp_field=TIMESTAMP)
    view = FeatureView(
        name=VIEW,
        entities=[symbol],
        ttl=dt.timedelta(days=10),
        schema=[Field(name=d.name, dtype=Float32, description=d.description) for d in get(names)],
        source=source,
        online=True,
        description="daily bar features, known at the session close",
    )
    return [symbol, source, view, FeatureService(name=SERVICE, features=[view])]


def open_store(feast_dir: Path, feature_table: Path, names: list[str]) -> FeatureStore:
    """Open (and ``apply``) the store; also leaves a feature_store.yaml for the feast CLI."""
    feast_dir.mkdir(parents=True, exist_ok=True)
    config = repo_config(feast_dir)
    (feast_dir / "feature_store.yaml").write_text(yaml.safe_dump({
        "project": PROJECT, "provider": "local", "registry": str(feast_dir / "registry.db"),
        "offline_store": {"type": "duckdb"},
        "online_store": {"type": "sqlite", "path": str(feast_dir / "online.db")},
        "entity_key_serialization_version": 3,
    }))
    store = FeatureStore(config=config)
    store.apply(definitions(feature_table, names))
    return store


def to_feast_table(features: pd.DataFrame, calendar: str) -> pd.DataFrame:
    out = features.copy()
    out[TIMESTAMP] = session_close(out["date"], calendar).to_numpy()
    return out


def historical(store: FeatureStore, entities: pd.DataFrame, names: list[str],
               calendar: str, max_cells: int = 20_000_000) -> pd.DataFrame:
    """Point-in-time features for (symbol, date) rows, decided at each date's close.

    Large requests are joined in consecutive date ranges of at most ``max_cells`` values
    (rows × features), which bounds memory; each range is an ordinary point-in-time join.
    """
    entity_df = entities[["symbol", "date"]].copy()
    entity_df[TIMESTAMP] = session_close(entity_df["date"], calendar).to_numpy()
    refs = [f"{VIEW}:{n}" for n in names]
    dates = np.sort(entity_df["date"].unique())
    rows_per_date = max(len(entity_df) / max(len(dates), 1), 1)
    dates_per_chunk = max(int(max_cells / (rows_per_date * max(len(names), 1))), 1)
    parts = []
    for start in range(0, len(dates), dates_per_chunk):
        span = dates[start: start + dates_per_chunk]
        chunk = entity_df[entity_df["date"].between(span[0], span[-1])]
        parts.append(store.get_historical_features(entity_df=chunk, features=refs).to_df())
    out = pd.concat(parts, ignore_index=True).drop(columns=[TIMESTAMP])
    out["date"] = pd.to_datetime(out["date"])
    if out["date"].dt.tz is not None:  # Feast reads naive datetimes as UTC
        out["date"] = out["date"].dt.tz_convert("UTC").dt.tz_localize(None)
    out["date"] = out["date"].astype("datetime64[ns]")
    return entities[["symbol", "date"]].merge(out, on=["symbol", "date"], how="left")


def materialize_day(store: FeatureStore, day: pd.Timestamp, calendar: str) -> None:
    close = session_close(pd.DatetimeIndex([day]), calendar).iloc[0].to_pydatetime()
    store.materialize(start_date=close - dt.timedelta(hours=12),
                      end_date=close + dt.timedelta(minutes=1), feature_views=[VIEW])


def online_vectors(store: FeatureStore, symbols: list[str], names: list[str]) -> pd.DataFrame:
    refs = [f"{VIEW}:{n}" for n in names]
    out = store.get_online_features(features=refs, entity_rows=[{"symbol": s} for s in symbols])
    return out.to_df()[["symbol", *names]]
