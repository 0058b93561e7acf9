"""Features and labels from validated bars, written for Feast and for training."""

from __future__ import annotations

import logging
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
from alphaline.features.definitions import STATEFUL, check_inputs, feature_names, get, lookback
from alphaline.features.risk import GARCH_HISTORY, GarchState, benchmark_returns, garch_run
from alphaline.io import write_parquet
from alphaline.pipelines.sources import provided_fields
from alphaline.project import Project

ChunkFn = Callable[[pd.DataFrame], pd.DataFrame]
Mapper = Callable[[ChunkFn, list[pd.DataFrame]], list[pd.DataFrame]]
logger = logging.getLogger(__name__)


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
    feats = _time_series(bars, params, names, mapper, chunks)
    feats = _cross_section(feats, bars, names, params)
    return FeatureTables(feats, compute_labels(bars, params.label_horizon))


def _time_series(bars: pd.DataFrame, params: FeatureParams, names: list[str],
                 mapper: Mapper = serial, chunks: int = 1) -> pd.DataFrame:
    """Features ``names`` of every row of ``bars``, per symbol chunk, before any per-date
    transform."""
    options = {"risk": {"garch_refit_every": params.garch_refit_every}}
    if "risk" in params.sets:
        options["risk"]["benchmark"] = market_returns(bars, params.benchmark)
    per_chunk = partial(compute_features, defs=get(names), family_options=options)
    parts = mapper(per_chunk, split_by_symbol(bars, chunks))
    return pd.concat(parts, ignore_index=True).sort_values(KEYS, ignore_index=True)


def _cross_section(feats: pd.DataFrame, bars: pd.DataFrame, names: list[str],
                   params: FeatureParams) -> pd.DataFrame:
    cs = params.cross_section
    if cs.method != "none" or cs.winsorize > 0 or cs.neutralize:
        if "sector" in bars.columns:
            feats = feats.merge(bars[["symbol", "date", "sector"]], on=["symbol", "date"])
        feats = cross_section.apply(feats, names, cs.method, cs.winsorize, cs.neutralize)
        feats = feats.drop(columns=["sector"], errors="ignore")
    return feats


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


# --- The daily flow's features: one new session at a time ------------------------------

MARGIN = 10  # sessions of bars beyond the look-back, so no window starts at the slice's edge
GARCH_STATE = "garch_state.parquet"


@dataclass
class LiveFeatures:
    """The live feature table and the GARCH filter's state after its last session (None
    when the risk set is not selected)."""

    features: pd.DataFrame
    garch: GarchState | None


