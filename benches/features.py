"""Feature computation at scale, and Feast at that size.

    python benches/features.py [--symbols 500] [--days 2520] [--reference-symbols 25]
                               [--parts alpha158 reference all_but_garch all_sets feast daily]

Each stage runs in its own child process, so its peak RSS is its own. Stages:

- ``alpha158``: the 158 Alpha158 features over every symbol and day (``compute_features``,
  long float32 table out);
- ``reference``: the same features by the literal groupby-rolling transcription of Qlib's
  expressions (``features.alpha158_reference``), on ``--reference-symbols`` symbols; its
  per-row cost is scaled to the full size (it is linear in symbols) for the ratio;
- ``all_sets``, ``all_but_garch``: every set (211 features) with and without the GARCH
  forecast (per-symbol ``arch`` fits dominate);
- ``feast``: the training-set join through ``get_historical_features`` for every row and
  feature, and online retrieval of every feature for all symbols after ``materialize``;
- ``daily``: the daily flow's features step, all sets: the whole history (what it ran
  every day) against one session appended (``featurize.build_day``) on an ordinary and on
  a GARCH refit day (``--parts daily`` runs it alone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from child import run_stage

REPO = Path(__file__).resolve().parents[1]
PARTS = ("alpha158", "reference", "all_but_garch", "all_sets", "feast", "daily")


def _bars(args) -> Path:
    path = Path(tempfile.gettempdir()) / f"alphaline-bench-bars-{args.symbols}x{args.days}.parquet"
    if not path.exists():
        from alphaline.calendar import sessions
        from alphaline.pipelines.synthetic import generate_market

        days = sessions("XNYS", "1990-01-02", "2023-12-29")[-args.days:]
        bars, _ = generate_market(args.symbols, days[0], days[-1], seed=1)
        bars.to_parquet(path, index=False)
    return path


def stage(name: str, bars_path: Path, args) -> dict:
    import numpy as np
    import pandas as pd

    from alphaline.features.compute import compute_features
    from alphaline.features.definitions import SETS, feature_names, get

    bars = pd.read_parquet(bars_path)
    rows = len(bars)
    if name == "alpha158":
        start = time.perf_counter()
        out = compute_features(bars, get(feature_names(["alpha158"])))
        return {"seconds": time.perf_counter() - start, "rows": rows,
                "columns": out.shape[1] - 2}
    if name == "reference":
        from alphaline.features.alpha158_reference import alpha158_reference

        keep = sorted(bars["symbol"].unique())[: args.reference_symbols]
        part = bars[bars["symbol"].isin(keep)]
        start = time.perf_counter()
        alpha158_reference(part)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rows": len(part),
                "seconds_scaled_to_full": seconds * rows / len(part)}
    if name in ("all_sets", "all_but_garch"):
        names = [n for n in feature_names(SETS) if name == "all_sets" or n != "garch_vol"]
        start = time.perf_counter()
        out = compute_features(bars, get(names), {"risk": {"garch_refit_every": 63}})
        return {"seconds": time.perf_counter() - start, "rows": rows,
                "columns": out.shape[1] - 2}
    if name == "feast":
        from alphaline.features import store as feast_store

        names = [n for n in feature_names(SETS) if n != "garch_vol"]
        feats = compute_features(bars, get(names))
        root = Path(tempfile.mkdtemp(prefix="alphaline-feast-"))
        table = root / "features.parquet"
        feast_store.to_feast_table(feats, "XNYS").to_parquet(table, index=False)
        del feats
        store = feast_store.open_store(root / "repo", table, names)
        entities = bars[["symbol", "date"]]
        start = time.perf_counter()
        joined = feast_store.historical(store, entities, names, "XNYS")
        historical = time.perf_counter() - start
        assert len(joined) == rows
        last = pd.Timestamp(bars["date"].max())
        start = time.perf_counter()
        feast_store.materialize_day(store, last, "XNYS")
        materialize = time.perf_counter() - start
        symbols = sorted(bars["symbol"].unique())
        feast_store.online_vectors(store, symbols, names)  # warm the connection
        times = []
        for _ in range(5):
            start = time.perf_counter()
            vectors = feast_store.online_vectors(store, symbols, names)
            times.append(time.perf_counter() - start)
        assert len(vectors) == len(symbols)
        shutil.rmtree(root, ignore_errors=True)
        return {"historical_seconds": historical, "rows": rows, "features": len(names),
                "materialize_day_seconds": materialize,
                "online_ms_median": float(np.median(times)) * 1000, "symbols": len(symbols)}
    if name == "daily":
        return daily(bars)
    raise ValueError(name)


def daily(bars) -> dict:
    """The daily flow's features step (``refresh_features``), all sets, GARCH refit every
    63 sessions, in a scratch project: the whole history and its write (what the flow ran
    every day), against reading the live table, appending one session (``build_day``) and
    writing it back, on an ordinary day and on a refit day. Feast's materialize is apart."""
    import numpy as np
    import pandas as pd
    import yaml

    from alphaline.config import load_params
    from alphaline.features.definitions import SETS, lookback
    from alphaline.pipelines.featurize import build_day, build_live, read_live, write_live_day
    from alphaline.project import Project

    refit = 63
    root = Path(tempfile.mkdtemp(prefix="alphaline-daily-"))
    params = load_params(REPO / "params.yaml").with_overrides(
        {"features.sets": list(SETS), "features.garch_refit_every": refit,
         "features.benchmark": None})
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()
    fp = project.params.features
    dates = np.sort(bars["date"].unique())
    t = (len(dates) - 1) // refit * refit  # the last refit day; the day before is ordinary
    bars = bars[bars["date"] <= dates[t]]
    start = time.perf_counter()
    live = build_live(bars[bars["date"] < dates[t - 1]], fp)
    full_compute = time.perf_counter() - start
    write_live_day(project, live)
    full = time.perf_counter() - start
    figures = {"full_compute_seconds": full_compute, "full_seconds": full}
    for day, kind in ((dates[t - 1], "day"), (dates[t], "refit_day")):
        start = time.perf_counter()
        previous = read_live(project)
        read = time.perf_counter()
        live = build_day(bars, fp, day, previous)
        computed = time.perf_counter()
        write_live_day(project, live)
        end = time.perf_counter()
        figures |= {f"{kind}_read_seconds": read - start,
                    f"{kind}_compute_seconds": computed - read,
                    f"{kind}_write_seconds": end - computed, f"{kind}_seconds": end - start}
    assert live.features["date"].max() == pd.Timestamp(dates[t])
    shutil.rmtree(root, ignore_errors=True)
    return figures | {"lookback_sessions": lookback(SETS), "history_sessions": t - 1,
                      "rows": len(live.features), "columns": live.features.shape[1] - 2}


