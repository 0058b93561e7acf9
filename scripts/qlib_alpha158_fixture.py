"""Write ``tests/data/alpha158_qlib.parquet``: bars with the awkward cases and Qlib's own
Alpha158 values on them, so the parity test needs no Qlib install.

Run once, in a side environment that holds Qlib and nothing of this project:

    python3.11 -m venv /tmp/qlibenv
    /tmp/qlibenv/bin/pip install pyqlib==0.9.7 pandas==2.3.3
    /tmp/qlibenv/bin/python scripts/qlib_alpha158_fixture.py

Qlib computes the values itself: its expression engine, its operators (``qlib/data/ops.py``
and the Cython ``rolling`` kernels behind Slope, Rsquare and Resi) and the Alpha158
expressions of ``qlib.contrib.data.loader.Alpha158DL``. Only the data source is ours: a
feature provider that hands Qlib each symbol's bars as float64, laid out as Qlib's own
storage lays them out (from the first to the last traded session of the symbol, a NaN on
each session it did not trade). Qlib's ``.bin`` files hold float32, which would round every
input by up to 6e-8 and make ties, near-zero spreads and near-zero standard deviations
depend on that rounding; feeding float64 keeps Qlib's operator semantics without that
storage effect. Qlib still casts each expression's result to float32, as it always does.

The cases, one symbol each (plus clean ones): a single zero-volume day, consecutive
zero-volume days, zero volume on the first traded day, a halt of 3 sessions, a halt longer
than the 5-session window, a late listing, a delisting, a late listing followed by a halt,
and a stretch of identical bars (flat prices: zero spreads, ties, zero standard deviations).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume")
SESSIONS = 140
REPO = Path(__file__).resolve().parents[1]


def clean_bars(symbol: str, dates: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """A random walk of daily bars with integer volumes."""
    n = len(dates)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    volume = np.round(np.exp(rng.normal(13, 0.5, n)))
    return pd.DataFrame({"symbol": symbol, "date": dates, "open": open_, "high": high,
                         "low": low, "close": close, "volume": volume})


def market(seed: int = 158) -> pd.DataFrame:
    """The bars of every case: rows only where a symbol traded (a halt is a missing row)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=SESSIONS)
    cases = {}
    for name in ("CLEAN", "ZEROVOL1", "ZEROVOLRUN", "ZEROFIRST", "HALT3",
                 "HALT8", "LATE", "DELIST", "LATEHALT", "FLAT"):
        cases[name] = clean_bars(name, dates, rng)
    cases["ZEROVOL1"].loc[[40, 110], "volume"] = 0.0
    cases["ZEROVOLRUN"].loc[[70, 71, 72, 120, 121], "volume"] = 0.0
    zf = cases["ZEROFIRST"]
    cases["ZEROFIRST"] = zf[zf.index >= 30].copy()
    cases["ZEROFIRST"].loc[30, "volume"] = 0.0  # listed on a day nothing traded
    for name, halted in (("HALT3", range(80, 83)), ("HALT8", range(90, 98))):
        cases[name] = cases[name].drop(index=list(halted))
    cases["LATE"] = cases["LATE"].iloc[65:]
    cases["DELIST"] = cases["DELIST"].iloc[:100]
    late = cases["LATEHALT"].iloc[50:]
    cases["LATEHALT"] = late.drop(index=[52, 53, 54, 55, 56, 57])  # halted from day 3
    flat = cases["FLAT"]
    flat.loc[90:101, ["open", "high", "low", "close"]] = flat.loc[89, "close"]
    flat.loc[90:101, "volume"] = flat.loc[89, "volume"]
    bars = pd.concat(cases.values(), ignore_index=True)
    return bars.sort_values(["symbol", "date"], ignore_index=True)


class BarsProvider:
    """Qlib's FeatureProvider contract over in-memory float64 bars.

    Like ``FileFeatureStorage``: a symbol's series runs from its first to its last traded
    session of the calendar (NaN where it did not trade) and a slice returns the part of
    ``[start_index, end_index]`` it covers, indexed by calendar position.
    """

    def __init__(self, bars: pd.DataFrame, calendar: pd.DatetimeIndex):
        self.store: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
        position = pd.Series(np.arange(len(calendar)), index=calendar)
        for symbol, rows in bars.groupby("symbol"):
            pos = position[rows["date"]].to_numpy()
            first, last = pos.min(), pos.max()
            columns = {f: rows[f].to_numpy("float64") for f in FIELDS}
            columns["vwap"] = (columns["high"] + columns["low"] + columns["close"]) / 3
            for field, values in columns.items():
                full = np.full(last - first + 1, np.nan)
                full[pos - first] = values
                self.store[(symbol, field)] = (first, full)

    def feature(self, instrument, field, start_index, end_index, freq):
        first, values = self.store[(instrument, str(field)[1:])]
        si = max(start_index, first)
        ei = min(end_index, first + len(values) - 1)
        if si > ei:
            return pd.Series(dtype="float64")
        return pd.Series(values[si - first: ei - first + 1], index=pd.RangeIndex(si, ei + 1))


def qlib_alpha158(bars: pd.DataFrame) -> pd.DataFrame:
    """Qlib's Alpha158 on ``bars``, rows where a symbol traded, Qlib's names."""
    import qlib
    from qlib.contrib.data.loader import Alpha158DL
    from qlib.data import D
    from qlib.data.data import FeatureD

    calendar = pd.DatetimeIndex(np.sort(bars["date"].unique()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "calendars").mkdir()
        (root / "instruments").mkdir()
        (root / "features").mkdir()
        (root / "calendars" / "day.txt").write_text(
            "\n".join(d.strftime("%Y-%m-%d") for d in calendar) + "\n")
        spans = bars.groupby("symbol")["date"].agg(["min", "max"])
        (root / "instruments" / "all.txt").write_text("".join(
            f"{s}\t{a:%Y-%m-%d}\t{b:%Y-%m-%d}\n" for s, (a, b) in spans.iterrows()))
        qlib.init(provider_uri=str(root), region="us", kernels=1, expression_cache=None,
                  dataset_cache=None)
        FeatureD.register(BarsProvider(bars, calendar))
        fields, names = Alpha158DL.get_feature_config()
        frame = D.features(D.instruments("all"), fields, start_time=calendar[0],
                           end_time=calendar[-1], freq="day")
    frame.columns = names
    frame = frame.reset_index().rename(columns={"instrument": "symbol", "datetime": "date"})
    traded = bars[["symbol", "date"]]
    return traded.merge(frame, on=["symbol", "date"], how="left", validate="1:1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/data/alpha158_qlib.parquet")
    args = parser.parse_args()
    import qlib

    bars = market()
    feats = qlib_alpha158(bars)
    names = [c for c in feats.columns if c not in ("symbol", "date")]
    table = bars.merge(feats, on=["symbol", "date"], validate="1:1")
    table[names] = table[names].astype("float32")  # Qlib's own output precision
    table.attrs = {}
    table.to_parquet(args.out, index=False, compression="zstd")
    print(f"{len(table)} rows × {len(names)} features from Qlib {qlib.__version__}, "
          f"pandas {pd.__version__}, numpy {np.__version__} → {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
