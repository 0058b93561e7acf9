"""Features and labels from validated bars, written for Feast and for training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from alphaline.config import FeatureParams
from alphaline.features import cross_section
from alphaline.features import store as feast_store
from alphaline.features.compute import (
    FIELDS,
    KEYS,
    adjust_prices,
    compute_features,
    compute_labels,
    to_panel,
)
from alphaline.features.definitions import check_inputs, feature_names, get
from alphaline.features.risk import benchmark_returns
from alphaline.io import write_parquet
from alphaline.pipelines.sources import provided_fields
from alphaline.project import Project

ChunkFn = Callable[[pd.DataFrame], pd.DataFrame]
Mapper = Callable[[ChunkFn, list[pd.DataFrame]], list[pd.DataFrame]]


def serial(fn: ChunkFn, parts: list[pd.DataFrame]) -> list[pd.DataFrame]:
    return [fn(part) for part in parts]


def split_by_symbol(bars: pd.DataFrame, chunks: int) -> list[pd.DataFrame]:
    """``chunks`` groups of whole symbols (time-series features never cross symbols)."""
    symbols = np.array(sorted(bars["symbol"].unique()))
    groups = [g for g in np.array_split(symbols, max(1, min(chunks, len(symbols)))) if len(g)]
    return [bars[bars["symbol"].isin(set(g))] for g in groups]


def market_returns(bars: pd.DataFrame, symbol: str | None) -> pd.Series:
    """The benchmark's daily log returns from the whole universe (before any split)."""
    close = to_panel(adjust_prices(bars))["close"]
    return benchmark_returns(np.log(close / close.shift(1)), symbol)


def with_all_fields(bars: pd.DataFrame) -> pd.DataFrame:
    """Absent OHLCV fields (close-only data) as NaN columns, so the panel has its shape; no
    selected feature reads them (``check_inputs`` refused those first)."""
    absent = [c for c in FIELDS if c not in bars.columns]
    return bars.assign(**{c: np.nan for c in absent}) if absent else bars


@dataclass
class FeatureTables:
    features: pd.DataFrame
    labels: pd.DataFrame


def build(bars: pd.DataFrame, params: FeatureParams, mapper: Mapper = serial,
          chunks: int = 1) -> FeatureTables:
    """The selected feature sets, then the per-date transforms, and the labels.

    ``mapper`` runs the per-symbol part over ``chunks`` groups of symbols: in this process
    by default, or on a Dask cluster (``flows.parallel``); the result is the same.
    """
    names = feature_names(params.sets)
    check_inputs(names, provided_fields(bars), "the validated bars")
    bars = with_all_fields(bars)
    options = {"risk": {"garch_refit_every": params.garch_refit_every}}
    if "risk" in params.sets:
        options["risk"]["benchmark"] = market_returns(bars, params.benchmark)
    per_chunk = partial(compute_features, defs=get(names), family_options=options)
    parts = mapper(per_chunk, split_by_symbol(bars, chunks))
    feats = pd.concat(parts, ignore_index=True).sort_values(KEYS, ignore_index=True)
    cs = params.cross_section
    if cs.method != "none" or cs.winsorize > 0 or cs.neutralize:
        if "sector" in bars.columns:
            feats = feats.merge(bars[["symbol", "date", "sector"]], on=["symbol", "date"])
        feats = cross_section.apply(feats, names, cs.method, cs.winsorize, cs.neutralize)
        feats = feats.drop(columns=["sector"], errors="ignore")
    return FeatureTables(feats, compute_labels(bars, params.label_horizon))


def write(project: Project, tables: FeatureTables) -> None:
    """Write both research tables atomically and register the Feast definitions over them."""
    cal = project.params.data.calendar
    write_parquet(feast_store.to_feast_table(tables.features, cal), project.feature_table)
    write_parquet(tables.labels, project.label_table)
    open_feature_store(project)


def open_feature_store(project: Project):
    """Research's Feast repo over data/features (training sets, the gate)."""
    return feast_store.open_store(project.feast_dir, project.feature_table,
                                  feature_names(project.params.features.sets))


def write_live(project: Project, tables: FeatureTables):
    """The daily flow's features → the live table (state/live), and its Feast store over it:
    a DVC checkout of data/features can neither rewind nor be overwritten by trading."""
    cal = project.params.data.calendar
    write_parquet(feast_store.to_feast_table(tables.features, cal), project.live_feature_table)
    return open_live_store(project)


def open_live_store(project: Project):
    """The Feast repo the daily flow materializes and serves from (state/live/feast)."""
    return feast_store.open_store(project.live_feast_dir, project.live_feature_table,
                                  feature_names(project.params.features.sets))