def _long(wide: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """Values of a wide frame at the (symbol, date) rows of ``keys``, as a float32 column
    (non-finite as NaN), as ``compute_features`` writes them."""
    index = pd.MultiIndex.from_frame(keys[["date", "symbol"]])
    values = wide.stack(future_stack=True).reindex(index).to_numpy(dtype="float32")
    values[~np.isfinite(values)] = np.nan
    return values


def _closes(bars: pd.DataFrame) -> pd.DataFrame:
    return to_panel(adjust_prices(bars))["close"]


def build_live(bars: pd.DataFrame, params: FeatureParams, mapper: Mapper = serial,
               chunks: int = 1) -> LiveFeatures:
    """The whole history's features (as ``build``) and the GARCH state after its last day."""
    names = feature_names(params.sets)
    check_inputs(names, provided_fields(bars), "the validated bars")
    bars = with_all_fields(bars)
    state = None
    feats = _time_series(bars, params, [n for n in names if n not in STATEFUL], mapper, chunks)
    if "garch_vol" in names:
        wide, state = garch_run(_closes(bars), params.garch_refit_every)
        feats.insert(2 + names.index("garch_vol"), "garch_vol", _long(wide, feats))
    return LiveFeatures(_cross_section(feats, bars, names, params), state)


def _through(live: LiveFeatures | None, dates: pd.DatetimeIndex, names: list[str]) -> bool:
    """Whether ``live`` is the table of exactly ``dates`` (its GARCH state included)."""
    if live is None or live.features.empty or list(live.features.columns) != [*KEYS, *names]:
        return False
    span = (pd.Timestamp(live.features["date"].min()), pd.Timestamp(live.features["date"].max()))
    garch_ok = "garch_vol" not in names or (live.garch is not None
                                            and live.garch.session == len(dates) - 1)
    return span == (dates[0], dates[-1]) and garch_ok


def _why_full(bars: pd.DataFrame, dates: pd.DatetimeIndex, day: pd.Timestamp,
              names: list[str], previous: LiveFeatures | None) -> str | None:
    """Why ``day`` cannot be appended to ``previous`` (None: it can)."""
    if previous is None or previous.features.empty:
        return "no previous live table"
    prev = previous.features
    if list(prev.columns) != [*KEYS, *names]:
        return "the previous live table holds other features (features.sets changed)"
    if day not in dates or len(dates) < 2:
        return f"no bars on {day.date()}"
    t = dates.get_loc(day)
    last = pd.Timestamp(prev["date"].max())
    if last != dates[t - 1]:
        return (f"the previous live table ends on {last.date()}, not on the session before "
                f"{day.date()} ({dates[t - 1].date()})")
    if pd.Timestamp(prev["date"].min()) != dates[0]:
        return "the previous live table starts on another day than the bars"
    if "garch_vol" in names and (previous.garch is None or previous.garch.session != t - 1):
        return "the GARCH state is missing or not that of the previous session"
    today = bars[bars["date"] == day]
    split = today.get("split_ratio", pd.Series(dtype="float64")).fillna(1.0)
    dividend = today.get("dividend", pd.Series(dtype="float64")).fillna(0.0)
    if (split != 1.0).any() or (dividend != 0.0).any():
        return "a corporate action on the day re-adjusts the history"
    return None


def _keep_absent(before: GarchState, after: GarchState) -> GarchState:
    """``after`` plus the symbols of ``before`` without bars in the day's slice (a halt, a
    delisting): the whole history's filter keeps their state unchanged, and so does this."""
    gone = before.symbols.difference(after.symbols, sort=False)
    if gone.empty:
        return after
    kept = before.on(gone)
    return GarchState(after.session, after.symbols.append(gone),
                      np.vstack([after.params, kept.params]), np.concatenate([after.var,
                                                                              kept.var]))


def build_day(bars: pd.DataFrame, params: FeatureParams, day, previous: LiveFeatures | None,
              mapper: Mapper = serial, chunks: int = 1) -> LiveFeatures:
    """The live table through ``day``: ``previous`` plus ``day``'s rows, computed from the
    last ``lookback`` sessions of bars (plus ``MARGIN``) and, for GARCH, filtered forward
    from ``previous``'s state (a refit day refits on the window the whole history's run
    reads, from the same warm start). The values are the whole history's (``build_live``;
    tests/test_incremental_features.py checks every feature of every set).

    Without a previous table, or when ``day`` is not the session after its last (or the
    day re-adjusts the history), it computes the whole history, and logs why.
    """
    day = pd.Timestamp(day)
    names = feature_names(params.sets)
    check_inputs(names, provided_fields(bars), "the validated bars")
    bars = with_all_fields(bars[bars["date"] <= day])
    dates = pd.DatetimeIndex(np.sort(bars["date"].unique()))
    if day not in dates and len(dates) and _through(previous, dates, names):
        logger.info("features for %s: no bars that day; the live table through %s stands",
                    day.date(), dates[-1].date())
        return previous
    reason = _why_full(bars, dates, day, names, previous)
    if reason is not None:
        logger.info("features for %s: the whole history (%s)", day.date(), reason)
        return build_live(bars, params, mapper, chunks)
    t = dates.get_loc(day)
    start = dates[max(0, t + 1 - lookback(params.sets) - MARGIN)]
    feats = _time_series(bars[bars["date"] >= start], params,
                         [n for n in names if n not in STATEFUL], mapper, chunks)
    feats = feats[feats["date"] == day].reset_index(drop=True)
    state = None
    if "garch_vol" in names:
        refit = t % params.garch_refit_every == 0
        first = dates[max(0, t - GARCH_HISTORY) if refit else t - 1]
        wide, state = garch_run(_closes(bars[bars["date"] >= first]), params.garch_refit_every,
                                state=previous.garch)
        state = _keep_absent(previous.garch, state)
        feats.insert(2 + names.index("garch_vol"), "garch_vol", _long(wide, feats))
    feats = _cross_section(feats, bars[bars["date"] == day], names, params)
    logger.info("features for %s: one session from %d sessions of bars", day.date(),
                t + 1 - dates.get_loc(start))
    # Appended, not re-sorted (a sort of the whole table costs more than the day's features):
    # the history in (symbol, date) order, then each day's rows by symbol.
    return LiveFeatures(pd.concat([previous.features, feats], ignore_index=True), state)


def read_live(project: Project) -> LiveFeatures | None:
    """The live table and GARCH state the daily flow last wrote (None: none yet)."""
    path = project.live_feature_table
    if not path.exists():
        return None
    feats = pd.read_parquet(path).drop(columns=[feast_store.TIMESTAMP], errors="ignore")
    feats["date"] = pd.to_datetime(feats["date"])
    state_path = path.with_name(GARCH_STATE)
    state = None
    if state_path.exists():
        s = pd.read_parquet(state_path)
        state = GarchState(int(s["session"].iloc[0]) if len(s) else -1,
                           pd.Index(s["symbol"]),
                           s[["omega", "alpha", "beta"]].to_numpy(dtype="float64"),
                           s["var"].to_numpy(dtype="float64"))
    return LiveFeatures(feats, state)


def write_live_day(project: Project, live: LiveFeatures):
    """The live table (as ``write_live`` writes it) and the GARCH state beside it, and the
    live Feast store over them; the state is written
    last, so a crash between the two leaves a state that no longer matches the table (and
    the next day recomputes the history)."""
    feats, cal = live.features, project.params.data.calendar
    codes, days = pd.factorize(feats["date"])  # the close of each session once, not per row
    stamps = feast_store.session_close(pd.Series(days), cal).to_numpy()[codes]
    write_parquet(feats.assign(**{feast_store.TIMESTAMP: stamps}), project.live_feature_table)
    store = open_live_store(project)
    state_path = project.live_feature_table.with_name(GARCH_STATE)
    if live.garch is None:
        state_path.unlink(missing_ok=True)
    else:
        g = live.garch
        write_parquet(pd.DataFrame({
            "symbol": np.asarray(g.symbols, dtype=object), "session": g.session,
            "omega": g.params[:, 0], "alpha": g.params[:, 1], "beta": g.params[:, 2],
            "var": g.var}), state_path)
    return store
