"""The Feast repository: DuckDB offline store over the Parquet feature table, SQLite online.

Definitions are built from the feature registry, so the Feast schema cannot drift from the
computation. One feature view per feature set, all over the same table: a training set
names only the views of the sets its features belong to, so a model on the core set never
reads Alpha158's columns. Rows are stamped at the session close (UTC): a point-in-time join
for a decision at a close sees that day's features and never a later day's.

Online, each set is served packed: a second view per set (``<set>_online``) holds the set's
vector as one ``Array(Float32)`` value per symbol, over a small table of the materialized
day's rows beside the feature table. SQLite then returns one value per set and symbol
instead of one per feature: 210 features for 500 symbols read in about 0.1 s instead of
1.5 s (docs/benchmarks.md, "Feast"). The scalar views stay offline (training, the gate,
the TFT's encoder window); the vector's column order is in its view's tags.

The offline store is Feast's DuckDB store with its point-in-time join done as an ASOF row
match plus a columnar gather (``features.offline_store``): the stock join takes 73 s and
10.7 GB for 1.26 M rows × 210 features; see docs/benchmarks.md ("Feast").
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import yaml
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from feast.repo_config import RepoConfig
from feast.types import Array, Float32
from feast.value_type import ValueType

from alphaline.features.definitions import get
from alphaline.features.offline_store import TYPE as OFFLINE_STORE

PROJECT = "alphaline"
SERVICE = "alphaline_model"
SOURCE = "bar_features_source"
ONLINE_SOURCE = "bar_features_online_source"
TIMESTAMP = "event_timestamp"
TTL = dt.timedelta(days=10)  # the longest market closure since 1990 is 4 sessions (2001)


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


def _config(feast_dir: Path) -> dict:
    return {
        "project": PROJECT, "provider": "local", "registry": str(feast_dir / "registry.db"),
        "offline_store": {"type": OFFLINE_STORE},
        "online_store": {"type": "sqlite", "path": str(feast_dir / "online.db")},
        "entity_key_serialization_version": 3,
    }


def repo_config(feast_dir: Path) -> RepoConfig:
    return RepoConfig(**_config(feast_dir), repo_path=str(feast_dir))


def view_name(feature_set: str) -> str:
    """The feature view that serves one feature set."""
    return feature_set


def online_view_name(feature_set: str) -> str:
    """The online view that serves one feature set as a packed vector."""
    return f"{feature_set}_online"


def vector_name(feature_set: str) -> str:
    return f"{feature_set}_vector"


def online_table(feature_table: Path) -> Path:
    """The materialized day's packed vectors, beside the feature table they come from."""
    return Path(feature_table).with_name(f"{Path(feature_table).stem}.online.parquet")


def feature_refs(names: list[str]) -> list[str]:
    """``view:feature`` references for ``names``: each feature from its own set's view."""
    return [f"{view_name(d.feature_set)}:{d.name}" for d in get(names)]


def definitions(feature_table: Path, names: list[str]) -> list:
    """The entity, the sources, per feature set present in ``names`` an offline view of its
    features and an online view of its packed vector, and a service over the offline ones."""
    symbol = Entity(name="symbol", join_keys=["symbol"], value_type=ValueType.STRING,
                    description="instrument ticker")
    source = FileSource(name=SOURCE, path=str(feature_table), timestamp_field=TIMESTAMP)
    packed = FileSource(name=ONLINE_SOURCE, path=str(online_table(feature_table)),
                        timestamp_field=TIMESTAMP)
    by_set: dict[str, list] = {}
    for d in get(names):
        by_set.setdefault(d.feature_set, []).append(d)
    views = [FeatureView(
        name=view_name(feature_set),
        entities=[symbol],
        ttl=TTL,
        schema=[Field(name=d.name, dtype=Float32, description=d.description) for d in defs],
        source=source,
        online=False,
        description=f"the {feature_set} feature set of daily bars, known at the session close",
    ) for feature_set, defs in by_set.items()]
    online = [FeatureView(
        name=online_view_name(feature_set),
        entities=[symbol],
        ttl=TTL,
        schema=[Field(name=vector_name(feature_set), dtype=Array(Float32),
                      description=f"the {feature_set} features in the order of the tag")],
        source=packed,
        online=True,
        tags={"columns": json.dumps([d.name for d in defs])},
        description=f"the {feature_set} feature set as one vector per symbol, for serving",
    ) for feature_set, defs in by_set.items()]
    return [symbol, source, packed, *views, *online,
            FeatureService(name=SERVICE, features=views)]


def open_store(feast_dir: Path, feature_table: Path, names: list[str]) -> FeatureStore:
    """Open (and ``apply``) the store; also leaves a feature_store.yaml for the feast CLI.

    Views of sets no longer selected are removed from the registry (``apply`` would keep
    them, and ``materialize`` would still write them).
    """
    feast_dir.mkdir(parents=True, exist_ok=True)
    (feast_dir / "feature_store.yaml").write_text(yaml.safe_dump(_config(feast_dir)))
    store = FeatureStore(config=repo_config(feast_dir))
    objects = definitions(feature_table, names)
    keep = {o.name for o in objects if isinstance(o, FeatureView)}
    stale = [v for v in store.list_feature_views() if v.name not in keep]
    store.apply(objects, objects_to_delete=stale, partial=False)
    return store


