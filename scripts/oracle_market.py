"""What a synthetic market offers before any model: the planted signal's rank IC and the
after-cost Sharpe of the book that trades it (the oracle), for a grid of settings.

The oracle book is the planted signal run as scores through the one book, the rebalance
rules and every cost the paper broker charges (:func:`book_backtest`), from the first
walk-forward test session (``cv.min_train_days`` in) to the end. Fast: no model is fitted,
so a grid of strengths, universes and history lengths takes seconds per market.

    python scripts/oracle_market.py --strength 0.03 0.035 --symbols 60 100 \
        --start 2021-01-04 2020-01-02

``--trials sqlite:///…/optuna.db`` also deflates the oracle's after-cost Sharpe by the
trials recorded there (their count and the variance of their Sharpes, as the gate does):
the best DSR any model could reach after that search.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from alphaline.calendar import sessions_per_year
from alphaline.config import Params, load_params
from alphaline.features.compute import compute_labels
from alphaline.models.metrics import annualize, deflated_sharpe, expected_max_sharpe, sharpe
from alphaline.pipelines.synthetic import generate_market, oracle_book_returns, oracle_ic
from alphaline.trading.backtest.vectorized import market_grids
from alphaline.trading.costs import market_panel

REPO = Path(__file__).resolve().parents[1]


def recorded_trials(storage: str) -> list[float]:
    """Every trial's per-session Sharpe in an Optuna storage (pruned trials too: the gate's
    trial ledger counts them)."""
    import optuna

    out = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out += [float(t.user_attrs["sharpe"]) for t in study.get_trials(deepcopy=False)
                if "sharpe" in t.user_attrs]
    return out


def oracle_figures(p: Params, trials: list[float] | None = None) -> dict:
    """Oracle rank IC (every labelled session) and the oracle book's annualized after-cost
    Sharpe over the sessions a walk-forward would test, and over the gate's held-out
    period alone."""
    syn = p.data.synthetic
    bars, signal = generate_market(syn.n_symbols, p.data.start, p.data.end, syn.seed,
                                   syn.alpha_strength, syn.mode, p.data.calendar)
    labels = compute_labels(bars, p.features.label_horizon)
    sessions = pd.DatetimeIndex(sorted(bars["date"].unique()))
    tested = sessions[min(p.cv.min_train_days, len(sessions) - 1):]
    r = oracle_book_returns(signal, market_grids(market_panel(bars)), p, tested)
    per_year = sessions_per_year(p.data.calendar)
    held = r.iloc[-int(len(sessions) * p.gate.holdout_fraction):]
    deflated = {}
    if trials:
        deflated = {"trials": len(trials),
                    "trial_sharpe_sd": round(float(np.std(trials, ddof=1)), 4),
                    "sr0_per_session": round(expected_max_sharpe(
                        float(np.var(trials, ddof=1)), len(trials)), 4),
                    "oracle_sharpe_per_session": round(sharpe(r), 4),
                    "oracle_dsr": round(deflated_sharpe(r, trials, len(trials)), 4),
                    "oracle_dsr_holdout": round(deflated_sharpe(held, trials, len(trials)), 4)}
    return {"strength": syn.alpha_strength, "n_symbols": syn.n_symbols,
            "start": str(p.data.start), "end": str(p.data.end), "sessions": len(sessions),
            "oracle_ic": round(oracle_ic(signal, labels), 4),
            "oracle_sharpe_net": round(annualize(sharpe(r), per_year), 3),
            "oracle_sharpe_net_holdout": round(annualize(sharpe(held), per_year), 3),
            **deflated}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strength", type=float, nargs="+", default=[0.035])
    parser.add_argument("--symbols", type=int, nargs="+", default=[60])
    parser.add_argument("--start", nargs="+", default=[None])
    parser.add_argument("--end", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--trials", default=None, help="an Optuna storage URL")
    args = parser.parse_args()
    trials = recorded_trials(args.trials) if args.trials else None
    base = load_params(REPO / "params.yaml")
    for k, n, start in itertools.product(args.strength, args.symbols, args.start):
        over: dict = {"data.synthetic.alpha_strength": k, "data.synthetic.n_symbols": n,
                      "data.synthetic.mode": "alpha"}
        if start:
            over["data.start"] = start
        if args.end:
            over["data.end"] = args.end
        if args.seed is not None:
            over["data.synthetic.seed"] = args.seed
        print(json.dumps(oracle_figures(base.with_overrides(over), trials)), flush=True)


if __name__ == "__main__":
    main()
