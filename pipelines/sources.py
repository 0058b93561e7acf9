"""Where bars come from. Every source returns the bars contract (DESIGN.md §3) plus an
``origin`` column naming the file or endpoint each row came from, so that a failed check
can point at it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import requests

from alphaline.config import Params
from alphaline.errors import SourceError
from alphaline.pipelines.synthetic import generate_market

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]
OPTIONAL_COLUMNS = ["adj_factor", "dividend", "split_ratio"]
# Close-only data (date and close, as many users have) is a valid batch: these may be absent.
# They are never invented from the close (a high equal to the close would feed range
# features a fake zero range); features that need them are refused at start instead
# (``features.definitions.check_inputs``).
REQUIRED_COLUMNS = ["symbol", "date", "close"]
OPTIONAL_FIELDS = ["open", "high", "low", "volume"]
NUMERIC_COLUMNS = ["open", "high", "low", "close", "volume", *OPTIONAL_COLUMNS]
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}  # suffix, any case
# ISO 8601 calendar dates (a time and offset may follow); anything else, such as the
# ambiguous 03/04/2022, is refused rather than guessed.
ISO_DATE = r"^\d{4}-\d{2}-\d{2}(?:[T ]\S.*)?$"
MAX_EXACT_INT = 2**53  # integers beyond this do not survive the float64 contract


class BarSource(Protocol):
    name: str

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame: ...


def provided_fields(bars: pd.DataFrame) -> list[str]:
    """The OHLCV fields the data carries: present with at least one value (an all-empty
    column is one the data does not have, e.g. close-only history merged with full bars)."""
    return [c for c in ("open", "high", "low", "close", "volume")
            if c in bars.columns and bars[c].notna().any()]


def placeholder(symbol: str | None, origin: str) -> pd.DataFrame:
    """The one row an empty file becomes (symbol and origin, no date or values), so that
    validation names it instead of the symbol silently leaving the universe."""
    return pd.DataFrame({"symbol": [symbol], "date": [pd.NaT], "close": [np.nan],
                         "origin": [origin]})


def is_placeholder(bars: pd.DataFrame) -> pd.Series:
    values = [c for c in ("open", "high", "low", "close", "volume") if c in bars.columns]
    return pd.to_datetime(bars["date"], errors="coerce").isna() & bars[values].isna().all(axis=1)


def _first_rows(mask: pd.Series, values: pd.Series, line) -> str:
    bad = values[mask]
    shown = ", ".join(f"{line(i)} ({v!r})" for i, v in bad.head(5).items())
    return shown + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")


def iso_dates(values: pd.Series, where: str, line=lambda i: f"row {i + 1}") -> pd.Series:
    """Session dates from ISO 8601 values (the local date as written; a time is ignored).

    Refuses, naming ``where`` and the first offending rows, anything that is not ISO:
    day-first or month-first dates are ambiguous and are never guessed.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_localize(None)
        return stamps.dt.normalize().astype("datetime64[ns]")
    text = values.map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    present = text.notna() & (text.astype(str).str.strip() != "")
    as_text = text.astype(str).str.strip()
    shaped = as_text.str.match(ISO_DATE)
    parsed = pd.to_datetime(as_text.str[:10].where(shaped), format="%Y-%m-%d", errors="coerce")
    bad = present & parsed.isna()
    if bad.any():
        raise SourceError(
            f"{where}: column date: {int(bad.sum())} value(s) are not ISO dates (YYYY-MM-DD, "
            f"optionally with a time): {_first_rows(bad, text, line)}; day-first or "
            "month-first dates are ambiguous and are not guessed")
    return parsed.astype("datetime64[ns]")


