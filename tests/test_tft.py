"""The Temporal Fusion Transformer: point-in-time scores, and the standalone challenger run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import yaml
from alphaline.models.tft import TFTConfig, TFTForecaster, returns_panel
from alphaline.pipelines.synthetic import generate_market

from alphaline.project import Project

TINY = {"model.tft.epochs": 1, "model.tft.hidden_size": 8, "model.tft.attention_heads": 1,
        "model.tft.encoder_days": 10, "model.tft.batch_size": 128, "model.tft.device": "cpu"}


def test_scores_ignore_everything_after_the_scored_close():
    bars, signal = generate_market(8, "2022-01-03", "2022-08-31", seed=5, alpha_strength=0.3)
    panel = returns_panel(bars).merge(signal, on=["symbol", "date"])
    cut = pd.Timestamp("2022-07-01")
    model = TFTForecaster(TFTConfig(horizon=2, encoder_days=10, hidden_size=8,
                                    attention_heads=1, epochs=1, device="cpu"), ["signal"]
                          ).fit(panel[panel["date"] < cut])
    day = pd.Timestamp("2022-07-15")
    before = model.predict(panel, day)
    altered = panel.copy()
    future = altered["date"] > day
    rng = np.random.default_rng(0)
    altered.loc[future, "ret"] = rng.normal(0, 0.2, future.sum())
    altered.loc[future, "signal"] = rng.normal(0, 5, future.sum())
    after = model.predict(altered, day)
    a = before[before["date"] == day].set_index("symbol")["score"]
    b = after[after["date"] == day].set_index("symbol")["score"]
    assert len(a) == 8
    assert np.allclose(a.sort_index(), b.sort_index(), atol=1e-6)
    # and the scores do depend on the past
    altered_past = panel.copy()
    past = altered_past["date"] <= day
    altered_past.loc[past, "signal"] = rng.normal(0, 5, past.sum())
    c = model.predict(altered_past, day)
    assert not np.allclose(a.sort_index(),
                           c[c["date"] == day].set_index("symbol")["score"].sort_index())


def test_tft_challenger_is_trained_compared_and_registered(trained_project, tmp_path):
    root = shutil.copytree(trained_project.root, tmp_path / "p")
    params = trained_project.params.with_overrides(TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    from alphaline.pipelines.train_tft import run_train_tft

    out = run_train_tft(project)
    assert out["model"] == f"{params.model.name}-tft"
    assert set(out["fold_metrics"][0]) >= {"rank_ic", "icir", "sharpe_net", "turnover"}
    assert len(out["fold_metrics"]) == params.cv.n_splits
    v = out["vs_ensemble"]
    assert v["rows"] > 0 and -1 <= v["tft_rank_ic"] <= 1 and -1 <= v["ensemble_rank_ic"] <= 1
    enc = out["importance"]["encoder_variables"]
    assert abs(sum(enc.values()) - 1) < 1e-3 and "ret" in enc
    assert json.loads((project.metrics_dir / "train_tft.json").read_text())["version"] == \
        out["version"]
    from alphaline.models import registry
    from mlflow import MlflowClient

    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, out["model"])
    mv = MlflowClient().get_model_version(out["model"], out["version"])
    assert mv.tags["gate.decision"] in {"promote", "reject"}
    artifacts = {a.path for a in MlflowClient().list_artifacts(mv.run_id)}
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
