"""Time and size of a backtest report at research scale.

A synthetic backtest (the tests' fixture at a larger size) is written as the HTML report;
the page's size and build time are printed beside a reference built in the same run: the
same equity chart as a self-contained plotly page (``include_plotlyjs=True``, what a report
must carry to open offline with plotly), quoted as ratios.

    python benches/reports.py [--days 1260] [--symbols 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the synthetic result lives with the tests

from tests.report_fixtures import shap_summary, synthetic_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=1260)
    ap.add_argument("--symbols", type=int, default=100)
    args = ap.parse_args()

    import plotly.graph_objects as go

    from alphaline.reporting.backtest import write_backtest_report

    t0 = time.perf_counter()
    result = synthetic_result(n_days=args.days, n_symbols=args.symbols)
    made = time.perf_counter() - t0
    shap = {"1": shap_summary([f"f{i}" for i in range(20)]),
            "2": shap_summary([f"f{i}" for i in range(20)], seed=1)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        page = write_backtest_report(result, Path(tmp) / "run", title="bench",
                                     shap_by_version=shap, dsr={"deflated_sharpe": 0.5,
                                                                "n_trials": 10})
        seconds = time.perf_counter() - t0
        size = page.stat().st_size
        charts = page.read_text().count('class="chart"')

        t0 = time.perf_counter()
        wealth = (1 + result.returns).cumprod()
        ew = (1 + result.baselines["equal_weight"]).cumprod()
        fig = go.Figure([go.Scatter(x=wealth.index, y=wealth, name="strategy"),
                         go.Scatter(x=ew.index, y=ew, name="equal weight")])
        ref = Path(tmp) / "plotly.html"
        fig.write_html(ref, include_plotlyjs=True, full_html=True)
        ref_seconds = time.perf_counter() - t0
        ref_size = ref.stat().st_size

    print(f"synthetic result: {args.days} sessions × {args.symbols} symbols, "
          f"{len(result.trades):,} fills, built in {made:.1f} s")
    print(f"report: {charts} charts, {size / 1e6:.2f} MB, written in {seconds:.2f} s")
    print(f"reference, one plotly chart offline: {ref_size / 1e6:.2f} MB, {ref_seconds:.2f} s")
    print(f"whole report / one plotly chart: size {size / ref_size:.2f}×")
    print(json.dumps({"bench": "reports", "days": args.days, "symbols": args.symbols,
                      "fills": len(result.trades), "charts": charts,
                      "report_mb": round(size / 1e6, 3), "report_s": round(seconds, 2),
                      "plotly_one_chart_mb": round(ref_size / 1e6, 3),
                      "plotly_one_chart_s": round(ref_seconds, 2),
                      "size_ratio_report_vs_plotly_chart": round(size / ref_size, 3)}))


if __name__ == "__main__":
    main()
