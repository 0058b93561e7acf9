"""Model speed at the issue's scale (500 symbols).

1. Batch inference: load the saved champion bundle (ensemble + meta-labeler), then score one
   date's 500 rows; median and p95 over repeated calls. Reference in the same run: one raw
   LightGBM booster predicting the same rows. The top SHAP reasons are timed apart, through
   LightGBM's own TreeSHAP (what serving runs) and through ``shap.TreeExplainer`` (the
   reference), with the largest gap between their values.
2. Monthly retrain at 500 × 2,520: one fit of each member objective on a walk-forward
   training slice, one stacked-ensemble fit and one CPCV split, timed at full size. The
   retrain's wall time is these unit costs times the counts the params imply (trials ×
   folds per objective, the ensemble's walk-forward folds, the final fit, the CPCV splits
   for challenger and champion): printed as a projection, not a measured run.

    python benches/model_speed.py [--symbols 500] [--days 2520] [--trials 50] [--skip-retrain]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from alphaline.config import load_params

REPO = Path(__file__).resolve().parents[1]


def market(symbols: int, days: int, params):
    from alphaline.calendar import sessions
    from alphaline.pipelines.featurize import build
    from alphaline.pipelines.synthetic import generate_market

    cal = sessions("XNYS", "2010-01-04", "2026-11-20")
    bars, _ = generate_market(symbols, cal[0], cal[days - 1], seed=1)
    tables = build(bars, params.features)
    frame = tables.features.merge(tables.labels, on=["symbol", "date"])
    frame = frame[frame["label"].notna()].sort_values(["date", "symbol"], ignore_index=True)
    names = [c for c in tables.features.columns if c not in ("symbol", "date")]
    warm = frame.groupby("symbol").cumcount() >= 60
    frame = frame[warm].reset_index(drop=True)
    return frame[names], frame["label"], frame["date"], frame["symbol"]


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best.append(time.perf_counter() - start)
    return statistics.median(best), out


# The members' hyperparameters for timing: the middle of the default search space.
HYPERPARAMETERS = {"learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 100,
                   "feature_fraction": 0.8, "bagging_fraction": 0.8, "lambda_l2": 1.0}


def member_spec(params, objective: str, seed: int = 1) -> dict:
    from alphaline.pipelines.train import member_base

    return {**member_base(params), **HYPERPARAMETERS, "objective": objective, "seed": seed}


def shap_contributions(model, X) -> np.ndarray:
    """The reference: the same decomposition through ``shap.TreeExplainer``, one explainer
    per member per call, as serving computed it before LightGBM's own TreeSHAP."""
    import shap

    from alphaline.models.ensemble import per_date_zscore

    ensemble = model.ensemble
    values = X[model.features].to_numpy(dtype="float32")
    _, std = per_date_zscore(ensemble.member_predictions(X[model.features]), None)
    total = np.zeros(values.shape)
    for m, member in enumerate(ensemble.members_):
        if ensemble.weights_[m] > 0:
            phi = np.asarray(shap.TreeExplainer(member.booster_).shap_values(values))
            total += phi * (ensemble.weights_[m] / std[:, m])[:, None]
    return total


def inference(params, symbols: int) -> dict:
    from alphaline.models.explain import top_contributions
    from alphaline.models.meta_label import with_primary_score
    from alphaline.models.signal import SignalModel
    from alphaline.pipelines.train import ensemble_from, meta_labeler

    X, y, dates, _ = market(symbols, 320, params)
    members = [member_spec(params, o) for o in params.model.objectives]
    recipe = {"members": members, "stack_folds": params.model.stack_folds,
              "horizon": params.features.label_horizon, "embargo": params.cv.embargo_days,
              "redundancy_corr": params.model.redundancy_corr}
    ensemble = ensemble_from(recipe, params.model.n_jobs).fit(X, y, dates=dates)
    scores = ensemble.predict(X, dates=dates.to_numpy())
    meta = meta_labeler(params).fit(with_primary_score(X, scores), y, dates=dates.to_numpy())
    with tempfile.TemporaryDirectory() as tmp:
        SignalModel(ensemble, meta).save(Path(tmp) / "signal")
        load_s, model = timed(lambda: SignalModel.load(Path(tmp) / "signal"))
    day = X[(dates == dates.max()).to_numpy()]
    model.score(day)  # first call warms caches
    runs = []
    for _ in range(100):
        start = time.perf_counter()
        model.score(day)
        runs.append(time.perf_counter() - start)
    k = params.model.explain_top
    # the first call on a freshly loaded model also builds each member's TreeSHAP tables
    first_s, _ = timed(lambda: top_contributions(model.contributions(day), day, k))
    reasons_s, fast = timed(lambda: top_contributions(model.contributions(day), day, k),
                            repeat=50)
    shap_s, slow = timed(lambda: top_contributions(shap_contributions(model, day), day, k),
                         repeat=5)
    gap = float(np.abs(model.contributions(day) - shap_contributions(model, day)).max())
    same_reasons = [[r["feature"] for r in row] for row in fast] == \
        [[r["feature"] for r in row] for row in slow]
    booster = model.ensemble.members_[0].booster_
    values = day.to_numpy(dtype="float32")
    ref_s, _ = timed(lambda: booster.predict(values, num_threads=2), repeat=100)
    median = statistics.median(runs)
    return {"rows": len(day), "features": day.shape[1], "members": len(members),
            "load_ms": round(load_s * 1e3, 1), "score_median_ms": round(median * 1e3, 2),
            "score_p95_ms": round(float(np.percentile(runs, 95)) * 1e3, 2),
            "reasons_first_call_ms": round(first_s * 1e3, 1),
            "reasons_ms": round(reasons_s * 1e3, 2),
            "shap_tree_explainer_reasons_ms": round(shap_s * 1e3, 1),
            "reasons_speedup": round(shap_s / reasons_s, 1),
            "max_abs_gap_vs_shap": gap, "same_top_features": same_reasons,
            "single_booster_ms": round(ref_s * 1e3, 2),
            "score_vs_single_booster": round(median / ref_s, 1)}


