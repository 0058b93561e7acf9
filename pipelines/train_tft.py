"""The Temporal Fusion Transformer as a tradeable challenger, alone and stacked with the trees.

Tuned by Optuna on the purged walk-forward folds before the gate's held-out period (its
own study, its trials in the family ledger), scored walk-forward on the same rows as the
trees, refitted on all rows and registered under ``model.name`` like the trees' version:
the gate then decides on the same CPCV paths after costs, and the daily flow trades
whichever it promoted. With ``model.tft.stack`` the stack of both (the TFT's out-of-fold
forecast as a member beside the tree ensemble) is a further challenger.

Runs after the trees' train stage of the same data (it reuses that stage's feature
validation and, for the stack, its ensemble and out-of-fold scores).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alphaline.calendar import sessions_per_year
from alphaline.config import Params
from alphaline.errors import MissingPrerequisite
from alphaline.models.cv import cross_val_predict, holdout_start
from alphaline.models.ensemble import per_date_zscore, stack_weights
from alphaline.models.lgbm import cross_sectional_rank
from alphaline.models.meta_label import walk_forward_meta, with_primary_score
from alphaline.models.metrics import fold_metrics, long_short_returns, mean_rank_ic, sharpe
from alphaline.models.recipes import combine, recipe_inputs, tft_config_dict
from alphaline.models.registry import CHAMPION, Registry
from alphaline.models.signal import SignalModel
from alphaline.models.tft import TFTConfig, TFTForecaster
from alphaline.models.tft_tuning import tune_tft
from alphaline.models.tuning import TrialProgress, family_trials, record_ensemble
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.results import EvaluateResult, TrainingSet, TrainResult
from alphaline.pipelines.train import (
    before_holdout,
    book_size,
    catalog_costs,
    drift_reference,
    folds,
    meta_labeler,
    oos_metrics,
)
from alphaline.project import Project
from alphaline.trading.backtest.vectorized import market_grids

log = logging.getLogger(__name__)


def tft_config(p: Params) -> TFTConfig:
    t = p.model.tft
    return TFTConfig(horizon=p.features.label_horizon, encoder_days=t.encoder_days,
                     hidden_size=t.hidden_size, attention_heads=t.attention_heads,
                     epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                     quantiles=tuple(t.quantiles), device=t.device, seed=p.tuning.seed,
                     dropout=t.dropout, gradient_clip=t.gradient_clip,
                     batches_per_epoch=t.batches_per_epoch)


def tft_family(p: Params) -> str:
    """The TFT's trial ledger: what makes two TFT trials the same search."""
    return (f"{p.model.name}|tft|features={','.join(sorted(p.features.sets))}"
            f"|h={p.features.label_horizon}")


def stack_own_family(p: Params) -> str:
    """Where each stack evaluated is recorded as a trial of its own."""
    return (f"{p.model.name}|stack|features={','.join(sorted(p.features.sets))}"
            f"|h={p.features.label_horizon}")


def stack_family(trees_family: str, p: Params) -> str:
    """The stack was chosen after both searches: its DSR counts the trials of both, and
    every stack evaluated before."""
    return f"{trees_family} + {tft_family(p)} + {stack_own_family(p)}"


def sequence_inputs(ts: TrainingSet, close: pd.DataFrame) -> pd.DataFrame:
    return recipe_inputs({"kind": "tft", "features": ts.features}, ts.X, ts.symbols,
                         ts.dates, close)


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


@dataclasses.dataclass
class SequenceCandidate:
    """A fitted TFT or stack challenger and what was measured about it."""

    kind: str
    signal: SignalModel
    recipe: dict
    oos: pd.DataFrame
    metrics: dict[str, float]
    per_fold: pd.DataFrame
    family: str
    studies: dict[str, str]
    weights: dict[str, float]


def fit_meta(p: Params, ts: TrainingSet, oos: pd.DataFrame):
    """The meta-labeler on the candidate's own out-of-fold primary scores (as the trees')."""
    if not p.model.meta_label.enabled or oos.empty:
        return None
    gap = p.features.label_horizon + p.cv.embargo_days
    walk_forward_meta(oos, ts.X, lambda: meta_labeler(p), gap,
                      p.model.meta_label.min_train_dates)  # fails early on too few dates
    rows = oos["row"].to_numpy()
    return meta_labeler(p).fit(with_primary_score(ts.X.iloc[rows], oos["score"]),
                               oos["label"], dates=oos["date"].to_numpy())


