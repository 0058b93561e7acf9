"""The daily flow's one-session features equal the whole history's, feature by feature.

A small synthetic market with the edges that break look-backs: a zero-volume day, a halt
across a computed day, a late listing (its first GARCH fit falls inside the run), and a
GARCH refit day between ordinary ones.
"""

import logging

import numpy as np
import pandas as pd
import pytest

from alphaline.config import load_params
from alphaline.features.definitions import (
    FEATURES,
    RECURSIVE_ALPHA,
    SETS,
    feature_names,
    get,
    lookback,
    memory,
)
from alphaline.features.store import TIMESTAMP, session_close
from alphaline.pipelines.featurize import (
    LiveFeatures,
    _why_full,
    build_day,
    build_live,
    read_live,
    write_live_day,
)
from alphaline.pipelines.synthetic import generate_market
from tests.conftest import REPO, make_project

NAMES = feature_names(SETS)
REFIT = 20
# The table is float32 (a unit in the last place is 6e-8 to 1.2e-7 relative); sums over a
# window restart at the slice's first row, so a last bit may differ (measured: 209 of 211
# features bitwise equal, RSQR5/RSQR30 within one unit): two units, nothing absolute.
RTOL, ATOL = 2.5e-7, 0.0


@pytest.fixture(scope="module")
def params():
    fp = load_params(REPO / "params.yaml").features
    return fp.model_copy(update={"sets": list(SETS), "garch_refit_every": REFIT,
                                 "benchmark": None})


@pytest.fixture(scope="module")
def market():
    bars, _ = generate_market(12, "2020-01-02", "2022-07-29", seed=5)
    dates = np.sort(bars["date"].unique())
    refit = (len(dates) - 3) // REFIT * REFIT  # the last refit with two sessions after it
    days = pd.DatetimeIndex(dates[refit - 1: refit + 3])  # ordinary, refit, ordinary x2
    bars = bars[bars["date"] <= days[-1]].copy()
    zero = (bars["symbol"] == "SYN002") & (bars["date"] == dates[refit - 8])
    bars.loc[zero, "volume"] = 0.0
    halted = (bars["symbol"] == "SYN003") & bars["date"].isin(dates[refit - 30: refit - 26])
    halted |= (bars["symbol"] == "SYN004") & (bars["date"] == days[1])  # halted on refit day
    late = (bars["symbol"] == "SYN011") & (bars["date"] < dates[refit - 300])
    return bars[~(halted | late)].reset_index(drop=True), days


@pytest.fixture(scope="module")
def runs(market, params):
    """(the whole history through the last day, the day-by-day chain from the day before
    the first), each day computed from its slice, never the whole history."""
    bars, days = market
    full = build_live(bars, params)
    live = build_live(bars[bars["date"] < days[0]], params)
    log = logging.getLogger("alphaline.pipelines.featurize")
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())
    log.addHandler(handler)
    level, log.level = log.level, logging.INFO
    try:
        for day in days:
            live = build_day(bars, params, day, live)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert len(seen) == len(days) and all("one session from" in m for m in seen), seen
    return full, live


def test_lookback_covers_every_window_and_the_recursive_memory():
    for d in FEATURES:
        assert memory(d) >= d.window
    assert lookback(SETS) == max(memory(d) for d in get(NAMES) if d.name != "garch_vol")
    for name, alpha in RECURSIVE_ALPHA.items():  # what is left of the start is negligible
        assert (1 - alpha) ** (memory(get([name])[0]) - get([name])[0].window) <= 1e-9
    assert lookback(["alpha158"]) == 60 and lookback(["core"]) > 60


def test_each_day_equals_the_whole_history_on_every_feature(market, runs):
    _, days = market
    full, live = runs
    assert list(live.features.columns) == list(full.features.columns)
    for day in days:
        want = full.features[full.features["date"] == day].reset_index(drop=True)
        got = live.features[live.features["date"] == day].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[["symbol", "date"]], want[["symbol", "date"]])
        for name in NAMES:
            np.testing.assert_allclose(got[name].to_numpy(dtype="float64"),
                                       want[name].to_numpy(dtype="float64"), rtol=RTOL,
                                       atol=ATOL, equal_nan=True, err_msg=f"{name} on {day}")
    g = full.features.set_index(["symbol", "date"])["garch_vol"]
    on_refit = g.xs(days[1], level="date")
    assert "SYN004" not in on_refit.index  # halted: no row that day
    assert np.isfinite(on_refit.drop("SYN011")).all()  # refit day: every seasoned name fitted
    assert live.garch.session == full.garch.session
    np.testing.assert_array_equal(live.garch.params, full.garch.on(live.garch.symbols).params)


