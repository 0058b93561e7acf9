"""The TFT and the stack as tradeable recipes: tuned, gated on the CPCV paths after costs,
served by the daily flow from a point-in-time encoder window, with their reasons in the
ledger; the replay scores the same day the same."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from alphaline.flows.daily_trading import daily_trading
from alphaline.models.registry import CHAMPION, Registry
from alphaline.project import Project
from alphaline.trading.backtest.replay import ReplayRun, TradingModel, replay_sessions
from alphaline.trading.ledger.models import Order, Signal
from tests.conftest import open_ledger
from tests.test_daily_flow import trading_days

# small enough for a CPU test, the same code paths as the defaults
SEQUENCE = {
    "model.name": "alpha-seq",  # a registered model with no champion yet
    "model.tft.enabled": True, "model.tft.stack": True,
    "model.tft.epochs": 1, "model.tft.hidden_size": 8, "model.tft.attention_heads": 1,
    "model.tft.encoder_days": 10, "model.tft.batch_size": 128, "model.tft.device": "cpu",
    "model.tft.batches_per_epoch": 8, "model.tft.trials": 2, "cv.n_splits": 2,
    "model.tft.search.hidden_size": [4, 8], "model.tft.search.attention_heads": [1],
    "model.tft.search.encoder_days": {"low": 10, "high": 12, "log": False},
    "cv.cpcv_groups": 3, "cv.cpcv_test_groups": 1,
    # the test is about trading a sequence champion, not about how strict the gate is
    "gate.min_deflated_sharpe": 0.0, "gate.min_rank_ic": -1.0,
    "gate.min_lift_over_baseline": None,
}


@pytest.fixture(scope="module")
def sequence_project(trained_project, tmp_path_factory) -> tuple[Project, list]:
    from alphaline.pipelines.train_tft import run_train_tft

    root = shutil.copytree(trained_project.root, tmp_path_factory.mktemp("seq") / "p")
    params = trained_project.params.with_overrides(SEQUENCE)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    return project, run_train_tft(project)


def test_the_tft_is_tuned_gated_and_becomes_the_champion(sequence_project):
    project, results = sequence_project
    p = project.params
    assert [r.model for r in results] == [p.model.name] * 2
    tft, stack = results
    registry = Registry.for_project(project)
    assert registry.recipe(p.model.name, tft.version)["kind"] == "tft"
    recipe = registry.recipe(p.model.name, stack.version)
    assert recipe["kind"] == "stack" and len(recipe["weights"]) == 2
    # the TFT had no champion to beat: the limits alone, on the CPCV paths after costs
    assert tft.promoted and tft.challenger["dsr_source"] == "CPCV after costs"
    assert tft.cpcv["splits"] == 3
    # its trials: two tuning trials and the final walk-forward, in the TFT's family
    assert tft.challenger["n_trials"] == 3
    # the stack counts the trees' trials too, and meets the TFT champion on the same paths
    assert stack.challenger["n_trials"] > tft.challenger["n_trials"]
    assert stack.champion is not None and 0 <= stack.champion["p_value"] <= 1
    assert stack.champion_before == tft.version
    champion = registry.alias_version(p.model.name, CHAMPION)
    assert champion == (stack.version if stack.promoted else tft.version)


@pytest.fixture(scope="module")
def traded_sequence(sequence_project):
    """Day 1 with the TFT as champion, day 2 with the stack (an operator pointing the alias
    at it, as from the MLflow UI)."""
    project, (tft, stack) = sequence_project
    registry = Registry.for_project(project)
    name = project.params.model.name
    registry.client.set_registered_model_alias(name, CHAMPION, tft.version)
    d1, d2 = trading_days(project, 2)
    first = daily_trading(day=d1, root=str(project.root))
    registry.client.set_registered_model_alias(name, CHAMPION, stack.version)
    second = daily_trading(day=d2, root=str(project.root))
    return project, tft, stack, (d1, d2), (first, second)


def test_the_daily_flow_trades_the_tft_and_then_the_stack(traded_sequence):
    project, tft, stack, (d1, d2), (first, second) = traded_sequence
    assert first["model_version"] == tft.version and second["model_version"] == stack.version
    with open_ledger(project.ledger_url).session() as s:
        signals = {d: list(s.scalars(select(Signal).where(Signal.trading_day == d)))
                   for d in (d1, d2)}
        orders = list(s.scalars(select(Order)))
    assert orders, "the sequence champions placed no orders"
    enc = project.params.model.tft
    for sig in signals[d1]:
        reasons = json.loads(sig.reasons)
        assert reasons and all("weight" in r and "shap" not in r for r in reasons)
        attention = json.loads(sig.attention)
        assert len(attention) >= enc.search.encoder_days.low
        assert abs(sum(attention) - 1) < 1e-3
    kinds = {("shap" in r, "weight" in r) for sig in signals[d2]
             for r in json.loads(sig.reasons)}
    assert kinds == {(True, False), (False, True)}  # the stack explains by both parts
    assert len(signals[d1]) >= 0.8 * project.params.data.synthetic.n_symbols


def test_replay_scores_the_day_as_the_daily_flow_did(traded_sequence, tmp_path):
    project, tft, _, (d1, _), _ = traded_sequence
    name = project.params.model.name
    signal = Registry.for_project(project).load_version(name, tft.version)
    assert signal.kind == "tft" and signal.context_sessions > 0
    features = pd.read_parquet(project.live_feature_table)
    features = features[["date", "symbol", *signal.features]]
    bars = pd.read_parquet(project.live_bars)
    run = ReplayRun(tmp_path / "replay")
    ledger = replay_sessions(bars, features, [d1], project.params, run,
                             lambda day: TradingModel(signal, tft.version))
    with ledger.session() as s:
        replayed = {r.symbol: r.score for r in s.scalars(
            select(Signal).where(Signal.trading_day == d1))}
    with open_ledger(project.ledger_url).session() as s:
        traded = {r.symbol: r.score for r in s.scalars(
            select(Signal).where(Signal.trading_day == d1, Signal.model_version == tft.version))}
    assert replayed and set(replayed) == set(traded)
    symbols = sorted(traded)
    assert np.allclose([replayed[k] for k in symbols], [traded[k] for k in symbols],
                       rtol=1e-6, atol=1e-9)
