"""Model quality on the synthetic market: does the pipeline find planted signal, refuse
noise, and catch a leak?

1. Planted alpha: the ensemble's walk-forward rank IC against the oracle IC of the planted
   signal on the same labels (target ≥ 80 %), and the gate's decision.
2. Noise: ``--noise-markets`` markets with no signal, one seed each; the gate must promote
   at most 5 % of them.
3. Leak: the label itself added as a feature; the feature-validation report must flag it
   and the gate refuse the model.

    python benches/model_quality.py [--noise-markets 20] [--noise-symbols 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from alphaline.config import load_params
from alphaline.project import Project

REPO = Path(__file__).resolve().parents[1]



def project_at(root: Path, overrides: dict) -> Project:
    params = load_params(REPO / "params.yaml").with_overrides(overrides)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()
    return project


def prepare(project: Project) -> None:
    from alphaline.pipelines import featurize, ingest

    ingest.ingest_history(project)
    ingest.validate_history(project)
    featurize.write(project, featurize.build(ingest.load_validated(project),
                                             project.params.features))


def oracle(project: Project) -> float:
    from alphaline.pipelines.sources import SyntheticSource
    from alphaline.pipelines.synthetic import oracle_ic

    p = project.params
    syn = p.data.synthetic
    _, signal = SyntheticSource(syn.n_symbols, syn.seed, syn.alpha_strength, syn.mode,
                                p.data.calendar, p.data.start).market(p.data.end)
    labels = pd.read_parquet(project.label_table)
    return oracle_ic(signal, labels[labels["date"] <= pd.Timestamp(p.data.end)])


def run_market(root: Path, overrides: dict, leak: bool = False) -> dict:
    from dataclasses import replace

    from alphaline.pipelines import evaluate, train
    from alphaline.pipelines.catalog import Catalog

    project = project_at(root, overrides)
    start = time.perf_counter()
    prepare(project)
    ts = Catalog(project).training_set()
    if leak:
        ts = replace(ts, X=ts.X.assign(leaked=ts.y.to_numpy()))  # the label, known "today"
    trained = train.run_train(project, ts=ts)
    decision = evaluate.run_evaluate(project, ts)
    evaluated = json.loads((project.metrics_dir / "evaluate.json").read_text())
    out = {"rank_ic": trained.oos["rank_ic"], "dsr": trained.oos["deflated_sharpe"],
           "n_trials": int(trained.oos["n_trials"]),
           "cpcv_rank_ic": evaluated["challenger"]["rank_ic"],
           "promoted": decision.promote, "reasons": decision.reasons,
           "leaks": [x["feature"] for x in trained.feature_validation.leaks],
           "seconds": round(time.perf_counter() - start, 1)}
    if overrides.get("data.synthetic.mode", "alpha") == "alpha" and not leak:
        out["oracle_ic"] = oracle(project)
    return out


def main() -> None:
    from alphaline.runtime import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--noise-markets", type=int, default=20)
    parser.add_argument("--noise-symbols", type=int, default=30)
    parser.add_argument("--noise-start", default="2022-01-03")
    parser.add_argument("--noise-trials", type=int, default=5)
    parser.add_argument("--skip-alpha", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="alphaline-quality-"))
    figures: dict = {"bench": "model_quality"}
    try:
        if not args.skip_alpha:
            alpha = run_market(scratch / "alpha", {})
            alpha["ic_ratio"] = alpha["rank_ic"] / alpha["oracle_ic"]
            print(f"planted alpha: rank IC {alpha['rank_ic']:.4f} vs oracle "
                  f"{alpha['oracle_ic']:.4f} ({alpha['ic_ratio']:.0%}); promoted "
                  f"{alpha['promoted']} ({alpha['seconds']} s)", flush=True)
            leak = run_market(scratch / "leak", {}, leak=True)
            print(f"leaked label: flagged {leak['leaks']}; promoted {leak['promoted']}",
                  flush=True)
            figures.update({
                "alpha_rank_ic": round(alpha["rank_ic"], 4),
                "oracle_ic": round(alpha["oracle_ic"], 4),
                "ic_ratio": round(alpha["ic_ratio"], 3),
                "alpha_cpcv_rank_ic": round(alpha["cpcv_rank_ic"], 4),
                "alpha_dsr": round(alpha["dsr"], 4), "alpha_trials": alpha["n_trials"],
                "alpha_promoted": alpha["promoted"], "alpha_seconds": alpha["seconds"],
                "leak_flagged": "leaked" in leak["leaks"], "leak_promoted": leak["promoted"],
            })
        promoted, dsrs = 0, []
        for i in range(args.noise_markets):
            seed = 1000 + i
            noise = run_market(scratch / f"noise-{seed}", {
                "data.synthetic.mode": "noise", "data.synthetic.seed": seed,
                "data.synthetic.n_symbols": args.noise_symbols,
                "data.start": args.noise_start, "tuning.n_trials": args.noise_trials})
            promoted += noise["promoted"]
            dsrs.append(noise["dsr"])
            print(f"noise seed {seed}: rank IC {noise['rank_ic']:+.4f}, DSR {noise['dsr']:.3f}, "
                  f"promoted {noise['promoted']} ({noise['seconds']} s)", flush=True)
            shutil.rmtree(scratch / f"noise-{seed}", ignore_errors=True)
        if args.noise_markets:
            figures.update({"noise_markets": args.noise_markets, "noise_promoted": promoted,
                            "false_promotion_rate": round(promoted / args.noise_markets, 3),
                            "noise_max_dsr": round(max(dsrs), 4)})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
