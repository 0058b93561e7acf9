"""Feast at 210 features: historical retrieval of every row, online read of every symbol.

(Named feature_store.py: a script named feast.py would shadow the feast package.)

    python benches/feature_store.py [--symbols 500] [--days 2520] [--online-reads 50]

The feature table is 500 symbols × 2,520 XNYS sessions with every feature of every set but
the GARCH forecast (210 columns, float32), filled with random floats: computing the sets
takes 10-160 s (benches/features.py) and the join's cost does not depend on the values.
Each stage runs in its own child process, so its peak RSS is its own:

- ``historical``: ``FeatureStore.get_historical_features(...).to_df()`` for all 1.26 M
  (symbol, session close) rows × 210 features through the repo ``features.store`` builds
  (a view per set, the ASOF offline store); the reference is pandas ``merge_asof`` of the
  same rows with the same TTL, timed in the same process after it and checked equal;
- ``historical_core``: the same rows, the 25 core features only (one view);
- ``online``: ``materialize_day`` of the last session, then ``online_vectors`` (the daily
  flow's read: ``get_online_features`` of each set's packed ``Array(Float32)`` view, 5
  values per symbol, unpacked with numpy) for 500 symbols × 210 features and × the 25 core
  features (median of ``--online-reads``), SQLite, checked equal to the table;
- ``online_scalar``: the reference, in the same run: the same read with one online value
  per feature (the per-set views made online), checked equal to the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from child import run_stage

REPO = Path(__file__).resolve().parents[1]
CALENDAR = "XNYS"
CACHE = Path(tempfile.gettempdir())  # the table outlives each stage's scratch folder


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _table(args) -> Path:
    """The random feature table (cached in the temp folder), stamped at each session close."""
    path = CACHE / f"alphaline-bench-feast-{args.symbols}x{args.days}.parquet"
    if path.exists():
        return path
    import numpy as np
    import pandas as pd

    from alphaline.calendar import sessions
    from alphaline.features import store as feast_store

    days = pd.DatetimeIndex(sessions(CALENDAR, "1990-01-02", "2023-12-29")[-args.days:])
    days = days.tz_localize(None) if days.tz is not None else days
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    names = _names()
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"symbol": np.repeat(symbols, len(days)),
                          "date": np.tile(days, len(symbols))})
    values = rng.standard_normal((len(frame), len(names)), dtype=np.float32)
    frame = pd.concat([frame, pd.DataFrame(values, columns=names)], axis=1)
    tmp = path.with_suffix(".tmp")
    feast_store.to_feast_table(frame, CALENDAR).to_parquet(tmp, index=False)
    tmp.rename(path)
    return path


def _names() -> list[str]:
    from alphaline.features.definitions import SETS, feature_names

    return [n for n in feature_names(SETS) if n != "garch_vol"]


def _historical(table: Path, names: list[str]) -> dict:
    import numpy as np
    import pandas as pd

    from alphaline.features import store as feast_store

    root = Path(tempfile.mkdtemp(prefix="alphaline-bench-feast-"))
    store = feast_store.open_store(root / "repo", table, names)
    entity_df = pd.read_parquet(table, columns=["symbol", feast_store.TIMESTAMP])
    before = _rss_mb()
    start = time.perf_counter()
    joined = store.get_historical_features(entity_df=entity_df,
                                           features=feast_store.feature_refs(names)).to_df()
    seconds = time.perf_counter() - start
    peak = _rss_mb()
    # The reference: pandas merge_asof of the same rows with the same TTL, matching row
    # numbers, then a numpy gather of the columns (all 210 columns through merge_asof
    # take ~10 GB).
    start = time.perf_counter()
    keys = pd.read_parquet(table, columns=["symbol", feast_store.TIMESTAMP])
    keys["file_row"] = np.arange(len(keys))
    matched = pd.merge_asof(
        entity_df.assign(entity_row=np.arange(len(entity_df))).sort_values(
            feast_store.TIMESTAMP),
        keys.sort_values(feast_store.TIMESTAMP), on=feast_store.TIMESTAMP, by="symbol",
        tolerance=pd.Timedelta(feast_store.TTL), direction="backward").sort_values("entity_row")
    rows = matched["file_row"].to_numpy()
    assert not np.isnan(rows).any()  # every entity row is a table row: all match
    values = pd.read_parquet(table, columns=names).to_numpy()
    reference = values[rows.astype(np.int64)]
    reference_seconds = time.perf_counter() - start
    assert joined["symbol"].tolist() == entity_df["symbol"].tolist()
    np.testing.assert_array_equal(joined[names].to_numpy(), reference)
    return {"seconds": seconds, "rows": len(joined), "features": len(names),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),  # pre-reference
            "reference_seconds": reference_seconds}


def _median_read(read, n: int) -> float:
    import numpy as np

    read()  # warm the connection and the registry cache
    times = []
    for _ in range(n):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def _online(table: Path, names: list[str], reads: int) -> dict:
    import pandas as pd

    from alphaline.features import store as feast_store
    from alphaline.features.definitions import feature_names

    root = Path(tempfile.mkdtemp(prefix="alphaline-bench-feast-"))
    store = feast_store.open_store(root / "repo", table, names)
    last = pd.Timestamp(pd.read_parquet(table, columns=["date"])["date"].max())
    symbols = sorted(pd.read_parquet(table, columns=["symbol"])["symbol"].unique())
    start = time.perf_counter()
    feast_store.materialize_day(store, last, CALENDAR)
    materialize = time.perf_counter() - start
    vectors = feast_store.online_vectors(store, symbols, names)
    day = pd.read_parquet(table, filters=[("date", "==", last)]).set_index("symbol")
    assert vectors["symbol"].tolist() == symbols
    assert (vectors[names].to_numpy(dtype="float32") == day.loc[symbols, names].to_numpy()).all()
    core = feature_names(["core"])
    return {"materialize_seconds": materialize, "symbols": len(symbols),
            "all_ms": _median_read(lambda: feast_store.online_vectors(store, symbols, names),
                                   reads),
            "core_ms": _median_read(lambda: feast_store.online_vectors(store, symbols, core),
                                    reads),
            "core_features": len(core)}


def _online_scalar(table: Path, names: list[str], reads: int) -> dict:
    """The reference read: every feature its own online value (the per-set scalar views
    made online, no packed views), through the same Feast API and SQLite store."""
    import numpy as np
    import pandas as pd
    from feast import FeatureStore, FeatureView

    from alphaline.features import store as feast_store

    root = Path(tempfile.mkdtemp(prefix="alphaline-bench-feast-"))
    store = FeatureStore(config=feast_store.repo_config(root / "repo"))
    objects = [o for o in feast_store.definitions(table, names)
               if not (isinstance(o, FeatureView) and "columns" in (o.tags or {}))]
    for o in objects:
        if isinstance(o, FeatureView):
            o.online = True
    store.apply([o for o in objects if o.name != feast_store.ONLINE_SOURCE])
    last = pd.Timestamp(pd.read_parquet(table, columns=["date"])["date"].max())
    close = feast_store.session_close(pd.DatetimeIndex([last]), CALENDAR).iloc[0]
    store.materialize(close.to_pydatetime() - dt.timedelta(hours=12),
                      close.to_pydatetime() + dt.timedelta(minutes=1))
    symbols = sorted(pd.read_parquet(table, columns=["symbol"])["symbol"].unique())
    rows = [{"symbol": s} for s in symbols]
    refs = feast_store.feature_refs(names)

    def read() -> pd.DataFrame:
        return store.get_online_features(features=refs, entity_rows=rows).to_df()

    got = read()
    day = pd.read_parquet(table, filters=[("date", "==", last)]).set_index("symbol")
    np.testing.assert_array_equal(got[names].to_numpy(dtype=np.float32),
                                  day.loc[symbols, names].to_numpy())
    return {"all_ms": _median_read(read, reads)}


def stage(name: str, args) -> dict:
    """One stage; its scratch repos (under a temp folder of their own) are removed after."""
    tempfile.tempdir = tempfile.mkdtemp(prefix="alphaline-bench-feast-")
    try:
        return _stage(name, args)
    finally:
        shutil.rmtree(tempfile.tempdir, ignore_errors=True)


def _stage(name: str, args) -> dict:
    table = _table(args)
    names = _names()
    if name == "table":
        return {"path": str(table)}
    if name == "historical":
        return _historical(table, names)
    if name == "historical_core":
        from alphaline.features.definitions import feature_names

        return _historical(table, feature_names(["core"]))
    if name == "online":
        return _online(table, names, args.online_reads)
    if name == "online_scalar":
        return _online_scalar(table, names, args.online_reads)
    raise ValueError(name)


def run_child(name: str, args) -> dict:
    """Run one stage in a child process; add that child's own peak RSS (MB)."""
    figures, peak = run_stage(__file__, [
        "--stage", name, "--symbols", str(args.symbols), "--days", str(args.days),
        "--online-reads", str(args.online_reads)])
    figures["process_peak_rss_mb"] = peak
    return figures


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--online-reads", type=int, default=50)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args)))
        return
    start = time.perf_counter()
    run_child("table", args)  # in a child: a child forked from a big parent inherits its peak
    print(f"feature table ready in {time.perf_counter() - start:.1f} s", flush=True)
    results = {}
    for name in ("historical", "historical_core", "online", "online_scalar"):
        if name in args.skip:
            continue
        results[name] = run_child(name, args)
        print(name, json.dumps(results[name]), flush=True)
    figures: dict = {"bench": "feast", "symbols": args.symbols, "days": args.days}
    if "historical" in results:
        h = results["historical"]
        figures |= {"historical_rows": h["rows"], "historical_features": h["features"],
                    "historical_seconds": round(h["seconds"], 2),
                    "historical_peak_rss_mb": h["peak_rss_mb"],
                    "historical_rss_before_mb": h["rss_before_mb"],
                    "reference_merge_asof_seconds": round(h["reference_seconds"], 2),
                    "historical_vs_reference": round(h["seconds"] / h["reference_seconds"], 2),
                    "historical_target_met": h["seconds"] <= 60 and h["peak_rss_mb"] <= 4096}
    if "historical_core" in results:
        c = results["historical_core"]
        figures |= {"historical_core_seconds": round(c["seconds"], 2),
                    "historical_core_peak_rss_mb": c["peak_rss_mb"]}
    if "online" in results:
        o = results["online"]
        figures |= {"materialize_day_seconds": round(o["materialize_seconds"], 2),
                    "online_all_ms": round(o["all_ms"], 1),
                    "online_core_ms": round(o["core_ms"], 1),
                    "online_target_met": o["all_ms"] <= 200}
    if "online_scalar" in results:
        r = results["online_scalar"]
        figures |= {"online_scalar_reference_ms": round(r["all_ms"], 1)}
        if "online" in results:
            figures["online_scalar_vs_packed"] = round(r["all_ms"] / results["online"]["all_ms"],
                                                       1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
