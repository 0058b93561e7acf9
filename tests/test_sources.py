"""Sources: the Yahoo chart protocol over a real local socket, and user files."""

import datetime as dt
import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from alphaline.pipelines.sources import (
    FilesSource,
    SourceError,
    YahooChartSource,
    is_placeholder,
)

FIXTURE = Path(__file__).parent / "data" / "yahoo_chart_aapl.json"


class ChartHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        ChartHandler.requests.append(self.path)
        if self.path.startswith("/v8/finance/chart/AAPL"):
            body, status = FIXTURE.read_bytes(), 200
        else:
            body = json.dumps({"chart": {"result": None, "error": {
                "code": "Not Found", "description": "No data found, symbol may be delisted"}}}
            ).encode()
            status = 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChartHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_chart_response_parses_into_bars_with_corporate_actions(server):
    source = YahooChartSource(["AAPL"], server)
    bars = source.load(dt.date(2020, 8, 25), dt.date(2020, 9, 1))
    assert list(bars["date"].dt.date.astype(str)) == [
        "2020-08-25", "2020-08-26", "2020-08-27", "2020-08-28", "2020-08-31", "2020-09-01"]
    assert bars["close"].iloc[0] == pytest.approx(499.3)
    assert bars.loc[bars["date"] == "2020-08-31", "split_ratio"].item() == 4.0
    assert bars.loc[bars["date"] == "2020-08-28", "dividend"].item() == pytest.approx(0.205)
    assert bars["adj_factor"].iloc[-1] == pytest.approx(131.75 / 134.18)
    assert bars["origin"].iloc[0].endswith("/v8/finance/chart/AAPL")
    query = ChartHandler.requests[-1]
    assert "interval=1d" in query and "events=div%2Csplits" in query


def test_unknown_symbol_is_a_source_error(server):
    with pytest.raises(SourceError, match=r"HTTP 404.*No data found"):
        YahooChartSource(["NOPE"], server).load(dt.date(2020, 8, 25), dt.date(2020, 9, 1))


def test_unreachable_endpoint_is_a_source_error():
    with pytest.raises(SourceError, match="request failed"):
        YahooChartSource(["AAPL"], "http://127.0.0.1:9", timeout_s=2).load(
            dt.date(2020, 8, 25), dt.date(2020, 9, 1))


def test_files_source_reads_per_symbol_csv_and_long_parquet(tmp_path):
    frame = pd.DataFrame({"Date": ["2023-01-03", "2023-01-04"], "Open": [1.0, 2.0],
                          "High": [1.5, 2.5], "Low": [0.5, 1.5], "Close": [1.2, 2.2],
                          "Volume": [100, 200]})
    frame.to_csv(tmp_path / "abc.csv", index=False)
    long = frame.rename(columns=str.lower).assign(symbol="XYZ")
    long.to_parquet(tmp_path / "more.parquet", index=False)
    bars = FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    assert sorted(bars["symbol"].unique()) == ["ABC", "XYZ"]
    assert set(bars["origin"]) == {str(tmp_path / "abc.csv"), str(tmp_path / "more.parquet")}


def test_files_source_names_the_bad_file(tmp_path):
    pd.DataFrame({"date": ["2023-01-03"], "open": [1.0]}).to_csv(tmp_path / "bad.csv",
                                                                index=False)
    with pytest.raises(SourceError, match=r"bad\.csv: missing required columns \['close'\]"):
        FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    with pytest.raises(SourceError, match="data folder not found"):
        FilesSource(tmp_path / "nowhere").load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))


VENDOR = "Date,Open,High,Low,Close,Volume\n2023-01-03,1.0,1.5,0.5,1.2,100\n" \
         "2023-01-04,2.0,2.5,1.5,2.2,200\n"


def test_integer_volumes_and_upper_case_suffixes_are_read(tmp_path):
    (tmp_path / "abc.CSV").write_text(VENDOR)
    pd.read_csv(tmp_path / "abc.CSV").assign(Symbol="XYZ").to_parquet(tmp_path / "x.Parquet")
    bars = FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    assert sorted(bars["symbol"].unique()) == ["ABC", "XYZ"]
    assert bars["volume"].dtype == "float64" and bars["volume"].tolist() == [100, 200] * 2


@pytest.mark.parametrize("day", ["03/01/2023", "01-03-2023", "3 Jan 2023", "20230103"])
def test_ambiguous_dates_are_refused_with_file_and_line(tmp_path, day):
    (tmp_path / "abc.csv").write_text(VENDOR.replace("2023-01-04", day))
    with pytest.raises(SourceError) as err:
        FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    msg = str(err.value)
    assert "abc.csv" in msg and "line 3" in msg and day in msg and "not ISO" in msg


def test_iso_timestamps_give_the_date_as_written(tmp_path):
    (tmp_path / "abc.csv").write_text(VENDOR.replace("2023-01-03", "2023-01-03T16:00:00-05:00")
                                      .replace("2023-01-04", "2023-01-04 00:00:00+00:00"))
    bars = FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    assert bars["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-01-03", "2023-01-04"]


def test_a_column_that_is_not_a_number_names_column_file_and_rows(tmp_path):
    (tmp_path / "abc.csv").write_text(VENDOR.replace(",200", ",2OO"))
    with pytest.raises(SourceError) as err:
        FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    assert "abc.csv: column volume" in str(err.value) and "line 3 ('2OO')" in str(err.value)


def test_an_empty_file_stays_visible(tmp_path):
    (tmp_path / "abc.csv").write_text(VENDOR)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("date,open,high,low,close,volume\n")
    bars = FilesSource(tmp_path).load(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    marks = bars[is_placeholder(bars)]
    assert sorted(marks["symbol"]) == ["EMPTY", "HEADER"]
