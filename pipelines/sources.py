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


class BarSource(Protocol):
    name: str

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame: ...


def _finish(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize(None).dt.normalize()
    mask = (frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))
    keep = [c for c in [*BAR_COLUMNS, *OPTIONAL_COLUMNS, "origin"] if c in frame.columns]
    return frame.loc[mask, keep].sort_values(["symbol", "date"], ignore_index=True)


class SyntheticSource:
    name = "synthetic"

    def __init__(self, n_symbols: int, seed: int, alpha_strength: float, mode: str, calendar: str,
                 history_start: dt.date):
        self.n_symbols, self.seed = n_symbols, seed
        self.alpha_strength, self.mode, self.calendar = alpha_strength, mode, calendar
        self.history_start = history_start

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        # Generate from the fixed history start so every window is a slice of one market.
        bars, _ = self.market(end)
        bars["origin"] = f"synthetic(seed={self.seed}, mode={self.mode})"
        return _finish(bars, start, end)

    def market(self, end: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
        return generate_market(self.n_symbols, self.history_start, end, self.seed,
                               self.alpha_strength, self.mode, self.calendar)


class FilesSource:
    """A folder of CSV or Parquet files: one per symbol (named after it) or long tables."""

    name = "files"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _read(self, file: Path) -> pd.DataFrame:
        try:
            frame = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
        except Exception as exc:  # pandas raises many types for unreadable files
            raise SourceError(f"{file}: cannot be read: {exc}") from exc
        frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
        if "symbol" not in frame.columns:
            frame["symbol"] = file.stem.upper()
        missing = [c for c in BAR_COLUMNS if c not in frame.columns]
        if missing:
            raise SourceError(f"{file}: missing required columns {missing}")
        frame["origin"] = str(file)
        return frame

    def load(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: data folder not found")
        files = sorted(p for p in self.path.iterdir() if p.suffix in (".csv", ".parquet"))
        if not files:
            raise SourceError(f"{self.path}: no .csv or .parquet files")
        return _finish(pd.concat([self._read(f) for f in files], ignore_index=True), start, end)


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
                               data.calendar, data.start)
    if data.source == "files":
        path = Path(data.files.path)
        return FilesSource(path if path.is_absolute() else root / path)
    return YahooChartSource(data.yfinance.symbols, data.yfinance.base_url)
