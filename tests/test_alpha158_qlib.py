"""Alpha158 against Qlib's own output on the awkward cases: zero-volume days (single,
consecutive, on the listing day), halts shorter and longer than a window, a late listing, a
delisting, a late listing with a halt, and a run of identical bars.

The fixture ``tests/data/alpha158_qlib.parquet`` holds the bars and Qlib 0.9.7's values; it
was written by ``scripts/qlib_alpha158_fixture.py`` (Qlib's expression engine, operators and
Alpha158 expressions, fed float64 bars laid out as Qlib's storage lays them out).

Qlib float32 effects left out, and why:

- Qlib's ``.bin`` storage is float32: the fixture feeds Qlib float64 bars instead, so the
  comparison is of operator semantics, not of how float32 inputs round (ties, near-zero
  spreads and standard deviations that exist only after rounding).
- Qlib casts every expression's result to float32, and so does the project's feature
  table: values are compared to a relative 1e-6 (a few float32 steps) plus 1e-12 absolute
  (least-squares residuals and slopes of a near-exact line are ~1e-13 in both).
- Where Qlib's Slope divides its running sums by an exact zero (a window holding one
  traded session) the sums' rounding drift makes it ±inf; the project's policy turns every
  non-finite value into NaN, so there it must be NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaline.features.alpha158_reference import alpha158_reference
from alphaline.features.compute import compute_features
from alphaline.features.definitions import feature_names, get

FIXTURE = Path(__file__).parent / "data" / "alpha158_qlib.parquet"
NAMES = feature_names(["alpha158"])
BARS = ["symbol", "date", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def qlib() -> pd.DataFrame:
    return pd.read_parquet(FIXTURE).sort_values(["symbol", "date"], ignore_index=True)


@pytest.fixture(scope="module")
def fast(qlib) -> pd.DataFrame:
    return compute_features(qlib[BARS], get(NAMES))


def assert_qlib_equal(ours: pd.DataFrame, qlib: pd.DataFrame) -> None:
    for name in NAMES:
        got, want = ours[name].to_numpy("float64"), qlib[name].to_numpy("float64")
        infinite = np.isinf(want)
        assert np.isnan(got[infinite]).all(), f"{name}: Qlib's ±inf must be NaN here"
        np.testing.assert_allclose(got[~infinite], want[~infinite], rtol=1e-6, atol=1e-12,
                                   equal_nan=True, err_msg=name)


def test_the_fixture_holds_every_case(qlib):
    assert FIXTURE.stat().st_size <= 1_000_000
    assert sorted(qlib.columns[len(BARS):]) == sorted(NAMES)
    per_symbol = qlib.groupby("symbol")
    sessions = pd.DatetimeIndex(np.sort(qlib["date"].unique()))
    first, last = per_symbol["date"].min(), per_symbol["date"].max()
    span = {s: ((sessions >= first[s]) & (sessions <= last[s])).sum() for s in first.index}
    halted = {s: span[s] - n for s, n in per_symbol.size().items()}
    assert halted["HALT3"] == 3 and halted["HALT8"] == 8 and halted["LATEHALT"] == 6
    assert first["LATE"] > sessions[60] and last["DELIST"] < sessions[-30]
    zero = qlib[qlib["volume"] == 0].groupby("symbol").size()
    assert zero["ZEROVOL1"] == 2 and zero["ZEROVOLRUN"] == 5 and zero["ZEROFIRST"] == 1
    flat = qlib[qlib["symbol"] == "FLAT"]
    assert (flat["close"].diff() == 0).sum() >= 10


def test_every_alpha158_feature_equals_qlibs(fast, qlib):
    assert fast[["symbol", "date"]].equals(qlib[["symbol", "date"]])
    assert_qlib_equal(fast, qlib)


def test_the_literal_transcription_equals_qlibs(qlib):
    ref = alpha158_reference(qlib[BARS])
    assert ref[["symbol", "date"]].equals(qlib[["symbol", "date"]])
    assert_qlib_equal(ref, qlib)


def rows(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return frame[frame["symbol"] == symbol].reset_index(drop=True)


def test_cord_stays_finite_after_a_zero_volume_day(fast, qlib):
    """``log(v / Ref(v, 1) + 1)`` is +inf the day after a zero volume: it leaves the
    window, it does not end the feature."""
    for symbol in ("ZEROVOL1", "ZEROVOLRUN", "ZEROFIRST"):
        ours, theirs = rows(fast, symbol), rows(qlib, symbol)
        zero = np.flatnonzero(theirs["volume"].to_numpy() == 0)[0]
        for d in (5, 60):
            tail, want = ours[f"CORD{d}"].iloc[zero:], theirs[f"CORD{d}"].iloc[zero:]
            assert tail.notna().sum() > 30, (symbol, d)
            np.testing.assert_array_equal(tail.notna(), want.notna())
            np.testing.assert_allclose(tail, want, rtol=1e-6)


def test_idxmax_lands_on_a_halt_and_windows_start_at_the_listing(fast, qlib):
    halt = rows(qlib, "HALT3")
    resumed = np.flatnonzero(halt["date"].diff().dt.days > 4)[0]  # first row after the halt
    # the window of the row after a 3-session halt holds those NaNs at positions 2..4 of 5
    assert rows(fast, "HALT3").loc[resumed, "IMAX5"] == pytest.approx(2 / 5)
    assert rows(fast, "HALT3").loc[resumed, "IMXD5"] == 0.0  # both land on the same NaN
    assert halt.loc[resumed, "IMAX5"] == pytest.approx(2 / 5)
    late = rows(fast, "LATE")
    high = rows(qlib, "LATE")["high"].to_numpy()
    for t in range(4):  # the first rows count only listed sessions
        assert late.loc[t, "IMAX5"] == pytest.approx((np.argmax(high[: t + 1]) + 1) / 5)


def test_up_and_down_days_divide_by_the_listed_sessions(fast, qlib):
    late, close = rows(fast, "LATE"), rows(qlib, "LATE")["close"].to_numpy()
    up = np.r_[0.0, close[1:] > close[:-1]]  # the listing day has no previous close: a 0
    for t in (1, 3, 20):
        assert late.loc[t, "CNTP60"] == pytest.approx(up[: t + 1].mean(), rel=1e-6)
