"""Model quality on the synthetic market: does the pipeline find planted signal, refuse
noise, and catch a leak?

1. Planted alpha: the ensemble's walk-forward rank IC against the oracle IC of the planted
   signal on the same labels (target ≥ 80 %), and the gate's decision.
2. Noise: ``--noise-markets`` markets with no signal, one seed each; the gate must promote
   at most 5 % of them.
3. Leak: the label itself added as a feature; the feature-validation report must flag it
   and the gate refuse the model.

Recovery is measured twice: before costs (the walk-forward rank IC against the planted
signal's) and after them (the annualized after-cost Sharpe of the traded book on the
model's walk-forward scores against the book that trades the planted signal itself, on the
same sessions, through the same book, rules and cost model).

    python benches/model_quality.py [--noise-markets 20] [--noise-symbols 30]
        [--alpha-set data.synthetic.alpha_strength=0.10 ...]
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


def oracle(project: Project, sessions: pd.DatetimeIndex) -> tuple[float, float]:
    """The planted signal's rank IC on the project's labels, and the annualized after-cost
    Sharpe of the book that trades it on ``sessions``."""
    from alphaline.calendar import sessions_per_year
    from alphaline.models.metrics import annualize, sharpe
    from alphaline.pipelines.catalog import Catalog
    from alphaline.pipelines.sources import SyntheticSource
    from alphaline.pipelines.synthetic import oracle_book_returns, oracle_ic
    from alphaline.pipelines.train import catalog_costs
    from alphaline.trading.backtest.vectorized import market_grids

    p = project.params
    syn = p.data.synthetic
    _, signal = SyntheticSource(syn.n_symbols, syn.seed, syn.alpha_strength, syn.mode,
                                p.data.calendar, p.data.start).market(p.data.end)
    labels = pd.read_parquet(project.label_table)
    ic = oracle_ic(signal, labels[labels["date"] <= pd.Timestamp(p.data.end)])
    market = market_grids(catalog_costs(p, Catalog(project)).market)
    r = oracle_book_returns(signal, market, p, sessions)
    return ic, annualize(sharpe(r), sessions_per_year(p.data.calendar))


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
           "sharpe_net": trained.oos.get("traded_sharpe_net_annualized", float("nan")),
           "cpcv_rank_ic": evaluated["challenger"]["rank_ic"],
           "cpcv_sharpe_net": evaluated["challenger"]["sharpe_net"],
           "cpcv_dsr": evaluated["challenger"]["deflated_sharpe"],
           "promoted": decision.promote, "reasons": decision.reasons,
           "leaks": [x["feature"] for x in trained.feature_validation.leaks],
           "seconds": round(time.perf_counter() - start, 1)}
    if project.params.data.synthetic.mode == "alpha" and not leak:
        scored = pd.DatetimeIndex(sorted(Catalog(project).oos()["date"].unique()))
        out["oracle_ic"], out["oracle_sharpe_net"] = oracle(project, scored)
    return out


def assignments(pairs: list[str]) -> dict:
    """``key=value`` pairs (values read as YAML) as params overrides."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--alpha-set needs key=value, got {pair!r}")
        out[key] = yaml.safe_load(value)
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
    parser.add_argument("--skip-leak", action="store_true")
    parser.add_argument("--alpha-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="params overrides of the planted-alpha and leak markets")
    args = parser.parse_args()
    market = assignments(args.alpha_set)
    scratch = Path(tempfile.mkdtemp(prefix="alphaline-quality-"))
    figures: dict = {"bench": "model_quality"}
    try:
        if not args.skip_alpha:
            alpha = run_market(scratch / "alpha", market)
            alpha["ic_ratio"] = alpha["rank_ic"] / alpha["oracle_ic"]
            alpha["sharpe_ratio"] = alpha["sharpe_net"] / alpha["oracle_sharpe_net"]
            print(f"planted alpha: rank IC {alpha['rank_ic']:.4f} vs oracle "
                  f"{alpha['oracle_ic']:.4f} ({alpha['ic_ratio']:.0%}); after-cost Sharpe "
                  f"{alpha['sharpe_net']:.2f} vs oracle {alpha['oracle_sharpe_net']:.2f} "
                  f"({alpha['sharpe_ratio']:.0%}); CPCV after-cost Sharpe "
                  f"{alpha['cpcv_sharpe_net']:.2f}, DSR {alpha['cpcv_dsr']:.3f}; promoted "
                  f"{alpha['promoted']} ({alpha['seconds']} s)", flush=True)
            for reason in alpha["reasons"]:
                print(f"  {reason}", flush=True)
            leak = None if args.skip_leak else run_market(scratch / "leak", market, leak=True)
            if leak:
                print(f"leaked label: flagged {leak['leaks']}; promoted {leak['promoted']}",
                      flush=True)
            figures.update({
                "alpha_market": {k: v for k, v in market.items()},
                "alpha_rank_ic": round(alpha["rank_ic"], 4),
                "oracle_ic": round(alpha["oracle_ic"], 4),
                "ic_ratio": round(alpha["ic_ratio"], 3),
                "alpha_cpcv_rank_ic": round(alpha["cpcv_rank_ic"], 4),
                "alpha_sharpe_net": round(alpha["sharpe_net"], 3),
                "oracle_sharpe_net": round(alpha["oracle_sharpe_net"], 3),
                "sharpe_ratio": round(alpha["sharpe_ratio"], 3),
                "alpha_cpcv_sharpe_net": round(alpha["cpcv_sharpe_net"], 3),
                "alpha_cpcv_dsr": round(alpha["cpcv_dsr"], 4),
                "alpha_dsr": round(alpha["dsr"], 4), "alpha_trials": alpha["n_trials"],
                "alpha_promoted": alpha["promoted"], "alpha_seconds": alpha["seconds"],
            })
            if leak:
                figures.update({"leak_flagged": "leaked" in leak["leaks"],
                                "leak_promoted": leak["promoted"]})
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
    print(json.dumps(figures, default=str))  # params overrides may hold dates


if __name__ == "__main__":
    main()