def test_earlier_rows_are_kept_and_a_gap_recomputes_the_history(market, params, runs,
                                                                 caplog):
    bars, days = market
    full, live = runs
    before = live.features[live.features["date"] < days[0]]
    assert len(before) == len(bars[bars["date"] < days[0]])
    stale = build_live(bars[bars["date"] < days[0]], params)
    with caplog.at_level(logging.INFO, logger="alphaline.pipelines.featurize"):
        skipped = build_day(bars, params, days[-1], stale)  # three sessions missed
    assert "not on the session before" in caplog.text
    pd.testing.assert_frame_equal(skipped.features, full.features)


def test_the_live_table_and_garch_state_survive_their_files(tmp_path, market):
    """The daily flow's path: read the live table and state, append the day, write both;
    a state that does not match the table (a crash between the writes) recomputes."""
    bars, days = market
    project = make_project(tmp_path / "project", features__sets=list(SETS),
                           features__garch_refit_every=REFIT, features__benchmark=None)
    fp = project.params.features
    assert read_live(project) is None
    write_live_day(project, build_day(bars, fp, days[0], None))  # no table: the history
    for day in days[1:]:
        write_live_day(project, build_day(bars, fp, day, read_live(project)))
    raw = pd.read_parquet(project.live_feature_table)  # what Feast reads: each row's close
    pd.testing.assert_series_equal(
        raw[TIMESTAMP], session_close(raw["date"], "XNYS").rename(TIMESTAMP), check_dtype=False)
    final = read_live(project)
    final.features = final.features.sort_values(["symbol", "date"], ignore_index=True)
    want = build_live(bars, fp)
    pd.testing.assert_frame_equal(final.features[["symbol", "date"]],
                                  want.features[["symbol", "date"]], check_dtype=False)
    np.testing.assert_allclose(final.features[NAMES].to_numpy(dtype="float64"),
                               want.features[NAMES].to_numpy(dtype="float64"), rtol=RTOL,
                               atol=ATOL, equal_nan=True)
    np.testing.assert_array_equal(final.garch.var, want.garch.on(final.garch.symbols).var)
    # The table of the day before with the state of the day: the state was written, the
    # table not (or the other way round): the day is recomputed from the history.
    torn = LiveFeatures(final.features[final.features["date"] < days[-1]], final.garch)
    dates = pd.DatetimeIndex(np.sort(bars["date"].unique()))
    assert "GARCH state" in _why_full(bars, dates, days[-1], NAMES, torn)


def test_a_day_without_bars_keeps_the_table(market, params, runs):
    bars, days = market
    _, live = runs
    after = days[-1] + pd.offsets.BDay(1)  # no bars yet
    assert build_day(bars, params, after, live) is live


def test_per_date_transforms_apply_to_the_day_alone(market, params):
    """Winsorized, ranked and market-neutral: the day's rows equal the whole history's."""
    bars, days = market
    cs = params.cross_section.model_copy(update={"method": "rank", "winsorize": 0.1,
                                                 "neutralize": ["market"]})
    fp = params.model_copy(update={"sets": ["core", "risk"], "cross_section": cs})
    names = feature_names(fp.sets)
    live = build_live(bars[bars["date"] < days[1]], fp)
    for day in days[1:3]:  # the refit day, then an ordinary one
        live = build_day(bars, fp, day, live)
    full = build_live(bars[bars["date"] <= days[2]], fp).features
    order = ["date", "symbol"]  # appended days follow the history: compare by key
    got = live.features[live.features["date"].isin(days[1:3])].sort_values(order)
    want = full[full["date"].isin(days[1:3])].sort_values(order)
    assert got[order].to_numpy().tolist() == want[order].to_numpy().tolist()
    np.testing.assert_allclose(got[names].to_numpy(dtype="float64"),
                               want[names].to_numpy(dtype="float64"), rtol=RTOL, atol=ATOL,
                               equal_nan=True)
    assert np.nanmax(np.abs(got["ret_1"].to_numpy())) <= 1.0  # ranks, centred
