"""The Temporal Fusion Transformer as a standalone challenger: walk-forward out-of-sample
scores on the ensemble's folds, figures beside the ensemble's on the same rows, its own
variable importance and attention, logged and registered as ``<model.name>-tft``.

The daily flow trades the tree ensemble's champion; the TFT needs each symbol's recent
sequence rather than one feature vector, so it is compared here and not served.
"""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaline.calendar import sessions_per_year
from alphaline.config import Params
from alphaline.models.cv import CVResult, Split, cross_val_predict
from alphaline.models.gate import decide
from alphaline.models.metrics import fold_metrics, mean_rank_ic
from alphaline.models.registry import CHALLENGER, Registry
from alphaline.models.tft import TFTConfig, TFTForecaster, returns_panel
from alphaline.models.tuning import FamilyTrials
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.results import TFTResult, TrainingSet
from alphaline.pipelines.train import book_size, catalog_costs, folds, oos_metrics
from alphaline.project import Project

log = logging.getLogger(__name__)


def tft_config(p: Params) -> TFTConfig:
    t = p.model.tft
    return TFTConfig(horizon=p.features.label_horizon, encoder_days=t.encoder_days,
                     hidden_size=t.hidden_size, attention_heads=t.attention_heads,
                     epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                     quantiles=tuple(t.quantiles), device=t.device, seed=p.tuning.seed,
                     dropout=t.dropout, gradient_clip=t.gradient_clip)


def panel_for(bars: pd.DataFrame, features: pd.DataFrame, ts: TrainingSet, end: pd.Timestamp
              ) -> pd.DataFrame:
    """Returns, features and the label per (symbol, session) from each symbol's first
    training row to ``end`` (the sessions after the last labelled row are decoder targets
    only and carry no label)."""
    rets = returns_panel(bars[bars["date"] <= end])
    panel = rets.merge(features, on=["symbol", "date"], how="inner")
    first = pd.DataFrame({"symbol": ts.symbols, "date": ts.dates}).groupby("symbol")["date"].min()
    panel = panel[panel["date"] >= panel["symbol"].map(first)]
    labels = pd.DataFrame({"date": ts.dates, "symbol": ts.symbols, "label": ts.y})
    return panel.merge(labels, on=["date", "symbol"], how="left").sort_values(
        ["date", "symbol"], ignore_index=True)


def panel_splits(p: Params, ts: TrainingSet, panel: pd.DataFrame) -> list[Split]:
    """The ensemble's walk-forward test blocks on the panel's rows: each fold trains on
    sessions whose forecast targets end ``embargo`` sessions before the block, and is
    scored on the block's labelled rows."""
    dates = panel["date"].to_numpy()
    sessions = np.unique(dates)
    labelled = panel["label"].notna().to_numpy()
    out = []
    for split in folds(p, ts):
        start = np.searchsorted(sessions, np.datetime64(split.test_start))
        cut = sessions[max(start - p.cv.embargo_days, 0)]
        test = np.flatnonzero(labelled & (dates >= np.datetime64(split.test_start))
                              & (dates <= np.datetime64(split.test_end)))
        out.append(Split(np.flatnonzero(dates < cut), test, split.test_start, split.test_end))
    return out


def walk_forward(p: Params, ts: TrainingSet, panel: pd.DataFrame) -> CVResult:
    """``fold, date, symbol, score, label`` on the ensemble's walk-forward test blocks."""
    def progress(k: int, so_far: pd.DataFrame) -> None:
        log.info("TFT fold %d: %d rows scored", k + 1, int((so_far["fold"] == k).sum()))

    result = cross_val_predict(
        lambda: TFTForecaster(config=tft_config(p), features=ts.features),
        panel[["symbol", "ret", *ts.features]], panel["label"], dates=panel["date"],
        symbols=panel["symbol"], splits=panel_splits(p, ts, panel), on_fold=progress)
    scored = result.predictions.dropna(subset=["score"]).reset_index(drop=True)
    return CVResult(scored, result.folds)