def retrain_projection(params, symbols: int, days: int, trials: int) -> dict:
    from alphaline.models.cv import combinatorial_purged, purged_walk_forward
    from alphaline.models.lgbm import LGBMMember
    from alphaline.pipelines.train import ensemble_from

    start = time.perf_counter()
    X, y, dates, _ = market(symbols, days, params)
    features_s = time.perf_counter() - start
    cv = params.cv
    h = params.features.label_horizon
    wf = purged_walk_forward(dates, cv.n_splits, h, cv.embargo_days, cv.min_train_days)
    mean_train = int(np.mean([len(s.train) for s in wf]))
    rows = np.arange(mean_train)  # rows are date-ordered: the oldest mean-fold slice
    fit_s = {}
    for objective in params.model.objectives:
        fit_s[objective], _ = timed(lambda o=objective: LGBMMember(
            **member_spec(params, o), n_jobs=params.model.n_jobs).fit(
            X.iloc[rows], y.iloc[rows], dates=dates.iloc[rows]))
        print(f"  {objective} fit on {mean_train:,} rows: {fit_s[objective]:.1f} s", flush=True)
    members = [member_spec(params, o, s) for o in params.model.objectives
               for s in params.model.seeds]
    recipe = {"members": members, "stack_folds": params.model.stack_folds, "horizon": h,
              "embargo": cv.embargo_days, "redundancy_corr": params.model.redundancy_corr}
    ensemble_s, _ = timed(lambda: ensemble_from(recipe, params.model.n_jobs).fit(
        X.iloc[rows], y.iloc[rows], dates=dates.iloc[rows]))
    print(f"  ensemble fit on {mean_train:,} rows: {ensemble_s:.1f} s", flush=True)
    cpcv = combinatorial_purged(dates, cv.cpcv_groups, cv.cpcv_test_groups, h, cv.embargo_days)
    cpcv_rows = int(np.mean([len(s.train) for s in cpcv]))
    scale = cpcv_rows / mean_train
    tuning_s = trials * len(wf) * sum(fit_s.values())
    walk_forward_s = len(wf) * ensemble_s
    final_s = ensemble_s * len(X) / mean_train
    cpcv_s = 2 * len(cpcv) * ensemble_s * scale  # challenger and champion
    total = features_s + tuning_s + walk_forward_s + final_s + cpcv_s
    return {"symbols": symbols, "days": days, "training_rows": len(X),
            "features": X.shape[1], "trials_per_member": trials,
            "walk_forward_folds": len(wf), "cpcv_splits": len(cpcv),
            "measured_fit_s": {k: round(v, 2) for k, v in fit_s.items()},
            "measured_ensemble_fit_s": round(ensemble_s, 2),
            "features_s": round(features_s, 1),
            "projected_s": {"tuning_unpruned": round(tuning_s), "ensemble_walk_forward":
                            round(walk_forward_s), "final_fit": round(final_s),
                            "cpcv_gate": round(cpcv_s)},
            "projected_total_min_unpruned": round(total / 60, 1),
            "target_min": 45}


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--skip-retrain", action="store_true")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    figures: dict = {"bench": "model_speed"}
    figures["inference"] = inference(params, args.symbols)
    print(f"inference: {figures['inference']}", flush=True)
    if not args.skip_retrain:
        figures["retrain"] = retrain_projection(params, args.symbols, args.days, args.trials)
        print(f"retrain: {figures['retrain']}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
