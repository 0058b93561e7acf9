"""The monthly retrain, run end to end at full size: the retrain flow itself (ingest, Great
Expectations, features, Feast, tuning, walk-forward, final fit, feature validation, the
CPCV gate, registration) on the embedded synthetic market.

    python benches/retrain.py [--symbols 500] [--days 2520] [--trials 50]
        [--set tuning.date_stride=4 ...]

The project is a scratch copy of params.yaml with the market's size, ``tuning.n_trials`` and
any ``--set`` overrides (the levers; the JSON line names them). The stage times come from
Prefect's own task runs; the tuning time from the Optuna studies' trial stamps (the first
trial's start to the last trial's end, per member); peak RSS is this process's and its
children's (Dask workers, when tuning runs on them). The walk-forward figures and the gate's
decision are printed beside the time: a faster retrain that finds less is no gain.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from model_quality import assignments

REPO = Path(__file__).resolve().parents[1]
TARGET_MIN = 45


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def task_minutes(flow_run_id) -> dict[str, float]:
    """Each task of the flow run: its run time in minutes (summed over runs of one name)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    out: dict[str, float] = {}
    for run in runs:
        name = run.name.rsplit("-", 1)[0]  # "tune_and_train-a1b" → "tune_and_train"
        out[name] = round(out.get(name, 0.0) + run.total_run_time.total_seconds() / 60, 2)
    return out


def tuning_minutes(storage: str) -> dict[str, float]:
    """Per study: first trial start to last trial end, in minutes, and the trial states."""
    import optuna

    out = {}
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        trials = optuna.load_study(study_name=summary.study_name,
                                   storage=storage).get_trials(deepcopy=False)
        stamped = [t for t in trials if t.datetime_start and t.datetime_complete]
        if len(stamped) < 2:
            continue
        span = (max(t.datetime_complete for t in stamped)
                - min(t.datetime_start for t in stamped)).total_seconds() / 60
        objective = summary.user_attrs.get("objective", summary.study_name)
        out[objective] = {"minutes": round(span, 2), "trials": len(trials),
                          "pruned": sum(t.state.name == "PRUNED" for t in trials)}
    return out


class Timeline(logging.Handler):
    """Each INFO line of the project's loggers with the minutes since the start, printed as it
    comes: where inside a task the time went (tuning, walk-forward, CPCV splits)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.start = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        minutes = (time.perf_counter() - self.start) / 60
        print(f"[{minutes:7.2f} min] {record.getMessage()[:160]}", flush=True)


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="levers",
                        help="params overrides (the levers), recorded in the JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the scratch project")
    args = parser.parse_args()

    from alphaline.calendar import sessions
    from alphaline.config import load_params
    from alphaline.flows.retrain import retrain
    from alphaline.project import Project

    days = sessions("XNYS", "2010-01-04", "2026-11-20")[: args.days]
    levers = assignments(args.levers)
    params = load_params(REPO / "params.yaml").with_overrides({
        "data.start": str(days[0].date()), "data.end": str(days[-1].date()),
        "data.synthetic.n_symbols": args.symbols, "tuning.n_trials": args.trials, **levers})
    scratch = Path(tempfile.mkdtemp(prefix="alphaline-bench-retrain-"))
    root = scratch / "project"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()
    print(f"retrain of {args.symbols} symbols × {len(days)} sessions "
          f"({days[0].date()} .. {days[-1].date()}), {args.trials} trials per member, "
          f"sets {params.features.sets}, levers {levers or 'none'}; project {root}", flush=True)
    timeline = Timeline()
    logging.getLogger("alphaline").addHandler(timeline)
    logging.getLogger("alphaline").setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        state = retrain(root=str(root), as_of=days[-1].date(), reason="bench",
                        return_state=True)
        wall = time.perf_counter() - start
        out = state.result()
        stages = task_minutes(state.state_details.flow_run_id)
        tuning = tuning_minutes(project.optuna_url)
        oos = out["oos"]
        figures = {
            "bench": "retrain", "symbols": args.symbols, "days": len(days),
            "trials_per_member": args.trials, "features": params.features.sets,
            "levers": levers, "wall_minutes": round(wall / 60, 2),
            "peak_rss_mb": peak_rss_mb(), "stages_minutes": stages,
            "tuning": tuning,
            "rank_ic": round(float(oos["rank_ic"]), 4),
            "deflated_sharpe": round(float(oos["deflated_sharpe"]), 4),
            "traded_sharpe_net_annualized": round(float(
                oos.get("traded_sharpe_net_annualized", float("nan"))), 3),
            "promoted": bool(out["promoted"]),
            "target_min": TARGET_MIN, "target_met": wall / 60 <= TARGET_MIN,
        }
        for reason in out["reasons"]:
            print(f"  {reason}", flush=True)
        print(f"stages (minutes): {stages}", flush=True)
        print(f"tuning: {tuning}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