def to_feast_table(features: pd.DataFrame, calendar: str) -> pd.DataFrame:
    out = features.copy()
    out[TIMESTAMP] = session_close(out["date"], calendar).to_numpy()
    return out


def historical(store: FeatureStore, entities: pd.DataFrame, names: list[str],
               calendar: str, max_cells: int = 300_000_000) -> pd.DataFrame:
    """Point-in-time features for (symbol, date) rows, decided at each date's close.

    Requests over ``max_cells`` values (rows × features) are joined in consecutive date
    ranges, each an ordinary point-in-time join; with the ASOF store one join of 1.26 M rows
    × 210 features peaks under 4 GB, and each range re-reads the feature columns, so the
    default is one join for that size.
    """
    entity_df = entities[["symbol", "date"]].copy()
    entity_df[TIMESTAMP] = session_close(entity_df["date"], calendar).to_numpy()
    refs = feature_refs(names)
    dates = np.sort(entity_df["date"].unique())
    rows_per_date = max(len(entity_df) / max(len(dates), 1), 1)
    dates_per_chunk = max(int(max_cells / (rows_per_date * max(len(names), 1))), 1)
    parts = []
    for start in range(0, len(dates), dates_per_chunk):
        span = dates[start: start + dates_per_chunk]
        chunk = entity_df[entity_df["date"].between(span[0], span[-1])]
        parts.append(store.get_historical_features(entity_df=chunk, features=refs).to_df())
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    del parts
    out = out.drop(columns=[TIMESTAMP])
    out["date"] = pd.to_datetime(out["date"])
    if out["date"].dt.tz is not None:  # Feast reads naive datetimes as UTC
        out["date"] = out["date"].dt.tz_convert("UTC").dt.tz_localize(None)
    out["date"] = out["date"].astype("datetime64[ns]")
    keys = entities[["symbol", "date"]].reset_index(drop=True)
    if len(out) == len(keys) and out["symbol"].equals(keys["symbol"]) and \
            out["date"].equals(keys["date"].astype("datetime64[ns]")):
        return out  # already the entity rows in order (the ASOF store keeps their order)
    return keys.merge(out, on=["symbol", "date"], how="left")


def online_columns(store: FeatureStore) -> dict[str, list[str]]:
    """Each served set's vector columns, in order, from its online view's tags."""
    return {v.name.removesuffix("_online"): json.loads(v.tags["columns"])
            for v in store.list_feature_views() if "columns" in (v.tags or {})}


def materialize_day(store: FeatureStore, day: pd.Timestamp, calendar: str) -> None:
    """The day's rows of the feature table, packed one vector per set and symbol, into the
    online store. The packed table is replaced whole (written aside, then renamed)."""
    close = session_close(pd.DatetimeIndex([day]), calendar).iloc[0].to_pydatetime()
    table = Path(store.get_data_source(SOURCE).path)
    columns = online_columns(store)
    rows = pd.read_parquet(table, columns=["symbol", "date", TIMESTAMP,
                                           *[c for cols in columns.values() for c in cols]],
                           filters=[("date", "==", pd.Timestamp(day))])
    if rows.empty:  # serving yesterday's vectors (or none) as today's would pass silently
        raise ValueError(f"{table} has no rows for {pd.Timestamp(day).date()}: "
                         "write the day's features before materializing it")
    packed = rows[["symbol", TIMESTAMP]].reset_index(drop=True)
    for feature_set, cols in columns.items():
        packed[vector_name(feature_set)] = list(rows[cols].to_numpy(dtype=np.float32))
    target = online_table(table)
    aside = target.with_name(f".{target.name}.tmp")
    packed.to_parquet(aside, index=False)
    os.replace(aside, target)
    store.materialize(start_date=close - dt.timedelta(hours=12),
                      end_date=close + dt.timedelta(minutes=1))


def online_vectors(store: FeatureStore, symbols: list[str], names: list[str]) -> pd.DataFrame:
    """Today's vectors for ``symbols``: only the packed views of the sets ``names`` come
    from. A symbol with nothing in the store (or older than the TTL) gets NaNs."""
    sets = list(dict.fromkeys(d.feature_set for d in get(names)))
    columns = online_columns(store)
    missing = [s for s in sets if s not in columns]
    if missing:
        raise KeyError(f"the feature store at {store.repo_path} serves no {missing} set; "
                       f"it serves {sorted(columns)}")
    out = store.get_online_features(
        features=[f"{online_view_name(s)}:{vector_name(s)}" for s in sets],
        entity_rows=[{"symbol": s} for s in symbols]).to_dict()
    blocks = []
    for s in sets:
        empty = [np.nan] * len(columns[s])
        blocks.append(np.asarray([empty if v is None else v for v in out[vector_name(s)]],
                                 dtype=np.float32).reshape(len(symbols), len(columns[s])))
    frame = pd.DataFrame(np.hstack(blocks).astype(np.float64),
                         columns=[c for s in sets for c in columns[s]])
    frame.insert(0, "symbol", out["symbol"])
    return frame[["symbol", *names]]
