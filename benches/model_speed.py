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
3. The TFT at its default size (``model.tft``, one epoch) on a synthetic panel of
   ``--symbols`` × ``--tft-days`` sessions: seconds of the first fit (dataset build and one
   epoch) and of one more epoch alone, on the device ``model.tft.device`` resolves to; then
   on CPU, the scores of ``--symbols`` names from each one's encoder window (what the daily
   flow reads: ``encoder_days + 1`` sessions), median of repeated calls, against the
   network's forward pass alone on the same windows (the reference), with the share of one
   call spent building dataset items.

    python benches/model_speed.py [--symbols 500] [--days 2520] [--trials 50] [--skip-retrain]
        [--parts inference,retrain,tft] [--tft-days 150]
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


def tft_panel(symbols: int, days: int, params):
    """``symbol, date, ret`` + the feature columns, after each symbol's 60 warm-up sessions."""
    from alphaline.calendar import sessions
    from alphaline.models.tft import returns_panel
    from alphaline.pipelines.featurize import build
    from alphaline.pipelines.synthetic import generate_market

    cal = sessions("XNYS", "2010-01-04", "2026-11-20")
    bars, _ = generate_market(symbols, cal[0], cal[days - 1], seed=1)
    features = build(bars, params.features).features
    names = [c for c in features.columns if c not in ("symbol", "date")]
    panel = returns_panel(bars).merge(features, on=["symbol", "date"])
    panel = panel.sort_values(["date", "symbol"], ignore_index=True)
    panel = panel[(panel.groupby("symbol").cumcount() >= 60).to_numpy()]
    return panel.reset_index(drop=True), names


def profile_shares(fn) -> dict:
    """Shares of one call's time: TimeSeriesDataSet items, its rebuild, the TFT's forward."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, cumtime, callers)
    total = max(ct for (_, _, _, ct, _) in stats.values())

    def cum(file_end: str, name: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file_end) and n == name)

    # the TFT's own forward only: its sub-modules' forwards run inside it
    return {"dataset_items": round(cum("_timeseries.py", "__getitem__") / total, 3),
            "dataset_rebuild": round(cum("_timeseries.py", "from_dataset") / total, 3),
            "forward": round(cum("_tft.py", "forward") / total, 3)}


def clocked(fn, repeat: int = 1) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``fn`` (this process's CPU time: near what the wall
    time would be on a quiet machine when torch runs one thread), and its last result."""
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu), out


