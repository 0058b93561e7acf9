"""The Temporal Fusion Transformer: point-in-time scores, and the standalone challenger run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from alphaline.models.tft import TFTConfig, TFTForecaster, returns_panel
from alphaline.pipelines.synthetic import generate_market
from alphaline.project import Project

TINY = {"model.tft.epochs": 1, "model.tft.hidden_size": 8, "model.tft.attention_heads": 1,
        "model.tft.encoder_days": 10, "model.tft.batch_size": 128, "model.tft.device": "cpu"}


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


def test_tft_challenger_is_trained_compared_and_registered(trained_project, tmp_path):
    root = shutil.copytree(trained_project.root, tmp_path / "p")
    params = trained_project.params.with_overrides(TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    from alphaline.pipelines.train_tft import run_train_tft

    out = run_train_tft(project).model_dump()
    assert out["model"] == f"{params.model.name}-tft"
    assert set(out["fold_metrics"][0]) >= {"rank_ic", "icir", "sharpe_net", "turnover"}
    assert len(out["fold_metrics"]) == params.cv.n_splits
    v = out["vs_ensemble"]
    assert v["rows"] > 0 and -1 <= v["tft_rank_ic"] <= 1 and -1 <= v["ensemble_rank_ic"] <= 1
    enc = out["importance"]["encoder_variables"]
    assert abs(sum(enc.values()) - 1) < 1e-3 and "ret" in enc
    assert json.loads((project.metrics_dir / "train_tft.json").read_text())["version"] == \
        out["version"]
    from alphaline.models.registry import Registry

    registry = Registry.for_project(project)
    assert registry.version_tags(out["model"], out["version"])["gate.decision"] in {
        "promote", "reject"}
    artifacts = set(registry.run_artifacts(out["model"], out["version"]))
    assert {"tft_importance.json", "tft_importance.png", "fold_metrics.md"} <= artifacts


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
