"""The Temporal Fusion Transformer: point-in-time scores and the estimator contract (the
tradeable recipes: tests/test_tft_champion.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaline.models.tft import TFTConfig, TFTForecaster, returns_panel
from alphaline.pipelines.synthetic import generate_market


def tiny_tft() -> TFTForecaster:
    return TFTForecaster(config=TFTConfig(
        horizon=2, encoder_days=10, hidden_size=8, attention_heads=1, epochs=1,
        batch_size=256, learning_rate=0.01, quantiles=(0.1, 0.5, 0.9), device="cpu", seed=0,
        dropout=0.1, gradient_clip=0.1), features=["signal"])


def scores_on(model: TFTForecaster, panel: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    score = model.predict(panel, dates=panel["date"])
    on_day = (panel["date"] == day).to_numpy()
    return pd.Series(score[on_day], index=panel["symbol"][on_day]).sort_index()


def test_scores_ignore_everything_after_the_scored_close():
    bars, signal = generate_market(8, "2022-01-03", "2022-08-31", seed=5, alpha_strength=0.3)
    panel = returns_panel(bars).merge(signal, on=["symbol", "date"])
    cut = pd.Timestamp("2022-07-01")
    train = panel[panel["date"] < cut]
    model = tiny_tft().fit(train, None, dates=train["date"])
    assert model.context_sessions_ == 10
    day = pd.Timestamp("2022-07-15")
    a = scores_on(model, panel, day)
    altered = panel.copy()
    future = altered["date"] > day
    rng = np.random.default_rng(0)
    altered.loc[future, "ret"] = rng.normal(0, 0.2, future.sum())
    altered.loc[future, "signal"] = rng.normal(0, 5, future.sum())
    assert len(a) == 8 and a.notna().all()
    assert np.allclose(a, scores_on(model, altered, day), atol=1e-6)
    # the history ending at the scored close, as the daily flow has it, scores the same
    assert np.allclose(a, scores_on(model, panel[panel["date"] <= day], day), atol=1e-6)
    # and the scores do depend on the past
    altered_past = panel.copy()
    past = altered_past["date"] <= day
    altered_past.loc[past, "signal"] = rng.normal(0, 5, past.sum())
    assert not np.allclose(a, scores_on(model, altered_past, day))


def test_the_tft_follows_the_estimator_contract():
    from sklearn.exceptions import NotFittedError

    bars, signal = generate_market(5, "2022-01-03", "2022-04-29", seed=1)
    panel = returns_panel(bars).merge(signal, on=["symbol", "date"])
    with pytest.raises(NotFittedError):
        tiny_tft().predict(panel, dates=panel["date"])
    with pytest.raises(ValueError, match="sample weights"):
        tiny_tft().fit(panel, None, dates=panel["date"], sample_weight=np.ones(len(panel)))
    score = tiny_tft().fit(panel, None, dates=panel["date"]).predict(panel, dates=panel["date"])
    first = panel.groupby("symbol").cumcount().to_numpy() < 9
    assert len(score) == len(panel) and np.isnan(score[first]).all()
    assert np.isfinite(score[~first]).all()


def test_device_parameter():
    import pytest
    import torch

    from alphaline.models.tft import accelerator

    assert accelerator("cpu") == "cpu"
    if torch.cuda.is_available():
        assert accelerator("auto") == accelerator("cuda") == "gpu"
    else:
        assert accelerator("auto") == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            accelerator("cuda")


def test_a_gap_in_the_training_rows_starts_a_new_series():
    """CPCV trains on rows before and after a test block: no window reaches across it."""
    bars, signal = generate_market(4, "2022-01-03", "2022-06-30", seed=2)
    panel = returns_panel(bars).merge(signal, on=["symbol", "date"])
    days = np.sort(panel["date"].unique())
    hole = (panel["date"] >= days[40]) & (panel["date"] < days[70])
    frame = tiny_tft()._frame(panel[~hole], panel.loc[~hole, "date"])
    assert frame.groupby("symbol")["series"].nunique().eq(2).all()
    # a one-day halt does not split a series
    halted = panel[~((panel["symbol"] == panel["symbol"].iloc[0]) & (panel["date"] == days[50]))]
    frame = tiny_tft()._frame(halted, halted["date"])
    assert frame.groupby("symbol")["series"].nunique().eq(1).all()


def test_tft_and_stack_signals_round_trip_and_explain(tmp_path):
    from alphaline.models.ensemble import TreeEnsemble
    from alphaline.models.signal import SignalModel
    from alphaline.models.tft import window_as_of
    from alphaline.trading.daily import score

    bars, signal = generate_market(6, "2022-01-03", "2022-07-29", seed=3, alpha_strength=0.3)
    panel = returns_panel(bars).merge(signal, on=["symbol", "date"])
    tft = tiny_tft().fit(panel, None, dates=panel["date"])
    member = {"objective": "regression", "n_estimators": 20, "num_leaves": 7,
              "learning_rate": 0.1, "min_child_samples": 20, "feature_fraction": 1.0,
              "bagging_fraction": 1.0, "lambda_l2": 0.0, "seed": 0, "rank_levels": 5,
              "rank_truncation": 10}
    trees = TreeEnsemble([member], stack_folds=2, horizon=2,
                         embargo=1, redundancy_corr=0.95, n_jobs=1)
    trees.fit(panel[["signal"]], panel["ret"].shift(-2).fillna(0), dates=panel["date"])
    day = pd.Timestamp("2022-07-20")
    window = window_as_of(signal, bars, day, tft.context_sessions_)
    assert window["date"].nunique() == tft.context_sessions_ and window["date"].max() == day
    vectors = signal[signal["date"] == day].reset_index(drop=True)
    for model in (SignalModel(None, None, tft), SignalModel(trees, None, tft, (0.5, 0.5))):
        back = SignalModel.load(model.save(tmp_path / model.kind))
        assert back.kind == model.kind and back.context_sessions == 10
        a = score(model, vectors, 3, window)
        b = score(back, vectors, 3, window)
        assert len(a) == 6 and np.allclose(a["score"], b["score"])
        assert all(len(att) == 10 and abs(sum(att) - 1) < 1e-3 for att in a["attention"])
        weights = [r for rs in a["reasons"] for r in rs if "weight" in r]
        assert weights and all(0 <= r["weight"] <= 1 for r in weights)
    with pytest.raises(Exception, match="sessions of features"):
        score(SignalModel(None, None, tft), vectors, 3, None)
