"""The Temporal Fusion Transformer as a standalone challenger: walk-forward out-of-sample
scores on the ensemble's folds, figures beside the ensemble's on the same rows, its own
variable importance and attention, logged and registered as ``<model.name>-tft``.

The daily flow trades the tree ensemble's champion; the TFT needs each symbol's recent
sequence rather than one feature vector, so it is compared here and not served.
"""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from alphaline.models import registry
from alphaline.models.gate import decide
from alphaline.models.metrics import fold_metrics, mean_rank_ic
from alphaline.models.tft import TFTConfig, TFTForecaster, returns_panel
from alphaline.pipelines.train import (
    TrainingSet,
    cost_per_turnover,
    folds,
    oos_metrics,
    training_set,
)
from mlflow import MlflowClient

from alphaline.io import write_json
from alphaline.project import Project

log = logging.getLogger(__name__)


def tft_config(project: Project) -> TFTConfig:
    t = project.params.model.tft
    return TFTConfig(horizon=project.params.features.label_horizon, encoder_days=t.encoder_days,
                     hidden_size=t.hidden_size, attention_heads=t.attention_heads,
                     epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                     quantiles=tuple(t.quantiles), device=t.device, seed=project.params.tuning.seed)


def panel_for(project: Project, ts: TrainingSet) -> pd.DataFrame:
    """Returns and features per (symbol, session) from each symbol's first training row to
    ``data.end`` (the sessions after the last labelled row are decoder targets only)."""
    bars = pd.read_parquet(project.validated_bars)
    rets = returns_panel(bars[bars["date"] <= pd.Timestamp(project.params.data.end)])
    feats = pd.read_parquet(project.feature_table, columns=["symbol", "date", *ts.features])
    panel = rets.merge(feats, on=["symbol", "date"], how="inner")
    first = pd.DataFrame({"symbol": ts.symbols, "date": ts.dates}).groupby("symbol")["date"].min()
    return panel[panel["date"] >= panel["symbol"].map(first)].reset_index(drop=True)


def walk_forward(project: Project, ts: TrainingSet, panel: pd.DataFrame) -> pd.DataFrame:
    """``fold, date, symbol, score, label`` on the ensemble's walk-forward test blocks. Each
    fold trains on windows whose forecast targets end ``embargo`` sessions before the block."""
    sessions = np.unique(panel["date"].to_numpy())
    labels = pd.DataFrame({"date": ts.dates, "symbol": ts.symbols, "label": ts.y})
    parts = []
    for k, split in enumerate(folds(project, ts)):
        start = np.searchsorted(sessions, np.datetime64(split.test_start))
        cut = sessions[max(start - project.params.cv.embargo_days, 0)]
        model = TFTForecaster(tft_config(project), ts.features).fit(panel[panel["date"] < cut])
        scored = model.predict(panel, pd.Timestamp(split.test_start))
        scored = scored[scored["date"] <= split.test_end]
        parts.append(scored.merge(labels, on=["date", "symbol"]).assign(fold=k))
        log.info("TFT fold %d: %d rows scored", k + 1, len(scored))
    return pd.concat(parts, ignore_index=True)


def importance_figure(importance: dict):
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    enc = pd.Series(importance["encoder_variables"]).head(15)[::-1]
    a.barh(enc.index, enc.to_numpy(), color="#3b6ea8")
    a.set_title("TFT encoder variable importance")
    att = np.asarray(importance["attention_by_lag"])
    b.plot(np.arange(-len(att) + 1, 1), att, color="#a83b3b")
    b.set_xlabel("encoder position (0 = the scored session)")
    b.set_title("TFT attention over the encoder")
    fig.tight_layout()
    return fig


def run_train_tft(project: Project) -> dict:
    p = project.params
    name = f"{p.model.name}-tft"
    ts = training_set(project)
    panel = panel_for(project, ts)
    oos = walk_forward(project, ts, panel)
    cost = cost_per_turnover(project)
    metrics = oos_metrics(oos, project, [], 1, cost)
    per_fold = fold_metrics(oos, p.portfolio.quantile, p.features.label_horizon, cost)
    comparison = {}
    ensemble_oos = project.data_dir / "model" / "oos.parquet"
    if ensemble_oos.exists():
        ens = pd.read_parquet(ensemble_oos)[["date", "symbol", "score"]]
        both = oos.merge(ens, on=["date", "symbol"], suffixes=("", "_ensemble"))
        comparison = {
            "rows": len(both),
            "tft_rank_ic": mean_rank_ic(both["score"], both["label"], both["date"]),
            "ensemble_rank_ic": mean_rank_ic(both["score_ensemble"], both["label"],
                                             both["date"]),
            "score_correlation": float(both[["score", "score_ensemble"]].corr(
                method="spearman").iloc[0, 1]),
        }
    final = TFTForecaster(tft_config(project), ts.features).fit(panel)
    recent = np.unique(panel["date"])[-min(60, panel["date"].nunique() // 2)]
    importance = final.importance(panel, pd.Timestamp(recent))
    registry.configure(project.mlflow_tracking_uri, project.mlflow_artifacts, name)
    decision = decide({**metrics, "n_trials": 1.0}, {"rank_ic": comparison["ensemble_rank_ic"]}
                      if comparison else None, p.gate)
    with mlflow.start_run(run_name=f"{name}-train") as run:
        mlflow.log_params({f"tft.{k}": v for k, v in p.model.tft.model_dump().items()})
        mlflow.log_metrics({f"oos_{k}": float(v) for k, v in metrics.items()})
        mlflow.log_metrics({f"vs_ensemble_{k}": float(v) for k, v in comparison.items()})
        mlflow.log_dict(importance, "tft_importance.json")
        mlflow.log_figure(importance_figure(importance), "tft_importance.png")
        mlflow.log_text(per_fold.to_markdown(index=False, floatfmt=".4f"), "fold_metrics.md")
        info = mlflow.pytorch.log_model(final.model_, name="model", registered_model_name=name,
                                        serialization_format="pickle")
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(name, registry.CHALLENGER, version)
    registry.record_decision(name, version, decision, {"rank_ic": metrics["rank_ic"]})
    out = {"model": name, "version": version, "run_id": run.info.run_id, "oos": metrics,
           "vs_ensemble": comparison, "importance": importance,
           "promoted": decision.promote, "reasons": decision.reasons,
           "fold_metrics": per_fold.assign(start=per_fold["start"].astype(str),
                                           end=per_fold["end"].astype(str)
                                           ).to_dict(orient="records")}
    write_json(out, project.metrics_dir / "train_tft.json")
    log.info("TFT v%s: rank IC %.4f (ensemble %.4f on the same rows); %s", version,
             metrics["rank_ic"], comparison.get("ensemble_rank_ic", float("nan")),
             "; ".join(decision.reasons))
    return out