def fit_tft(p: Params, ts: TrainingSet, X: pd.DataFrame, storage: str, cost
            ) -> SequenceCandidate:
    """Tune on the sessions before the gate's period, score walk-forward, refit on all."""
    family = tft_family(p)
    tune_set, keep = before_holdout(ts, p)
    study = f"{p.model.name}-{ts.fingerprint[:12]}-tft"
    with TrialProgress("tune tft", p.model.tft.trials) as progress:
        tuned = tune_tft(X[keep].reset_index(drop=True), tune_set.y, tune_set.dates,
                         tune_set.symbols, folds(p, tune_set), base=tft_config(p),
                         space=p.model.tft.search, n_trials=p.model.tft.trials,
                         seed=p.tuning.seed, storage=storage, study_name=study, family=family,
                         pruner_startup_trials=p.tuning.pruner_startup_trials,
                         quantile=p.portfolio.quantile, horizon=p.features.label_horizon,
                         timeout_s=p.tuning.timeout_s, callbacks=[progress])
    config = dataclasses.replace(tft_config(p), **tuned.best_params)
    log.info("TFT tuned over %d trials: %s", tuned.n_trials, tuned.best_params)
    recipe = {"kind": "tft", "tft": tft_config_dict(config), "features": ts.features}
    oos = cross_val_predict(lambda: TFTForecaster(config=config, features=ts.features), X,
                            ts.y, dates=ts.dates, symbols=ts.symbols,
                            splits=folds(p, ts)).predictions.dropna(subset=["score"])
    q, h = p.portfolio.quantile, p.features.label_horizon
    record_ensemble(storage, f"{study}-final", mean_rank_ic(oos["score"], oos["label"],
                                                             oos["date"]),
                    sharpe(long_short_returns(oos, q, h)), family=family)
    metrics = oos_metrics(oos, p, family_trials(storage, family), cost)
    final = TFTForecaster(config=config, features=ts.features).fit(X, ts.y, dates=ts.dates)
    return SequenceCandidate(
        kind="tft", signal=SignalModel(None, fit_meta(p, ts, oos), final), recipe=recipe,
        oos=oos.reset_index(drop=True), metrics=metrics,
        per_fold=fold_metrics(oos, q, h, sessions_per_year(p.data.calendar), cost,
                              **book_size(p)),
        family=family, studies={"tft": study}, weights={"tft": 1.0})


def fit_stack(p: Params, ts: TrainingSet, tft: SequenceCandidate, trees: TrainResult,
              trees_signal: SignalModel, trees_oos: pd.DataFrame, storage: str, cost
              ) -> SequenceCandidate:
    """Weights from the two out-of-fold scores on sessions before the gate's period only;
    the stack's own walk-forward is their combination on every common row."""
    both = tft.oos.merge(trees_oos[["date", "symbol", "score"]], on=["date", "symbol"],
                         suffixes=("_tft", "_trees"))
    if both.empty:
        raise MissingPrerequisite("the trees' and the TFT's walk-forward share no rows")
    dates = both["date"].to_numpy()
    Z, _ = per_date_zscore(both[["score_trees", "score_tft"]].to_numpy(), dates)
    target = cross_sectional_rank(both["label"], both["date"]).to_numpy()
    early = (both["date"] < holdout_start(ts.dates, p.gate.holdout_fraction)).to_numpy()
    w, fell_back = stack_weights(Z[early], target[early], None)
    if fell_back:
        log.warning("neither the trees nor the TFT earned a positive stacking weight "
                    "before the gate's period: averaging")
    weights = (float(w[0]), float(w[1]))
    oos = both.assign(score=combine(both["score_trees"], both["score_tft"], dates, weights))
    oos = oos.drop(columns=["score_trees", "score_tft"])
    family = stack_family(trees.family or "", p)
    q, h = p.portfolio.quantile, p.features.label_horizon
    record_ensemble(storage, f"{p.model.name}-{ts.fingerprint[:12]}-stack",
                    mean_rank_ic(oos["score"], oos["label"], oos["date"]),
                    sharpe(long_short_returns(oos, q, h)), family=stack_own_family(p))
    metrics = oos_metrics(oos, p, family_trials(storage, family), cost)
    tree_recipe = {k: v for k, v in trees.recipe.items() if k != "kind"}
    recipe = {"kind": "stack", "trees": tree_recipe, "tft": tft.recipe["tft"],
              "tft_features": tft.recipe["features"], "features": ts.features,
              "weights": list(weights)}
    signal = SignalModel(trees_signal.ensemble, fit_meta(p, ts, oos), tft.signal.tft, weights)
    return SequenceCandidate(
        kind="stack", signal=signal, recipe=recipe, oos=oos, metrics=metrics,
        per_fold=fold_metrics(oos, q, h, sessions_per_year(p.data.calendar), cost,
                              **book_size(p)),
        family=family, studies={**trees.studies, **tft.studies},
        weights={"trees": weights[0], "tft": weights[1]})


