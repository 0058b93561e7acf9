"""The one book: every method and weighting, the limits after every cap (a property test
over random panels), and the rebalance rules."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaline.config import load_params
from alphaline.errors import MissingPrerequisite
from alphaline.trading.book import BookContext, BookLimits, build_book
from alphaline.trading.costs import CostModel
from alphaline.trading.portfolio import long_short_weights
from alphaline.trading.rebalance import RebalanceRules, plan_rebalance
from tests.conftest import REPO

PARAMS = load_params(REPO / "params.yaml")
DAY = dt.date(2024, 1, 2)
TOL = 1e-9  # the risk engine's own tolerance


def params(**overrides):
    return PARAMS.with_overrides(overrides)


def assert_within_limits(scores: pd.DataFrame, w: pd.Series, p) -> None:
    """Every pre-trade book limit the params set, per date."""
    limits = BookLimits.from_params(p)
    frame = scores.assign(w=w.to_numpy())
    if "date" not in frame:
        frame["date"] = 0
    assert np.isfinite(frame["w"]).all()
    for _, day in frame.groupby("date"):
        assert day["w"].abs().sum() <= p.risk.max_gross_exposure + TOL
        assert day["w"].abs().sum() <= p.portfolio.gross_exposure + TOL
        assert abs(day["w"].sum()) <= p.risk.max_net_exposure + TOL
        assert day["w"].abs().max() <= min(p.risk.max_position_weight,
                                           p.portfolio.max_position_weight) + TOL
        if "beta" in day:
            beta = day["beta"].fillna(1.0)
            assert abs((day["w"] * beta).sum()) <= limits.beta + TOL
        if "sector" in day:
            net = day["w"].groupby(day["sector"].fillna("(no sector)")).sum()
            assert net.abs().max() <= limits.sector + TOL


@st.composite
def panels(draw):
    """Random score panels: 2..2,000 names, 1..3 dates, NaNs, heavy ties, optional bet
    sizes, probabilities, betas and sectors; random but valid params."""
    n = draw(st.integers(2, 2000))
    n_dates = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from([0, 3, 50]))  # 0: continuous; else that many tied values
    size = n * n_dates
    score = rng.normal(size=size) if levels == 0 else rng.integers(0, levels, size) * 1.0
    score[rng.random(size) < draw(st.sampled_from([0.0, 0.1, 0.9]))] = np.nan
    frame = pd.DataFrame({"date": np.repeat(pd.bdate_range("2024-01-02", periods=n_dates), n),
                          "symbol": np.tile([f"S{i}" for i in range(n)], n_dates),
                          "score": score})
    method = draw(st.sampled_from(["quantile_long_short", "long_only_top_k",
                                   "meta_sized_long_short"]))
    prob = rng.uniform(0.3, 1.0, size)
    frame["probability"] = prob
    frame["size"] = np.where(np.isnan(score), np.nan,
                             np.sign(rng.normal(size=size)) * np.where(prob >= 0.5, prob, 0.0))
    long_only = method == "long_only_top_k"
    if not long_only and draw(st.booleans()):
        frame["beta"] = np.where(rng.random(size) < 0.05, np.nan, rng.uniform(-0.5, 2.5, size))
    if not long_only and draw(st.booleans()):
        frame["sector"] = rng.choice(["tech", "energy", "health", None], size)
    risk_pos = draw(st.floats(0.01, 0.25))
    risk_gross = draw(st.floats(0.1, 3.0))
    risk_net = draw(st.floats(0.01, 0.5))
    risk_beta = draw(st.floats(0.0, 0.5))
    risk_sector = draw(st.floats(0.01, 0.5))
    gross = draw(st.floats(0.05, 1.0)) * (min(risk_gross, risk_net) if long_only else risk_gross)
    p = params(**{
        "portfolio.method": method,
        "portfolio.quantile": draw(st.floats(0.01, 0.5)),
        "portfolio.top_k": draw(st.integers(1, 300)),
        "portfolio.gross_exposure": gross,
        "portfolio.max_position_weight": draw(st.floats(0.1, 1.0)) * risk_pos,
        "portfolio.kelly_fraction": draw(st.sampled_from([None, 0.25, 1.0])),
        "portfolio.beta_neutral": "beta" in frame and draw(st.booleans()),
        "portfolio.sector_neutral": "sector" in frame and draw(st.booleans()),
        "portfolio.max_beta_exposure": draw(st.floats(0.0, 1.0)) * risk_beta,
        "portfolio.max_sector_net": draw(st.floats(0.0, 1.0)) * risk_sector,
        "risk.max_gross_exposure": risk_gross,
        "risk.max_net_exposure": risk_net,
        "risk.max_position_weight": risk_pos,
        "risk.max_beta_exposure": risk_beta,
        "risk.max_sector_exposure": risk_sector,
    })
    return frame, p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_every_book_passes_every_pre_trade_limit(case):
    scores, p = case
    w = build_book(scores, p)
    assert_within_limits(scores, w, p)
    assert (np.sign(w[w != 0]) != 0).all()
    if p.portfolio.method == "long_only_top_k":
        assert (w >= 0).all()


@settings(max_examples=8, deadline=None)
@given(st.integers(2, 40), st.sampled_from(["inverse_volatility", "risk_parity", "hrp"]),
       st.integers(0, 1000))
def test_covariance_weightings_pass_the_limits_too(n, weighting, seed):
    rng = np.random.default_rng(seed)
    symbols = [f"S{i}" for i in range(n)]
    returns = pd.DataFrame(rng.normal(0, 0.02, (80, n)) * rng.uniform(0.3, 3, n),
                           index=pd.bdate_range("2023-09-01", periods=80), columns=symbols)
    returns.iloc[:60, 0] = np.nan  # one name with a short history
    scores = pd.DataFrame({"symbol": symbols, "score": rng.normal(size=n)})
    p = params(**{"portfolio.weighting": weighting, "portfolio.vol_target": 0.05})
    w = build_book(scores, p, BookContext(returns, None, None, None))
    assert_within_limits(scores, w, p)


def test_equal_quantile_book_is_the_vectorized_one_and_stays_fast():
    rng = np.random.default_rng(1)
    n, days = 500, 2520
    panel = pd.DataFrame({"date": np.repeat(np.arange(days), n),
                          "symbol": np.tile(np.arange(n).astype(str), days),
                          "score": rng.normal(size=n * days)})
    start = time.perf_counter()
    w = build_book(panel, PARAMS)
    elapsed = time.perf_counter() - start
    reference = long_short_weights(panel["score"], 0.2, 1.0, 0.05, panel["date"].to_numpy())
    assert np.allclose(w.to_numpy(), reference.to_numpy(), atol=1e-15)
    assert elapsed < 10.0, elapsed  # about 0.6 s on one core


def test_worked_example():
    """The README's example: ten names, quantile 0.2, gross 1.0, per-name cap 0.05."""
    scores = pd.DataFrame({"symbol": list("ABCDEFGHIJ"), "score": np.arange(10.0)})
    w = build_book(scores, PARAMS).set_axis(scores["symbol"])
    assert w[["I", "J"]].tolist() == [0.05, 0.05] and w[["A", "B"]].tolist() == [-0.05, -0.05]
    assert w.abs().sum() == pytest.approx(0.2)  # 0.25 a name capped at 0.05
    # a long-only book's net is its gross: the config check holds it within risk's net limit
    top = params(**{"portfolio.method": "long_only_top_k", "portfolio.top_k": 3,
                    "portfolio.gross_exposure": 0.09})
    w = build_book(scores, top).set_axis(scores["symbol"])
    assert w[["H", "I", "J"]].tolist() == pytest.approx([0.03] * 3) and w.sum() == 0.09
    sized = params(**{"portfolio.method": "meta_sized_long_short",
                      "portfolio.kelly_fraction": 0.5})
    bets = scores.assign(size=[-0.6, -0.55, 0, 0, 0, 0, 0, 0, 0.52, 0.9],
                         probability=[0.6, 0.55, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.52, 0.9])
    w = build_book(bets, sized).set_axis(scores["symbol"])
    # Kelly caps 0.5 × (2p − 1): J 0.40, I 0.02, A 0.10, B 0.05; then the 0.05 name cap.
    # Longs: I 0.02 + J 0.05 = 0.07; shorts A 0.05 + B 0.05 scaled down to 0.07.
    assert w["I"] == pytest.approx(0.02) and w["J"] == pytest.approx(0.05)
    assert w[["A", "B"]].tolist() == pytest.approx([-0.035, -0.035]) and w.sum() == 0