def numeric(frame: pd.DataFrame, where: str, line=lambda i: f"row {i + 1}") -> pd.DataFrame:
    """Price and volume columns as float64 when that loses nothing (integer volumes are
    what most vendors write); a value that is not a number is refused, naming the column,
    ``where`` and the first offending rows."""
    out = frame.copy()
    for col in [c for c in NUMERIC_COLUMNS if c in out.columns]:
        values = out[col]
        if pd.api.types.is_bool_dtype(values):
            raise SourceError(f"{where}: column {col}: booleans, not numbers")
        if pd.api.types.is_numeric_dtype(values):
            converted = values.astype("float64")
            if pd.api.types.is_integer_dtype(values):
                big = values.abs() > MAX_EXACT_INT
                if big.any():
                    raise SourceError(f"{where}: column {col}: integers beyond 2**53 lose "
                                      f"digits as float64: {_first_rows(big, values, line)}")
        else:
            blank = values.isna() | (values.astype(str).str.strip() == "")
            converted = pd.to_numeric(values.where(~blank), errors="coerce").astype("float64")
            bad = ~blank & converted.isna()
            if bad.any():
                raise SourceError(f"{where}: column {col}: {int(bad.sum())} value(s) are not "
                                  f"numbers: {_first_rows(bad, values, line)}")
        out[col] = converted
    return out


def _finish(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize(None).dt.normalize()
    # Rows without a date are kept (empty-file placeholders, missing dates) for validation
    # to name; they are never dropped silently.
    mask = ((frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))) \
        | frame["date"].isna()
    keep = [c for c in [*BAR_COLUMNS, *OPTIONAL_COLUMNS, "origin"] if c in frame.columns]
    return frame.loc[mask, keep].sort_values(["symbol", "date"], ignore_index=True)


class SyntheticSource:
    name = "synthetic"

    def __init__(self, n_symbols: int, seed: int, alpha_strength: float, mode: str, calendar: str,
                 history_start: dt.date, alpha_until: dt.date | None = None):
        self.n_symbols, self.seed = n_symbols, seed
        self.alpha_strength, self.mode, self.calendar = alpha_strength, mode, calendar
        self.history_start, self.alpha_until = history_start, alpha_until

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        # Generate from the fixed history start so every window is a slice of one market.
        bars, _ = self.market(end)
        bars["origin"] = f"synthetic(seed={self.seed}, mode={self.mode})"
        return _finish(bars, start, end)

    def market(self, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
        return generate_market(self.n_symbols, self.history_start, end, self.seed,
                               self.alpha_strength, self.mode, self.calendar,
                               alpha_until=self.alpha_until)


class FilesSource:
    """A folder of CSV or Parquet files (any case of suffix): one per symbol (named after
    it) or long tables with a ``symbol`` column."""

    name = "files"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _raw(self, file: Path) -> pd.DataFrame:
        try:
            if READERS[file.suffix.lower()] == "parquet":
                return pd.read_parquet(file)
            # Dates as text: they are parsed strictly below, never guessed by pandas.
            return pd.read_csv(file, dtype={"date": str, "Date": str, "DATE": str})
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except Exception as exc:  # pandas raises many types for unreadable files
            raise SourceError(f"{file}: cannot be read: {exc}") from exc

    def _read(self, file: Path) -> pd.DataFrame:
        frame = self._raw(file)
        frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
        per_symbol = "symbol" not in frame.columns
        if frame.empty:
            return placeholder(file.stem.upper() if per_symbol else None, str(file))
        if per_symbol:
            frame["symbol"] = file.stem.upper()
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise SourceError(f"{file}: missing required columns {missing} (needs date and "
                              "close; open, high, low, volume when the features use them)")
        csv = READERS[file.suffix.lower()] == "csv"
        line = (lambda i: f"line {i + 2}") if csv else (lambda i: f"row {i + 1}")
        frame["date"] = iso_dates(frame["date"], str(file), line)
        frame = numeric(frame, str(file), line)
        frame["symbol"] = frame["symbol"].astype(str).str.strip()
        frame["origin"] = str(file)
        return frame

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir()
                      if p.is_file() and p.suffix.lower() in READERS)

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: data folder not found")
        files = self.files()
        if not files:
            raise SourceError(f"{self.path}: no .csv or .parquet files")
        frames = [self._read(f) for f in files]
        return _finish(pd.concat(frames, ignore_index=True), start, end)