def register(registry: Registry, p: Params, ts: TrainingSet, X: pd.DataFrame,
             c: SequenceCandidate, trees: TrainResult) -> TrainResult:
    """One MLflow run, registered under ``model.name`` as challenger."""
    days = np.sort(ts.dates.unique())[-(c.signal.context_sessions + 1):]
    sample = X[ts.dates.isin(days).to_numpy()].assign(
        date=ts.dates[ts.dates.isin(days)].to_numpy()).reset_index(drop=True)
    recent = X[ts.dates >= np.sort(ts.dates.unique())[-min(60, ts.dates.nunique())]]
    importance = c.signal.tft.importance(recent, dates=ts.dates[recent.index])
    reg = registry.log_candidate(
        p.model.name, c.signal, sample,
        params={"kind": c.kind, "label_horizon": p.features.label_horizon,
                "n_features": len(ts.features), "train_start": str(ts.dates.min().date()),
                "train_end": str(ts.dates.max().date()), "n_rows": len(ts.X),
                "studies": ",".join(c.studies.values())},
        hyperparameters={f"tft.{k}": v for k, v in c.recipe["tft"].items()},
        metrics={**{f"oos_{k}": v for k, v in c.metrics.items()},
                 **{f"stack_weight_{k}": v for k, v in c.weights.items()}},
        tags={"dataset_fingerprint": ts.fingerprint, "data_source": p.data.source,
              "model.kind": c.kind,
              "feature_validation.suspected_leak":
                  str(trees.feature_validation.suspected_leak).lower()},
        figures={"tft_importance.png": importance_figure(importance)},
        artifacts={"recipe.json": c.recipe, "tft_importance.json": importance,
                   "features.json": {"features": ts.features},
                   "reference.json": drift_reference(ts.X, c.oos["score"], p.drift.bins),
                   "fold_metrics.json": c.per_fold.astype({"start": str, "end": str}).to_dict(
                       orient="records")},
        texts={"fold_metrics.md": c.per_fold.to_markdown(index=False, floatfmt=".4f")},
        pip_extra=["torch", "pytorch-forecasting", "lightning"])
    return TrainResult(
        model=p.model.name, version=reg.version, run_id=reg.run_id, studies=c.studies,
        fingerprint=ts.fingerprint, recipe=c.recipe, oos=c.metrics, stack_weights=c.weights,
        redundant_members=[], fold_metrics=c.per_fold.astype({"start": str, "end": str}).to_dict(
            orient="records"),
        feature_validation=trees.feature_validation, train_rows=len(ts.X),
        splits=len(c.per_fold), family=c.family)


def run_train_tft(project: Project) -> list[EvaluateResult]:
    """Train the TFT (and with ``model.tft.stack`` the stack), register each and put it
    through the gate against the champion of the moment; returns the gate's results."""
    from alphaline.pipelines.evaluate import gate_and_record

    p = project.params
    catalog = Catalog(project)
    if not catalog.train_path.exists():
        raise MissingPrerequisite("the TFT runs after the trees' train stage: run train")
    trees = catalog.train()
    ts = catalog.training_set()
    if trees.fingerprint != ts.fingerprint:
        raise MissingPrerequisite("the trees' train stage ran on other data: run train again")
    cost = catalog_costs(p, catalog)
    if cost.market is None:
        raise MissingPrerequisite("the TFT needs the bars' closes for its return sequence")
    X = sequence_inputs(ts, market_grids(cost.market)["close"])
    registry = Registry.for_project(project)
    tft = fit_tft(p, ts, X, project.optuna_url, cost)
    candidates = [tft]
    if p.model.tft.stack:
        trees_signal = registry.load_version(trees.model, trees.version)
        candidates.append(fit_stack(p, ts, tft, trees, trees_signal, catalog.oos(),
                                    project.optuna_url, cost))
    results = []
    for c in candidates:
        trained = register(registry, p, ts, X, c, trees)
        log.info("%s v%s: walk-forward rank IC %.4f, DSR %.3f over %d trials", c.kind,
                 trained.version, c.metrics["rank_ic"], c.metrics["deflated_sharpe"],
                 int(c.metrics["n_trials"]))
        result = gate_and_record(project, trained, ts)
        catalog.save_result(f"train_{c.kind}.json", trained)
        catalog.save_result(f"evaluate_{c.kind}.json", result)
        results.append(result)
    champion = registry.alias_version(p.model.name, CHAMPION)
    log.info("champion after the sequence challengers: v%s", champion)
    return results