def test_risk_weightings_favour_quiet_names():
    rng = np.random.default_rng(3)
    symbols = [f"S{i}" for i in range(10)]
    vols = np.array([0.005, 0.04] * 5)
    returns = pd.DataFrame(rng.normal(0, 1, (120, 10)) * vols,
                           index=pd.bdate_range("2023-06-01", periods=120), columns=symbols)
    scores = pd.DataFrame({"symbol": symbols, "score": np.arange(10.0)})
    wide = {"portfolio.quantile": 0.4, "portfolio.max_position_weight": 0.25,
            "risk.max_position_weight": 0.25}
    for weighting in ("inverse_volatility", "risk_parity", "hrp"):
        p = params(**wide, **{"portfolio.weighting": weighting})
        w = build_book(scores, p, BookContext(returns, None, None, None)).set_axis(symbols)
        assert w["S8"] > 2 * w["S9"] > 0 and -w["S0"] > 2 * -w["S1"] > 0, weighting
        assert w.sum() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(MissingPrerequisite, match="returns history"):
        build_book(scores, params(**{"portfolio.weighting": "hrp"}))


def test_vol_target_scales_the_book_down():
    rng = np.random.default_rng(5)
    symbols = [f"S{i}" for i in range(20)]
    returns = pd.DataFrame(rng.normal(0, 0.03, (100, 20)),
                           index=pd.bdate_range("2023-06-01", periods=100), columns=symbols)
    scores = pd.DataFrame({"symbol": symbols, "score": rng.normal(size=20)})
    ctx = BookContext(returns, None, None, None)
    free = build_book(scores, PARAMS, ctx)
    capped = build_book(scores, params(**{"portfolio.vol_target": 0.05}), ctx)
    ratio = capped.abs().sum() / free.abs().sum()
    assert 0 < ratio < 1
    # GARCH forecasts, when the scores carry them, set the volatilities instead
    calm = build_book(scores.assign(garch_vol=0.001), params(**{"portfolio.vol_target": 0.05}),
                      ctx)
    assert calm.abs().sum() > capped.abs().sum()