class YahooChartSource:
    """Daily bars from Yahoo Finance's chart endpoint (the one the yfinance package reads)."""

    name = "yfinance"

    def __init__(self, symbols: list[str], base_url: str, timeout_s: float = 20.0,
                 session: requests.Session | None = None):
        self.symbols, self.base_url, self.timeout_s = symbols, base_url.rstrip("/"), timeout_s
        self.session = session or requests.Session()

    def _fetch(self, symbol: str, start: dt.date, end: dt.date) -> dict:
        url = f"{self.base_url}/v8/finance/chart/{symbol}"
        params = {
            "period1": int(pd.Timestamp(start, tz="UTC").timestamp()),
            "period2": int((pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)).timestamp()),
            "interval": "1d",
            "events": "div,splits",
            "includeAdjustedClose": "true",
        }
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout_s,
                                    headers={"User-Agent": "alphaline"})
        except requests.RequestException as exc:
            raise SourceError(f"{url}: request failed: {exc}") from exc
        if resp.status_code != 200:
            raise SourceError(f"{url}: HTTP {resp.status_code}: {resp.text[:200]}")
        payload = resp.json().get("chart", {})
        if payload.get("error") or not payload.get("result"):
            raise SourceError(f"{url}: {payload.get('error') or 'empty result'}")
        return payload["result"][0]

    @staticmethod
    def parse(symbol: str, result: dict, origin: str) -> pd.DataFrame:
        tz = result["meta"].get("exchangeTimezoneName", "America/New_York")
        stamps = pd.to_datetime(result.get("timestamp", []), unit="s", utc=True)
        quote = result["indicators"]["quote"][0]
        frame = pd.DataFrame({
            "symbol": symbol,
            "date": stamps.tz_convert(tz).tz_localize(None).normalize(),
            **{c: np.asarray(quote[c], dtype="float64") for c in
               ("open", "high", "low", "close", "volume")},
        })
        adj = result["indicators"].get("adjclose")
        if adj:
            frame["adj_factor"] = np.asarray(adj[0]["adjclose"], dtype="float64") / frame["close"]
        events = result.get("events", {})
        frame["dividend"] = 0.0
        frame["split_ratio"] = 1.0
        by_date = {d: i for i, d in enumerate(frame["date"])}
        for ev in events.get("dividends", {}).values():
            day = pd.Timestamp(ev["date"], unit="s", tz="UTC").tz_convert(tz).tz_localize(None)
            if day.normalize() in by_date:
                frame.loc[by_date[day.normalize()], "dividend"] = float(ev["amount"])
        for ev in events.get("splits", {}).values():
            day = pd.Timestamp(ev["date"], unit="s", tz="UTC").tz_convert(tz).tz_localize(None)
            if day.normalize() in by_date:
                ratio = float(ev["numerator"]) / float(ev["denominator"])
                frame.loc[by_date[day.normalize()], "split_ratio"] = ratio
        frame["origin"] = origin
        return frame

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        frames = [
            self.parse(s, self._fetch(s, start, end), f"{self.base_url}/v8/finance/chart/{s}")
            for s in self.symbols
        ]
        return _finish(pd.concat(frames, ignore_index=True), start, end)


def make_source(params: Params, root: Path) -> BarSource:
    data = params.data
    if data.source == "synthetic":
        syn = data.synthetic
        return SyntheticSource(syn.n_symbols, syn.seed, syn.alpha_strength, syn.mode,
                               data.calendar, data.start, syn.alpha_until)
    if data.source == "files":
        path = Path(data.files.path)
        return FilesSource(path if path.is_absolute() else root / path)
    return YahooChartSource(data.yfinance.symbols, data.yfinance.base_url)
