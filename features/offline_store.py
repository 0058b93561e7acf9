"""Feast's DuckDB offline store whose point-in-time join finds rows first, then gathers columns.

Feast's own DuckDB join (``feast.infra.offline_stores.ibis.point_in_time_join``) pairs every
entity row with every earlier feature row of its key inside the view's TTL and keeps the
latest pair with a window function; every feature column rides through that sort. For the
daily panel that is ~7 pairs per row: 1.26 M rows × 210 features took 73 s and 10.7 GB. An
ASOF join carrying all 210 columns is still sort-bound (35 s on a loaded machine).

Here DuckDB ASOF-joins only the keys and the stamps and returns, for each entity row, the
file row number of the latest feature row at or before its stamp; the TTL then drops a match
older than ``ttl`` (the stock join returns nothing for it either). The requested columns are
read once from the Parquet file and gathered by those row numbers (Arrow ``take``). Views
over the same file and keys share one ASOF join, so a view per feature set costs no extra
join. Rows come back in the entity frame's order.

Requests outside this form (a created-timestamp column or cut-off, on-demand views computed
in Ibis, a source that is not one Parquet file, entity rows given as SQL) go to the stock
join, unchanged. Sources, materialization and writes are the stock DuckDB store's.

Select it in a repo config as ``offline_store: {type: <TYPE below>}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast.feature_view import FeatureView
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import (
    DuckDBOfflineStore,
    DuckDBOfflineStoreConfig,
    _write_data_source,
)
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from feast.saved_dataset import SavedDatasetStorage

TYPE = "alphaline.features.offline_store.AsofDuckDBOfflineStore"
GATHER_COLUMNS = 32  # columns read and gathered at a time: bounds the transient copy


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    type: Literal["alphaline.features.offline_store.AsofDuckDBOfflineStore"] = TYPE


def _source_column(source: FileSource, name: str) -> str:
    """The file's column behind a feature, key or stamp name (``field_mapping`` renames)."""
    back = {new: old for old, new in source.field_mapping.items()}
    return back.get(name, name)


def _gatherable(fv: FeatureView) -> bool:
    source = fv.batch_source
    return (isinstance(source, FileSource) and not source.created_timestamp_column
            and source.path.endswith(".parquet") and Path(source.path).is_file())


@dataclass
class _ViewRequest:
    view: FeatureView
    refs: list[str]  # the view's requested features
    names: list[str]  # their output column names


@dataclass
class _Match:
    """For each entity row, the matched file row (-1: none) and that row's stamp (ns)."""

    row: np.ndarray
    stamp: np.ndarray


def _key_map(fv: FeatureView) -> dict[str, str]:
    """View join key → entity frame column."""
    return fv.projection.join_key_map or {e.name: e.name for e in fv.entity_columns}


