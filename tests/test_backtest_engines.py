"""The two backtest engines are one truth: the replay of the daily flow's ledger day and the
vectorized engine give the same trades and NAV path on the same score panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaline.calendar import sessions_per_year
from alphaline.config import load_params
from alphaline.models.ensemble import TreeEnsemble
from alphaline.models.signal import SignalModel
from alphaline.pipelines import featurize
from alphaline.pipelines.synthetic import generate_market
from alphaline.trading.backtest.replay import (
    ReplayRun,
    TradingModel,
    ledger_frames,
    replay_sessions,
)
from alphaline.trading.backtest.vectorized import (
    EngineRules,
    book_backtest,
    market_grids,
    simulate,
)
from alphaline.trading.costs import CostModel, market_panel
from alphaline.trading.ledger.models import Order, Signal
from tests.conftest import REPO

MEMBER = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 50, "learning_rate": 0.05,
          "feature_fraction": 0.8, "bagging_fraction": 0.8, "lambda_l2": 1.0,
          "rank_levels": 5, "rank_truncation": 30}
TRAIN_END, START, END = "2022-06-30", "2022-07-01", "2022-10-31"


@pytest.fixture(scope="module")
def market():
    p = load_params(REPO / "params.yaml").with_overrides({"features.label_horizon": 1})
    bars, _ = generate_market(24, "2021-06-01", END, seed=5, alpha_strength=0.15)
    tables = featurize.build(bars, p.features)
    feats = tables.features.merge(tables.labels, on=["symbol", "date"])
    names = [c for c in tables.features.columns if c not in ("symbol", "date")]
    train = feats[(feats["date"] <= TRAIN_END) & feats["label"].notna()].dropna(subset=names)
    train = train.sort_values(["date", "symbol"], ignore_index=True)
    ens = TreeEnsemble([{"objective": "regression", "seed": 1, **MEMBER}], stack_folds=2,
                       horizon=1, embargo=5, redundancy_corr=0.95, n_jobs=1)
    ens.fit(train[names], train["label"], dates=train["date"])
    return p, bars, tables.features, SignalModel(ens)


@pytest.fixture(scope="module")
def replayed(market, tmp_path_factory):
    p, bars, features, signal = market
    run = ReplayRun(tmp_path_factory.mktemp("replay"))
    days = [d.date() for d in pd.bdate_range(START, END)
            if pd.Timestamp(d) in set(bars["date"])]
    ledger = replay_sessions(bars[bars["date"] <= END], features, days, p, run,
                             lambda day: TradingModel(signal, "v1"))
    return p, bars, run, ledger, days


def test_replay_and_vectorized_engine_agree(replayed):
    p, bars, _run, ledger, days = replayed
    frames = ledger_frames(ledger, CostModel.from_params(p.broker))
    orders = ledger.table(Order)
    refused = orders.loc[orders["status"] == "REJECTED", "reject_reason"]
    assert len(orders) > 50
    # the engine models the price band; any other refusal would make the comparison moot
    assert refused.str.startswith("price band").all(), refused.tolist()
    assert ledger.trading_state() == "ACTIVE"

    signals = ledger.table(Signal)
    scores = signals.rename(columns={"trading_day": "date"})[["date", "symbol", "score"]]
    scores["date"] = pd.to_datetime(scores["date"])
    grid = market_grids(market_panel(bars[bars["date"] <= END]))
    result = book_backtest(scores, grid, p)

    nav = frames["nav"].set_index(pd.to_datetime(frames["nav"]["day"]))["nav"]
    assert len(nav) == len(days)
    rel = (result.daily["nav"] / nav - 1).abs().max()
    assert rel < 1e-9, rel
    assert nav.iloc[-1] != nav.iloc[0]  # the book traded and moved

    replay_trades = frames["fills"].assign(filled_on=lambda f: pd.to_datetime(f["filled_on"]))
    replay_trades = replay_trades.sort_values(["filled_on", "symbol"], ignore_index=True)
    vec = result.trades
    assert len(vec) == len(replay_trades) > 50
    assert (vec["symbol"].to_numpy() == replay_trades["symbol"].to_numpy()).all()
    assert (vec["filled_on"].to_numpy() == replay_trades["filled_on"].to_numpy()).all()
    np.testing.assert_array_equal(vec["quantity"].to_numpy(),
                                  replay_trades["quantity"].to_numpy())
    np.testing.assert_allclose(vec["impact"].to_numpy(), replay_trades["impact"].to_numpy(),
                               rtol=1e-9, atol=1e-9)
    borrow = frames["borrow"].set_index(pd.to_datetime(frames["borrow"]["day"]))["borrow"]
    np.testing.assert_allclose(result.daily["borrow"].reindex(borrow.index), borrow,
                               rtol=1e-9)


def test_replay_resumes_where_it_stopped(market, replayed, tmp_path):
    """A run stopped after some sessions and started again ends as the uninterrupted one."""
    p, bars, features, signal = market
    _, _, _, full, days = replayed
    run = ReplayRun(tmp_path / "resumed")
    model = lambda day: TradingModel(signal, "v1")  # noqa: E731
    replay_sessions(bars, features, days[:30], p, run, model)
    ledger = replay_sessions(bars, features, days, p, run, model)
    a, b = ledger.nav_history(), full.nav_history()
    np.testing.assert_allclose(a["nav"].to_numpy(), b["nav"].to_numpy(), rtol=1e-12)
    assert run.versions["v1"]["first_day"] == str(days[0])
    assert run.versions["v1"]["last_day"] == str(days[-1])


def test_engine_charges_the_cost_model():
    """Two names, one session of entry: the cash paid is the fills' notional plus exactly
    what the cost model charges, and the short pays one session's borrow."""
    idx = pd.bdate_range("2024-01-01", periods=3)
    close = pd.DataFrame({"A": [10.0, 11.0, 12.0], "B": [20.0, 19.0, 18.0]}, index=idx)
    market = {"close": close, "daily_vol": close * 0 + 0.02, "adv": close * 0 + 1e5}
    weights = pd.DataFrame({"A": [0.5, 0.5, 0.5], "B": [-0.5, -0.5, -0.5]}, index=idx)
    cm = CostModel(0.005, 1.0, 2.0, 0.1, 0.05)
    r = simulate(weights, market, cm, initial_cash=10_000.0, sessions_per_year=252.0,
                 rules=EngineRules(lot_size=1))
    qa, qb = np.trunc(0.5 * 10_000 / 10), np.trunc(-0.5 * 10_000 / 20)
    fees = cm.trade_cost(qa, 11.0, 0.02, 1e5) + cm.trade_cost(qb, 19.0, 0.02, 1e5)
    cash1 = 10_000 - qa * 11.0 - qb * 19.0 - fees
    assert r.daily["nav"].iloc[0] == 10_000
    assert r.daily["nav"].iloc[1] == pytest.approx(cash1 + qa * 11 + qb * 19, rel=1e-12)
    borrow1 = cm.borrow_fee(-qb * 19.0, 252.0)
    assert r.daily["borrow"].iloc[1] == pytest.approx(borrow1, rel=1e-12)
    assert list(r.trades["quantity"][:2]) == [qa, qb]
    assert r.daily["commission"].iloc[1] == cm.commission(qa) + cm.commission(qb)
    assert sessions_per_year("XNYS") > 250