def run_child(name: str, args) -> dict:
    """Run one stage in a child process; add that child's own peak RSS (MB)."""
    figures, peak = run_stage(__file__, [
        "--stage", name, "--symbols", str(args.symbols), "--days", str(args.days),
        "--reference-symbols", str(args.reference_symbols)])
    figures["peak_rss_mb"] = peak
    return figures


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--reference-symbols", type=int, default=25)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--skip", nargs="*", default=[])
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    args = parser.parse_args()
    bars_path = _bars(args)
    if args.stage:
        print(json.dumps(stage(args.stage, bars_path, args)))
        return
    results = {}
    for name in PARTS:
        if name in args.skip or name not in args.parts:
            continue
        results[name] = run_child(name, args)
        print(f"{name:<14} {json.dumps(results[name])}", flush=True)
    figures = {"bench": "features", "symbols": args.symbols, "days": args.days}
    if "alpha158" in results:
        a = results["alpha158"]
        figures |= {"alpha158_seconds": round(a["seconds"], 2),
                    "alpha158_peak_rss_mb": a["peak_rss_mb"],
                    "alpha158_rows_per_s": round(a["rows"] / a["seconds"])}
        if "reference" in results:
            ref = results["reference"]["seconds_scaled_to_full"]
            figures |= {"reference_seconds_scaled": round(ref, 1),
                        "speedup_vs_reference": round(ref / a["seconds"], 1)}
    for name in ("all_but_garch", "all_sets"):
        if name in results:
            figures |= {f"{name}_seconds": round(results[name]["seconds"], 2),
                        f"{name}_peak_rss_mb": results[name]["peak_rss_mb"]}
    if "feast" in results:
        f = results["feast"]
        figures |= {"feast_historical_seconds": round(f["historical_seconds"], 2),
                    "feast_features": f["features"],
                    "feast_online_ms": round(f["online_ms_median"], 1),
                    "feast_peak_rss_mb": f["peak_rss_mb"]}
    if "daily" in results:
        d = results["daily"]
        figures |= {f"daily_{k}": round(v, 2) for k, v in d.items()
                    if k.endswith("seconds")}
        figures |= {"daily_speedup": round(d["full_seconds"] / d["day_seconds"], 1),
                    "daily_refit_speedup": round(d["full_seconds"] / d["refit_day_seconds"], 1),
                    "daily_lookback_sessions": d["lookback_sessions"],
                    "daily_peak_rss_mb": d["peak_rss_mb"]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
