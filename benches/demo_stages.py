"""Time every stage of the demo loop on the default params.yaml, in a scratch project.

Reference in the same run: the Feast point-in-time join is set beside a plain pandas
merge of the same rows (the floor for an in-memory join), and quoted as a ratio.

    python benches/demo_stages.py [--trials N]
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

import pandas as pd
import yaml

from alphaline.calendar import sessions
from alphaline.config import load_params
from alphaline.project import Project

REPO = Path(__file__).resolve().parents[1]



def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=None, help="override tuning.n_trials")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="alphaline-bench-"))
    params = load_params(REPO / "params.yaml")
    if args.trials:
        params = params.with_overrides({"tuning.n_trials": args.trials})
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()

    from alphaline.pipelines import evaluate, featurize, ingest, train
    from alphaline.pipelines.catalog import Catalog

    t: dict[str, float] = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        t[name] = round(time.perf_counter() - start, 2)
        print(f"{name:<24} {t[name]:>8.2f} s", flush=True)
        return out

    bars = timed("ingest", lambda: ingest.ingest_history(project))
    timed("validate (GX)", lambda: ingest.validate_history(project))
    tables = timed("features", lambda: featurize.build(ingest.load_validated(project),
                                                      params.features))
    timed("feast apply", lambda: featurize.write(project, tables))
    ts = timed("feast training set", lambda: Catalog(project).training_set())
    labels = pd.read_parquet(project.label_table)
    labels = labels[labels["label"].notna() & (labels["date"] <= pd.Timestamp(params.data.end))]
    timed("pandas join (reference)", lambda: labels.merge(tables.features,
                                                          on=["symbol", "date"]))
    trained = timed("tune + train + log", lambda: train.run_train(project))
    timed("evaluate + gate", lambda: evaluate.run_evaluate(project))

    from prefect.testing.utilities import prefect_test_harness

    from alphaline.flows.daily_trading import daily_trading

    day = sessions(params.data.calendar, params.data.end + dt.timedelta(days=1),
                   params.data.end + dt.timedelta(days=7))[0].date()
    with prefect_test_harness(server_startup_timeout=180):
        timed("daily_trading flow", lambda: daily_trading(day=day, root=str(root)))
        timed("daily_trading rerun", lambda: daily_trading(day=day, root=str(root)))

    figures = {
        "bench": "demo_stages",
        "symbols": params.data.synthetic.n_symbols,
        "days": int(bars["date"].nunique()),
        "training_rows": len(ts.X),
        "trials": params.tuning.n_trials,
        "seconds": t,
        "feast_join_vs_pandas_ratio": round(t["feast training set"]
                                            / max(t["pandas join (reference)"], 1e-3), 1),
        "oos_rank_ic": round(trained["oos"]["rank_ic"], 4),
        "oos_deflated_sharpe": round(trained["oos"]["deflated_sharpe"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