def _asof_rows(path: str, keys: dict[str, str], timestamp: str, entities: pa.Table,
               entity_ts: str, lo: pd.Timestamp | None, hi: pd.Timestamp) -> _Match:
    """Latest file row per entity row with equal keys and stamp ≤ the entity's stamp."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive stamps are UTC, as Feast reads them
        # An Arrow scan has no cardinality estimate, and below this threshold DuckDB swaps
        # the ASOF join for a nested loop over every pair (minutes at 1.26 M rows).
        con.execute("SET asof_loop_join_threshold = 0")
        con.register("entity_rows", entities)
        key_cols = ", ".join(f'"{k}" AS "k{i}"' for i, k in enumerate(keys))
        where = "WHERE ts <= $hi" + (" AND ts >= $lo" if lo is not None else "")
        on = " AND ".join(f'e."{col}" = f."k{i}"' for i, col in enumerate(keys.values()))
        params = {"hi": hi.to_pydatetime()} | ({"lo": lo.to_pydatetime()} if lo is not None
                                               else {})
        matched = con.execute(f"""
            SELECT e.__entity_row AS entity_row, f.file_row, epoch_ns(f.ts) AS ts
            FROM entity_rows e ASOF LEFT JOIN (
                SELECT * FROM (
                    SELECT {key_cols}, CAST("{timestamp}" AS TIMESTAMPTZ) AS ts,
                           file_row_number AS file_row
                    FROM read_parquet($path, file_row_number = true)
                ) {where}
            ) f ON e."{entity_ts}" >= f.ts AND {on}
            """,
            {"path": path} | params).to_arrow_table()
    finally:
        con.close()
    order = matched["entity_row"].to_numpy()
    row = np.full(entities.num_rows, -1, dtype=np.int64)
    stamp = np.zeros(entities.num_rows, dtype=np.int64)
    row[order] = matched["file_row"].fill_null(-1).to_numpy()
    stamp[order] = matched["ts"].fill_null(0).to_numpy()
    return _Match(row, stamp)


class AsofRetrievalJob(RetrievalJob):
    """Entity rows plus each view's features, joined point-in-time on ``to_arrow``."""

    def __init__(self, config: RepoConfig, entity_df: pd.DataFrame, entity_ts: str,
                 requests: list[_ViewRequest], odfvs: list[OnDemandFeatureView],
                 full_feature_names: bool, metadata: RetrievalMetadata) -> None:
        super().__init__()
        self._config = config
        self._entity_df = entity_df
        self._entity_ts = entity_ts
        self._requests = requests
        self._odfvs = odfvs
        self._full_feature_names = full_feature_names
        self._metadata = metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata:
        return self._metadata

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        entities = pa.Table.from_pandas(self._entity_df, preserve_index=False)
        stamps = entities[self._entity_ts].cast(pa.timestamp("ns", tz="UTC"))
        entity_ns = stamps.to_numpy().astype("datetime64[ns]").view(np.int64)
        numbered = entities.append_column("__entity_row",
                                          pa.array(np.arange(entities.num_rows)))
        first, last = self._metadata.min_event_timestamp, self._metadata.max_event_timestamp
        matches: dict[tuple, _Match] = {}
        columns: dict[str, pa.ChunkedArray] = {}
        for req in self._requests:
            source = req.view.batch_source
            keys = {_source_column(source, k): col for k, col in _key_map(req.view).items()}
            ttls = [r.view.ttl for r in self._requests
                    if r.view.batch_source.path == source.path]
            group = (source.path, tuple(keys.items()), source.timestamp_field)
            if group not in matches:  # views over one file and keys share one ASOF join
                lo = pd.Timestamp(first) - max(ttls) if all(ttls) else None
                matches[group] = _asof_rows(source.path, keys, source.timestamp_field,
                                            numbered, self._entity_ts, lo, pd.Timestamp(last))
            match = matches[group]
            fresh = match.row >= 0
            if req.view.ttl:  # older than the TTL is no match, as in the stock join
                fresh &= match.stamp >= entity_ns - int(req.view.ttl.total_seconds() * 1e9)
            take = pa.array(match.row, mask=~fresh)
            for start in range(0, len(req.refs), GATHER_COLUMNS):
                refs = req.refs[start: start + GATHER_COLUMNS]
                part = pq.read_table(source.path, columns=[_source_column(source, r)
                                                           for r in refs])
                # The gathered columns outlive this call by one copy (Feast's to_pandas);
                # allocated by malloc they go back to the OS when freed, where the default
                # pool would keep them in the process's peak.
                part = pc.take(part, take, memory_pool=pa.system_memory_pool())
                for i, name in enumerate(req.names[start: start + GATHER_COLUMNS]):
                    columns[name] = part.column(i)
                del part
        return pa.Table.from_arrays([*entities.columns, *columns.values()],
                                    names=[*entities.column_names, *columns])

    def persist(self, storage: SavedDatasetStorage, allow_overwrite: bool = False,
                timeout: int | None = None) -> None:
        _write_data_source(ibis.memtable(self.to_arrow()), storage.to_data_source(),
                           str(self._config.repo_path), "overwrite", allow_overwrite)


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    """The stock DuckDB offline store; historical retrieval by ASOF row match and gather."""

    @staticmethod
    def get_historical_features(config: RepoConfig, feature_views: list[FeatureView],
                                feature_refs: list[str], entity_df: pd.DataFrame | str,
                                registry: BaseRegistry, project: str,
                                full_feature_names: bool = False,
                                filter_by_created_timestamp: bool = False) -> RetrievalJob:
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        if (not isinstance(entity_df, pd.DataFrame) or filter_by_created_timestamp
                or any(o.mode == "substrait" for o in odfvs)
                or not all(_gatherable(fv) for fv in feature_views)):
            return DuckDBOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project,
                full_feature_names, filter_by_created_timestamp)
        entity_ts = offline_utils.infer_event_timestamp_from_entity_df(
            dict(zip(entity_df.columns, entity_df.dtypes, strict=True)))
        entity_df = entity_df.copy()
        entity_df[entity_ts] = pd.to_datetime(entity_df[entity_ts], utc=True)
        requests = []
        for fv in feature_views:
            prefix = fv.projection.name_to_use()
            refs = [r.split(":")[1] for r in feature_refs if r.startswith(f"{prefix}:")]
            alias = fv.projection.name_alias or fv.name
            names = [f"{alias}__{r}" if full_feature_names else r for r in refs]
            requests.append(_ViewRequest(fv, refs, names))
        metadata = RetrievalMetadata(
            features=feature_refs, keys=[c for c in entity_df.columns if c != entity_ts],
            min_event_timestamp=entity_df[entity_ts].min().to_pydatetime(),
            max_event_timestamp=entity_df[entity_ts].max().to_pydatetime())
        return AsofRetrievalJob(config, entity_df, entity_ts, requests,
                                [o for o in odfvs if o.mode != "substrait"],
                                full_feature_names, metadata)