def tft_speed(params, symbols: int, days: int, full_days: int, repeat: int = 7) -> dict:
    """One epoch of the TFT at its default size, and CPU scores of ``symbols`` names."""
    import copy
    import dataclasses
    import os
    import warnings

    import lightning.pytorch as pl
    import torch

    from alphaline.models.tft import TFTForecaster, accelerator
    from alphaline.pipelines.train_tft import tft_config

    warnings.filterwarnings("ignore", module="lightning")
    config = dataclasses.replace(tft_config(params), epochs=1)
    device = accelerator(config.device)
    panel, names = tft_panel(symbols, days, params)
    X, dates = panel[["symbol", "ret", *names]], panel["date"]
    model = TFTForecaster(config=config, features=names)
    fit_s, fit_cpu, _ = clocked(lambda: model.fit(X, None, dates=dates))
    windows = len(model.dataset_)
    loader = model.dataset_.to_dataloader(train=True, batch_size=config.batch_size,
                                          num_workers=0)
    # one more epoch on the built dataset: the epoch alone, without the dataset build
    trainer = pl.Trainer(max_epochs=1, accelerator=device, devices=1, logger=False,
                         gradient_clip_val=config.gradient_clip, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    epoch_s, epoch_cpu, _ = clocked(lambda: trainer.fit(model.model_, train_dataloaders=loader))
    items_s, items_cpu, _ = clocked(lambda: sum(1 for _ in loader))  # its batches, no model
    print(f"  TFT fit on {windows:,} windows ({device}): first fit {fit_s:.1f} s, "
          f"one epoch {epoch_s:.1f} s (CPU {epoch_cpu:.1f} s), its batches alone "
          f"{items_s:.1f} s", flush=True)

    cpu = copy.copy(model)  # the scores are timed on CPU whatever trained the model
    cpu.config = dataclasses.replace(config, device="cpu")
    cpu.model_ = model.model_.to("cpu")
    sessions = np.unique(dates.to_numpy())

    def window(n: int):
        rows = (dates >= sessions[-n]).to_numpy()
        return X[rows], dates[rows]

    served, served_dates = window(config.encoder_days + 1)  # what the daily flow reads
    lean, lean_dates = window(config.encoder_days)  # one window per name: the scored one
    scores = cpu.predict(served, dates=served_dates)  # the first call warms up
    predict_s, predict_cpu, _ = clocked(lambda: cpu.predict(served, dates=served_dates),
                                        repeat)
    lean_s, lean_cpu, lean_scores = clocked(lambda: cpu.predict(lean, dates=lean_dates),
                                            repeat)
    last = (served_dates == sessions[-1]).to_numpy()
    same = np.allclose(scores[last], lean_scores[(lean_dates == sessions[-1]).to_numpy()],
                       atol=1e-6)
    shares = profile_shares(lambda: cpu.predict(served, dates=served_dates))
    served_windows = int(np.isfinite(scores).sum())
    batch = cpu.dataset_.to_dataloader(train=False, batch_size=served_windows, num_workers=0)
    _, items_ref_cpu, (x, _) = clocked(lambda: next(iter(batch)))
    cpu.model_.eval()

    def forward():
        with torch.inference_mode():
            return cpu.model_(x)

    forward()
    forward_s, forward_cpu, _ = clocked(forward, repeat)
    per_window = epoch_cpu / windows
    full_windows = windows * (full_days - 60 - config.encoder_days - config.horizon) / (
        days - 60 - config.encoder_days - config.horizon)
    return {"symbols": symbols, "panel_sessions": len(sessions),
            "features": len(names), "train_windows": windows, "device": device,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch_threads": torch.get_num_threads(), "load_avg": round(os.getloadavg()[0], 1),
            "hidden_size": config.hidden_size, "attention_heads": config.attention_heads,
            "encoder_days": config.encoder_days, "batch_size": config.batch_size,
            "first_fit_s": round(fit_s, 1), "first_fit_cpu_s": round(fit_cpu, 1),
            "epoch_s": round(epoch_s, 1), "epoch_cpu_s": round(epoch_cpu, 1),
            "epoch_batches_alone_s": round(items_s, 1),
            "epoch_batches_alone_cpu_s": round(items_cpu, 1),
            "epoch_cpu_ms_per_1000_windows": round(per_window * 1e6, 1),
            "projected_epoch_cpu_min_full_history": round(per_window * full_windows / 60, 1),
            "full_days": full_days,
            "predict_windows": served_windows, "predict_median_s": round(predict_s, 3),
            "predict_cpu_s": round(predict_cpu, 3),
            "predict_one_window_per_name_s": round(lean_s, 3),
            "predict_one_window_per_name_cpu_s": round(lean_cpu, 3),
            "one_window_same_scores": bool(same), "target_s": 1.0,
            "shares_of_predict": shares,
            "reference_forward_s": round(forward_s, 3),
            "reference_forward_cpu_s": round(forward_cpu, 3),
            "reference_items_and_collate_cpu_s": round(items_ref_cpu, 3),
            "predict_vs_forward_cpu": round(predict_cpu / forward_cpu, 1)}


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--skip-retrain", action="store_true")
    parser.add_argument("--parts", default="inference,retrain,tft",
                        help="comma-separated: inference, retrain, tft")
    parser.add_argument("--tft-days", type=int, default=150,
                        help="sessions of the TFT's training panel (the first 60 warm up)")
    args = parser.parse_args()
    parts = set(args.parts.split(",")) - ({"retrain"} if args.skip_retrain else set())
    params = load_params(REPO / "params.yaml")
    figures: dict = {"bench": "model_speed"}
    if "inference" in parts:
        figures["inference"] = inference(params, args.symbols)
        print(f"inference: {figures['inference']}", flush=True)
    if "retrain" in parts:
        figures["retrain"] = retrain_projection(params, args.symbols, args.days, args.trials)
        print(f"retrain: {figures['retrain']}", flush=True)
    if "tft" in parts:
        figures["tft"] = tft_speed(params, args.symbols, args.tft_days, args.days)
        print(f"tft: {figures['tft']}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