def test_beta_and_sector_neutral_book():
    rng = np.random.default_rng(7)
    n = 60
    scores = pd.DataFrame({"symbol": [f"S{i}" for i in range(n)], "score": rng.normal(size=n),
                           "beta": np.linspace(0.2, 2.0, n),
                           "sector": rng.choice(list("ABC"), n)})
    p = params(**{"portfolio.beta_neutral": True, "portfolio.sector_neutral": True,
                  "portfolio.max_beta_exposure": 0.01, "portfolio.max_sector_net": 0.0})
    w = build_book(scores, p)
    assert_within_limits(scores, w, p)
    assert abs((w * scores["beta"]).sum()) <= 0.01 + TOL
    assert w.abs().sum() > 0.3  # neutral by shrinking a few names, not by emptying the book
    with pytest.raises(MissingPrerequisite, match="beta"):
        build_book(scores.drop(columns="beta"), p)


def rules(**kw):
    base = RebalanceRules.from_params(PARAMS)
    return RebalanceRules(**{**base.__dict__, **kw})


COSTS = CostModel.from_params(PARAMS.broker)
LIMITS = BookLimits.from_params(PARAMS)


def rebalance(weights, holdings, scores=None, nav=1e6, prices=None, **kw):
    prices = prices or dict.fromkeys(weights.index.union(list(holdings)), 100.0)
    return plan_rebalance(DAY, weights, holdings, nav, prices, costs=COSTS,
                          daily_vol=dict.fromkeys(prices, 0.02),
                          adv=dict.fromkeys(prices, 1e7), scores=scores,
                          rules=rules(**kw), limits=LIMITS)


def test_no_trade_band_skips_a_resize_that_does_not_pay_but_always_exits():
    weights = pd.Series({"A": 0.05, "B": -0.05, "C": 0.0})
    holdings = {"A": 490.0, "B": -500.0, "C": 100.0}
    scores = pd.Series({"A": 0.01, "B": -1.0, "C": 0.0})  # A's alpha ≈ 0: $1,000 resize
    plan = rebalance(weights, holdings, scores)
    by = {o.symbol: o for o in plan.orders}
    assert "A" in plan.skipped and "band" in plan.skipped["A"] and "A" not in by
    assert by["C"].side == "SELL" and by["C"].quantity == 100  # an exit always trades
    assert plan.turnover == pytest.approx(100 * 100 / 1e6)
    assert plan.estimated_cost == pytest.approx(COSTS.trade_cost(100, 100.0, 0.02, 1e7))
    # without the band (or with a strong score) the resize trades
    assert "A" in {o.symbol for o in rebalance(weights, holdings, scores, band=False).orders}
    confident = rebalance(weights, holdings, scores, expected_ic=0.2)  # 4× the benefit
    assert "A" in {o.symbol for o in confident.orders}


def test_minimum_notional_lots_and_participation():
    weights = pd.Series({"A": 0.05, "B": -0.0123})
    plan = rebalance(weights, {"A": 495.0}, band=False, min_trade_notional=1_000.0,
                     lot_size=100)
    by = {o.symbol: o for o in plan.orders}
    assert "A" not in by and "minimum" in plan.skipped["A"]  # $500 resize
    assert by["B"].quantity == 100  # 123 shares rounded toward zero to whole lots
    clipped = plan_rebalance(DAY, pd.Series({"A": 0.05}), {}, 1e6, {"A": 100.0}, costs=COSTS,
                             daily_vol={"A": 0.02}, adv={"A": 4_000.0}, scores=None,
                             rules=rules(), limits=LIMITS)
    assert clipped.orders[0].quantity == 200  # 5 % of a 4,000-share ADV
    assert "ADV" in clipped.skipped["A"]


def test_band_never_leaves_the_book_over_a_limit():
    # long resizes skipped by the band would leave the book 0.12 net long (> 0.10)
    weights = pd.Series({f"L{i}": 0.03 for i in range(4)} | {f"S{i}": -0.03 for i in range(4)})
    holdings = {f"L{i}": 600.0 for i in range(4)} | {f"S{i}": -300.0 for i in range(4)}
    plan = rebalance(weights, holdings, pd.Series(0.0, index=weights.index))
    assert not plan.skipped
    assert {o.symbol for o in plan.orders} == {f"L{i}" for i in range(4)}