def importance_figure(importance: dict) -> Figure:
    fig = Figure(figsize=(11, 4))
    a, b = fig.subplots(1, 2)
    enc = pd.Series(importance["encoder_variables"]).head(15)[::-1]
    a.barh(enc.index, enc.to_numpy(), color="#3b6ea8")
    a.set_title("TFT encoder variable importance")
    att = np.asarray(importance["attention_by_lag"])
    b.plot(np.arange(-len(att) + 1, 1), att, color="#a83b3b")
    b.set_xlabel("encoder position (0 = the scored session)")
    b.set_title("TFT attention over the encoder")
    fig.tight_layout()
    return fig


def run_train_tft(project: Project) -> TFTResult:
    p = project.params
    name = f"{p.model.name}-tft"
    catalog = Catalog(project)
    ts = catalog.training_set()
    features = pd.read_parquet(project.feature_table, columns=["symbol", "date", *ts.features])
    panel = panel_for(catalog.validated_bars(), features, ts, pd.Timestamp(p.data.end))
    oos = walk_forward(p, ts, panel).predictions
    cost = catalog_costs(p, catalog)
    # the TFT is not tuned: one configuration, one trial
    metrics = oos_metrics(oos, p, FamilyTrials("tft", 1, [], 1), cost)
    per_fold = fold_metrics(oos, p.portfolio.quantile, p.features.label_horizon,
                            sessions_per_year(p.data.calendar), cost, **book_size(p))
    comparison = {}
    if catalog.oos_path.exists():
        ens = catalog.oos()[["date", "symbol", "score"]]
        both = oos.merge(ens, on=["date", "symbol"], suffixes=("", "_ensemble"))
        comparison = {
            "rows": len(both),
            "tft_rank_ic": mean_rank_ic(both["score"], both["label"], both["date"]),
            "ensemble_rank_ic": mean_rank_ic(both["score_ensemble"], both["label"],
                                             both["date"]),
            "score_correlation": float(both[["score", "score_ensemble"]].corr(
                method="spearman").iloc[0, 1]),
        }
    X = panel[["symbol", "ret", *ts.features]]
    final = TFTForecaster(config=tft_config(p), features=ts.features).fit(
        X, panel["label"], dates=panel["date"])
    sessions = np.unique(panel["date"])
    recent = sessions[-min(60, len(sessions) // 2) - final.context_sessions_]
    window = (panel["date"] >= recent).to_numpy()
    importance = final.importance(X[window], dates=panel["date"][window])
    registry = Registry.for_project(project, experiment=name)
    decision = decide({**metrics, "n_trials": 1.0}, {"rank_ic": comparison["ensemble_rank_ic"]}
                      if comparison else None, p.gate)
    with registry.fluent() as exp_id, \
            mlflow.start_run(run_name=f"{name}-train", experiment_id=exp_id) as run:
        mlflow.log_params({f"tft.{k}": v for k, v in p.model.tft.model_dump().items()})
        mlflow.log_metrics({f"oos_{k}": float(v) for k, v in metrics.items()})
        mlflow.log_metrics({f"vs_ensemble_{k}": float(v) for k, v in comparison.items()})
        mlflow.log_dict(importance, "tft_importance.json")
        mlflow.log_figure(importance_figure(importance), "tft_importance.png")
        mlflow.log_text(per_fold.to_markdown(index=False, floatfmt=".4f"), "fold_metrics.md")
        info = mlflow.pytorch.log_model(final.model_, name="model", registered_model_name=name,
                                        serialization_format="pickle")
    version = str(info.registered_model_version)
    registry.client.set_registered_model_alias(name, CHALLENGER, version)
    registry.record_decision(name, version, decision, {"rank_ic": metrics["rank_ic"]})
    result = TFTResult(
        model=name, version=version, run_id=run.info.run_id, oos=metrics,
        vs_ensemble=comparison, importance=importance, promoted=decision.promote,
        reasons=decision.reasons,
        fold_metrics=per_fold.assign(start=per_fold["start"].astype(str),
                                     end=per_fold["end"].astype(str)).to_dict(orient="records"))
    catalog.save_result("train_tft.json", result)
    log.info("TFT v%s: rank IC %.4f (ensemble %.4f on the same rows); %s", version,
             metrics["rank_ic"], comparison.get("ensemble_rank_ic", float("nan")),
             "; ".join(decision.reasons))
    return result
