"""Reports, looked at as a person would: each page opens in headless Chromium from a file://
URL with no console error, every chart renders, and the equity chart shows ink; the figures
on the page are the libraries' figures."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import optimal_block_length
from scipy import stats as sps

from alphaline.models.metrics import deflated_sharpe, probabilistic_sharpe, sharpe
from alphaline.reporting import attribution, signal
from alphaline.reporting import stats as st
from alphaline.reporting.backtest import write_backtest_report
from alphaline.reporting.daily import book_weights, write_daily_report
from alphaline.trading.daily import DayResult
from tests.chromium import Browser, ensure_chromium, pixel_stats
from tests.report_fixtures import shap_summary, synthetic_result

STRATEGY_INK = (0x1F, 0x4E, 0x79)  # charts.STRATEGY, the strategy's line
BACKTEST_CHARTS = {"equity", "drawdown", "rolling", "monthly", "costs", "exposures", "ic",
                   "quantiles", "bootstrap", "shap-1", "shap-2"}
DSR = {"deflated_sharpe": 0.93, "n_trials": 40}


@pytest.fixture(scope="module")
def result():
    return synthetic_result()


@pytest.fixture(scope="module")
def report(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "backtest" / "run-1"
    shap = {"1": shap_summary(["mom_20", "rev_5", "vol_20", "beta_60"]),
            "2": shap_summary(["mom_20", "rev_5", "vol_20"], seed=1)}
    return write_backtest_report(result, out, title="Synthetic backtest", shap_by_version=shap,
                                 dsr=DSR, bootstrap_reps=300)


@pytest.fixture(scope="session")
def browser():
    b = Browser(ensure_chromium())
    yield b
    b.close()


def test_backtest_report_opens_with_every_chart_rendered(report, browser):
    load = browser.open(report)
    assert load.errors == []
    rendered = {c["id"] for c in load.charts if c["rendered"]}
    assert rendered == BACKTEST_CHARTS, {c["id"]: c for c in load.charts}
    equity = next(c for c in load.charts if c["id"] == "equity")
    png = browser.screenshot({k: equity[k] for k in ("x", "y", "width", "height")})
    px = pixel_stats(png, STRATEGY_INK)
    assert px["variance"] > 200, px  # not a blank or flat region
    assert px["non_white"] > 0.03, px
    assert px["ink"] > 0.002, px  # the strategy's line is drawn


def test_the_browser_check_fails_on_a_broken_or_missing_chart_and_on_console_errors(
        report, browser, tmp_path):
    """The check above can fail: a corrupt image, a removed chart and a script error are
    each caught."""
    html = report.read_text()
    html, n = re.subn(r'(<figure class="chart" id="chart-drawdown"[^>]*>\s*<img src=")[^"]+',
                      r"\1data:image/svg+xml;base64,PHN2Zz48", html)
    assert n == 1
    html = re.sub(r'<figure class="chart" id="chart-monthly".*?</figure>', "", html,
                  flags=re.S)
    html = html.replace("</body>", "<script>console.error('chart failed');</script></body>")
    broken = tmp_path / "index.html"
    broken.write_text(html)
    load = browser.open(broken)
    states = {c["id"]: c["rendered"] for c in load.charts}
    assert states["drawdown"] is False and "monthly" not in states
    assert {k for k, ok in states.items() if ok} == BACKTEST_CHARTS - {"drawdown", "monthly"}
    assert any("chart failed" in e for e in load.errors), load.errors


def test_report_is_one_self_contained_file(report):
    html = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert "<script" not in html and "<link" not in html
    assert html.count('class="chart"') == len(BACKTEST_CHARTS)
    assert report.stat().st_size < 3_000_000
    journal = pd.read_csv(report.parent / "trades.csv")
    assert len(journal) > 200 and "The latest 200 of" in html


def test_header_figures_are_empyricals_and_the_papers(result, report):
    r = result.returns
    h = st.headline(r)
    assert h["sharpe"] == pytest.approx(ep.sharpe_ratio(r))
    assert h["sharpe"] == pytest.approx(sharpe(r) * np.sqrt(252))  # the project's own
    assert h["cagr"] == pytest.approx(ep.cagr(r))
    assert h["max_drawdown"] == pytest.approx(ep.max_drawdown(r))
    assert h["sortino"] == pytest.approx(ep.sortino_ratio(r))
    x = r.to_numpy()
    assert st.psr(r) == pytest.approx(probabilistic_sharpe(
        sharpe(x), len(x), sps.skew(x), sps.kurtosis(x, fisher=False)))
    trials = [0.01, 0.03, -0.02, 0.05]
    assert st.dsr(r, {"trial_sharpes": trials, "n_trials": 40}) == pytest.approx(
        deflated_sharpe(r, trials, 40))
    header = report.read_text().split('id="key-figures"')[1].split("</header>")[0]
    assert f"{h['cagr']:+.1%}" in header and f"{h['sharpe']:,.2f}" in header
    assert f"{h['max_drawdown']:+.1%}" in header and "93%" in header  # the DSR given
    ew = st.headline(result.baselines["equal_weight"])
    assert f"{h['cagr'] - ew['cagr']:+.1%}" in header


def test_psr_is_a_calibrated_probability_under_skew_and_fat_tails():
    """Bailey & López de Prado's claim, checked by simulation: at the true Sharpe, PSR is
    uniform, so it exceeds 95% on 5% of samples, even for negatively skewed, fat-tailed
    returns, where the normal-returns standard error (Lo 2002) overstates confidence."""
    rng = np.random.default_rng(0)
    n, reps, true_sr = 250, 4000, 0.1
    x = true_sr - (rng.gamma(2.0, 1.0, (reps, n)) - 2.0) / np.sqrt(2.0)  # skew −1.4, kurt 6
    sr = x.mean(axis=1) / x.std(axis=1, ddof=1)
    skew, kurt = sps.skew(x, axis=1), sps.kurtosis(x, axis=1, fisher=False)
    p = np.array([probabilistic_sharpe(sr[i], n, skew[i], kurt[i], true_sr)
                  for i in range(reps)])
    assert 0.035 < (p > 0.95).mean() < 0.065
    assert 0.035 < (p < 0.05).mean() < 0.065
    normal = sps.norm.cdf((sr - true_sr) * np.sqrt(n - 1) / np.sqrt(1 + sr**2 / 2))
    assert (normal > 0.95).mean() > 0.065  # without the skew and kurtosis terms: too sure


def test_bootstrap_bands_resample_in_optimal_blocks_around_the_observed_figures(result):
    r = result.returns
    h = st.headline(r)
    path = st.path_figures(r.to_numpy())
    assert path == pytest.approx([h["sharpe"], h["cagr"], h["max_drawdown"]])
    bands = st.bootstrap_bands(r, reps=300, seed=3)
    assert bands.block_length == pytest.approx(
        max(1.0, optimal_block_length(r.to_numpy())["stationary"].iloc[0]))
    table = bands.band()
    for figure in ("sharpe", "cagr"):
        assert table.at[figure, "p5"] < h[figure] < table.at[figure, "p95"], table
    assert (table["p5"] < table["p95"]).all()
    assert (bands.draws["max_drawdown"] <= 0).all()
    again = st.bootstrap_bands(r, reps=300, seed=3)
    pd.testing.assert_frame_equal(bands.draws, again.draws)  # seeded: the page is repeatable


def test_ic_decays_with_the_horizon_of_a_one_day_signal():
    """The planted score knows one session's return only: a longer horizon dilutes it, so
    the IC falls with the horizon (about as 1/sqrt(h))."""
    result = synthetic_result(n_days=300, n_symbols=60, alpha=0.25)
    decay = signal.ic_decay(result.scores, result.closes)
    assert list(decay.index) == [1, 2, 5, 10, 20]
    assert decay.at[1, "rank_ic"] > 0.1 and decay.at[1, "rank_ic_t"] > 10, decay
    assert decay["rank_ic"].is_monotonic_decreasing, decay
    assert decay.at[20, "rank_ic"] < decay.at[1, "rank_ic"] / 3, decay
    q = signal.quantile_returns(result.scores, result.closes)
    means = q.mean()
    assert means[5] > means[1] and signal.quantile_spread(q).mean() > 0


def test_forward_returns_start_at_the_next_close():
    closes = pd.DataFrame({"A": [100.0, 110.0, 121.0, 133.1, 100.0]},
                          index=pd.bdate_range("2024-01-01", periods=5))
    fwd = signal.forward_returns(closes, 2)
    assert fwd["A"].iloc[0] == pytest.approx(133.1 / 110.0 - 1)  # decide t0, fill t1, hold 2
    assert fwd["A"].iloc[1] == pytest.approx(100.0 / 121.0 - 1)
    assert fwd["A"].iloc[2:].isna().all()


def test_costs_add_back_to_the_before_cost_returns(result):
    d = result.daily
    added = attribution.before_cost_returns(d) - d["returns"]
    start = d["nav"] / (1 + d["returns"])
    kinds = ["commission", "spread", "impact", "borrow"]
    assert added.to_numpy() == pytest.approx((d[kinds].sum(axis=1) / start).to_numpy())
    table = attribution.cost_table(d)
    assert table.at["total", "dollars"] == pytest.approx(d[kinds].to_numpy().sum())
    assert table.loc[kinds, "share"].sum() == pytest.approx(1.0)
    sectors = attribution.sector_exposure(result.weights, result.sectors)
    assert sectors.sum(axis=1).to_numpy() == pytest.approx(
        result.weights.sum(axis=1).to_numpy())


def test_a_result_the_report_cannot_read_is_refused_and_nothing_is_written(result, tmp_path):
    bad = synthetic_result(n_days=40)
    bad.daily = bad.daily.drop(columns=["impact"])
    with pytest.raises(ValueError, match=r"daily: missing columns \['impact'\]"):
        write_backtest_report(bad, tmp_path / "r", title="bad")
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match=r"shap_by_version\['v'\]: missing columns"):
        write_backtest_report(synthetic_result(n_days=40), tmp_path / "s", title="bad",
                              shap_by_version={"v": pd.DataFrame({"feature": ["a"]})},
                              bootstrap_reps=20)
    assert not (tmp_path / "s").exists()


def _day_result(day: dt.date) -> DayResult:
    risk = {
        "confidence": 0.99, "state": None, "kill_switches": None, "headroom": [
            {"rule": "daily_loss", "value": -0.004, "limit": -0.03, "headroom": 0.026}],
        "exposures": {"gross": 1.0, "net": 0.01, "beta": 0.05, "names": 6,
                      "sectors": {"tech": {"net": 0.1, "gross": 0.5}},
                      "top": [{"symbol": "S00", "weight": 0.2}]},
        "var": {"historical": {"var": 12_000.0, "cvar": 15_000.0, "var_pct_nav": 0.012,
                               "cvar_pct_nav": 0.015}},
        "stress": [{"scenario": "March 2020", "window": "2020-03-09..2020-03-16",
                    "market": -0.18, "pnl": -9_000.0, "pnl_pct_nav": -0.009}],
    }
    return DayResult(day=day, model_version="3", signals=6, fills=4,
                     orders_submitted=["a", "b"], orders_rejected=[("c", "max weight")],
                     nav=1_004_000.0, gross_exposure=1.0, net_exposure=0.01,
                     kill_switches=[], risk=risk)


def test_daily_report_page_renders_its_nav_and_book_charts(browser, tmp_path):
    day = dt.date(2024, 3, 8)
    nav = pd.DataFrame({"day": [d.date() for d in pd.bdate_range("2024-02-01", day)]})
    nav["nav"] = 1e6 * np.cumprod(1 + np.random.default_rng(1).normal(0, 0.004, len(nav)))
    nav["gross_exposure"], nav["net_exposure"] = 1.0, 0.01
    holdings = {"S00": 400.0, "S01": 300.0, "S02": -350.0, "S03": -200.0, "S04": 100.0}
    closes = {"S00": 500.0, "S01": 400.0, "S02": 520.0, "S03": 610.0, "S04": 90.0}
    book = book_weights(holdings, closes, 1_004_000.0)
    assert book["S02"] == pytest.approx(-350 * 520 / 1_004_000)
    scores = pd.DataFrame({"symbol": list(closes), "score": [0.3, 0.1, -0.2, -0.4, 0.0],
                           "reasons": [[{"feature": "mom_20", "shap": 0.01}]] * 5})
    orders = pd.DataFrame([{"order": "a", "symbol": "S00", "side": "BUY", "quantity": 10.0,
                            "reference_price": 500.0, "status": "SUBMITTED", "reason": ""},
                           {"order": "c", "symbol": "S09", "side": "SELL", "quantity": 5.0,
                            "reference_price": 50.0, "status": "REJECTED",
                            "reason": "max weight"}])
    page = write_daily_report(_day_result(day), scores, nav, book, orders,
                              tmp_path / f"{day}.html")
    load = browser.open(page)
    assert load.errors == []
    assert {c["id"]: c["rendered"] for c in load.charts} == {"nav": True, "book": True}
    html = page.read_text()
    for text in ("March 2020", "max weight", "historical", "daily_loss", "mom_20 +0.0100"):
        assert text in html, text
    chart = next(c for c in load.charts if c["id"] == "nav")
    px = pixel_stats(browser.screenshot({k: chart[k] for k in ("x", "y", "width", "height")}),
                     STRATEGY_INK)
    assert px["ink"] > 0.002 and px["variance"] > 200, px


def test_report_logs_into_its_mlflow_run(report, tmp_path):
    import mlflow

    from alphaline.models.registry import Registry
    from alphaline.reporting.publish import log_to_mlflow

    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts",
                        "reports")
    run = registry.client.create_run(registry.experiment_id())
    uri = log_to_mlflow(report.parent, registry, run.info.run_id)
    assert uri.endswith("/report/index.html")
    listed = {a.path for a in registry.client.list_artifacts(run.info.run_id, "report")}
    assert listed == {"report/index.html", "report/trades.csv"}
    local = registry.client.download_artifacts(run.info.run_id, "report/index.html",
                                               str(tmp_path / "back"))
    assert Path(local).read_text() == report.read_text()
    assert mlflow.get_tracking_uri() != registry.tracking_uri  # the fluent scope was restored
    with pytest.raises(FileNotFoundError, match=r"no index\.html"):
        log_to_mlflow(tmp_path, registry, run.info.run_id)


def test_a_flow_publishes_a_link_to_its_report(report, prefect_harness, tmp_path):
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from alphaline.reporting.publish import link_artifact

    page = tmp_path / "run-9" / "index.html"
    page.parent.mkdir()
    shutil.copy(report, page)

    @flow(name="report-link-test")
    def publish() -> str:
        return str(link_artifact(page, "backtest-report-test", "a backtest report"))

    publish()

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["backtest-report-test"])))
    found = asyncio.run(read())
    assert found and found[0].flow_run_id is not None  # beside the flow run that made it
    assert f"({page.resolve().as_uri()})" in found[0].data  # a Markdown link to the page
    with pytest.raises(ValueError, match="lowercase"):
        link_artifact(page, "Backtest Report", "bad key")


def test_the_vectorized_engines_result_makes_a_report_that_renders(browser, tmp_path):
    """The real result type as an engine fills it (NaN betas, baselines with a warm-up, one
    research version without a training date), not only the synthetic one."""
    from alphaline.config import load_params
    from alphaline.pipelines.synthetic import generate_market
    from alphaline.trading.backtest.assemble import from_engine
    from alphaline.trading.backtest.vectorized import book_backtest, market_grids
    from alphaline.trading.costs import market_panel
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml")
    bars, _ = generate_market(16, "2021-06-01", "2022-02-28", seed=5, alpha_strength=0.15)
    grid = market_grids(market_panel(bars))
    close = grid["close"]
    nxt = close.shift(-2) / close.shift(-1) - 1  # a noisy view of the next session's return
    noise = np.random.default_rng(0).normal(0, 1, nxt.shape)
    panel = (0.2 * nxt / np.nanstd(nxt.to_numpy()) + noise).loc["2021-09-01":]
    scores = panel.rename_axis(index="date", columns="symbol").stack().rename("score") \
        .reset_index()
    result = from_engine(book_backtest(scores, grid, params), scores, grid, params,
                         meta={"run_id": "engine"})
    page = write_backtest_report(result, tmp_path / "engine", title="engine",
                                 bootstrap_reps=100)
    load = browser.open(page)
    assert load.errors == []
    assert {c["id"] for c in load.charts if c["rendered"]} == BACKTEST_CHARTS - {"shap-1",
                                                                                 "shap-2"}
    assert "No SHAP summary was given" in page.read_text()


def test_a_backtest_that_never_traded_still_makes_a_page_that_renders(browser, tmp_path):
    """A halted or empty run: flat NAV, no fills, no scores. The page says so and renders."""
    from alphaline.trading.backtest.result import TRADE_COLUMNS

    flat = synthetic_result(n_days=40)
    moving = ["returns", "gross", "net", "long", "short", "turnover", "commission", "spread",
              "impact", "borrow"]
    flat.daily[moving] = 0.0
    flat.daily["nav"], flat.daily["beta"] = 1e6, np.nan
    flat.trades = pd.DataFrame(columns=TRADE_COLUMNS)
    flat.scores = pd.DataFrame(columns=["date", "symbol", "score"])
    flat.weights = pd.DataFrame(index=flat.daily.index)
    page = write_backtest_report(flat, tmp_path / "flat", title="flat", bootstrap_reps=50)
    load = browser.open(page)
    assert load.errors == []
    assert {c["id"] for c in load.charts if c["rendered"]} == {
        "equity", "drawdown", "rolling", "monthly", "costs", "exposures", "bootstrap"}
    html = page.read_text()
    assert "No scores in this result." in html and "No trades." in html
