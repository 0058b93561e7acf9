import numpy as np
import pandas as pd
import pytest

from alphaline.config import load_params
from alphaline.models.gate import decide
from tests.conftest import REPO

BARS = load_params(REPO / "params.yaml").gate


def metrics(rank_ic=0.05, dsr=0.99, n_trials=10):
    return {"rank_ic": rank_ic, "deflated_sharpe": dsr, "n_trials": n_trials}


def test_promotes_when_every_bar_is_cleared():
    d = decide(metrics(), None, BARS)
    assert d.promote and "no current champion" in d.reasons
    assert d.as_tags()["gate.decision"] == "promote"


def test_refuses_low_deflated_sharpe():
    d = decide(metrics(dsr=0.6), None, BARS)
    assert not d.promote
    assert any("DSR 0.600 (after costs) < 0.95 over 10 trials" in r for r in d.reasons)


def test_refuses_non_positive_rank_ic():
    assert not decide(metrics(rank_ic=-0.01), None, BARS).promote


def test_rank_ic_only_champion_needs_more_than_a_tie():
    assert not decide(metrics(rank_ic=0.05), metrics(rank_ic=0.05), BARS).promote
    d = decide(metrics(rank_ic=0.06), metrics(rank_ic=0.05), BARS)
    assert d.promote and any("champion's 0.0500" in r for r in d.reasons)


def champ(sharpe_net=1.0, p_value=0.01, rank_ic=0.04):
    return {"rank_ic": rank_ic, "sharpe_net": sharpe_net, "p_value": p_value,
            "edge_per_session": 1e-4}


def test_the_champion_stays_unless_the_after_cost_edge_is_significant():
    better = {**metrics(), "sharpe_net": 1.5, "paths_won": 4, "n_paths": 5}
    d = decide(better, champ(p_value=0.01), BARS)
    assert d.promote and any("better on 4 of 5 paths" in r and "significant" in r
                             for r in d.reasons)
    d = decide(better, champ(p_value=0.30), BARS)
    assert not d.promote and any("not significant, the champion stays" in r
                                 for r in d.reasons)
    tie = {**metrics(), "sharpe_net": 1.0}
    assert not decide(tie, champ(sharpe_net=1.2, p_value=0.6), BARS).promote


def test_a_baseline_that_beats_the_model_refuses_it():
    m = {**metrics(), "sharpe_net": 0.8}
    d = decide(m, None, BARS, baselines={"equal_weight": 0.3, "reversal_1m": 1.1})
    assert not d.promote
    assert any("best baseline reversal_1m 1.10: lift -0.30" in r for r in d.reasons)
    assert decide({**m, "sharpe_net": 1.4}, None, BARS,
                  baselines={"equal_weight": 0.3, "reversal_1m": 1.1}).promote
    off = BARS.model_copy(update={"min_lift_over_baseline": None})
    d = decide(m, None, off, baselines={"reversal_1m": 1.1})
    assert d.promote and any("baseline limit off" in r for r in d.reasons)


def test_reasons_name_the_family_trial_count_and_variance():
    m = {**metrics(dsr=0.97, n_trials=64), "trial_sharpe_variance": 0.0012,
         "dsr_source": "CPCV after costs"}
    d = decide(m, None, BARS)
    assert any("DSR 0.970 (CPCV after costs) ≥ 0.95 over 64 trials of the recipe family, "
               "trial Sharpe variance 1.20e-03" in r for r in d.reasons)


def test_a_suspected_leak_refuses_even_a_strong_model():
    leak = {"feature": "leaked", "rule": "|ρ| with the label 1.000 > 0.9"}
    d = decide(metrics(rank_ic=0.3, dsr=1.0), None, BARS, leaks=[leak])
    assert not d.promote
    assert any("suspected leak in leaked" in r for r in d.reasons)


# --- the meta-sized book on the gate's CPCV paths ------------------------------------------

MEMBER = {"objective": "regression", "seed": 1, "n_estimators": 30, "num_leaves": 7,
          "min_child_samples": 40, "learning_rate": 0.08, "feature_fraction": 1.0,
          "bagging_fraction": 1.0, "lambda_l2": 1.0, "rank_levels": 5, "rank_truncation": 30}
META_GATE = {"portfolio.method": "meta_sized_long_short", "cv.n_splits": 2,
             "cv.min_train_days": 60, "cv.cpcv_groups": 4, "cv.cpcv_test_groups": 2,
             "model.n_jobs": 1, "model.meta_label.min_child_samples": 50,
             "features.label_horizon": 1}


@pytest.fixture(scope="module")
def gate_market():
    """30 names × ~1.2 years of the planted market; the features: the planted signal with
    noise (known at each close) and two pure-noise columns."""
    from alphaline.features.compute import compute_labels
    from alphaline.pipelines.results import TrainingSet
    from alphaline.pipelines.synthetic import generate_market
    from alphaline.trading.backtest.vectorized import market_grids
    from alphaline.trading.costs import market_panel

    bars, signal = generate_market(30, "2022-01-03", "2023-03-31", seed=3, alpha_strength=0.15)
    rows = signal.merge(compute_labels(bars, 1), on=["symbol", "date"]).dropna()
    rows = rows.sort_values(["date", "symbol"], ignore_index=True)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rows["signal"] + rng.normal(0, 1.0, len(rows)),
                      "noise_a": rng.normal(size=len(rows)),
                      "noise_b": rng.normal(size=len(rows))})
    ts = TrainingSet(X=X, y=rows["label"], dates=rows["date"], symbols=rows["symbol"],
                     fingerprint="gate-meta")
    recipe = {"members": [MEMBER], "stack_folds": 2, "horizon": 1, "embargo": 5,
              "redundancy_corr": 0.95, "features": list(X.columns),
              "sample_weights": {"uniqueness": False, "half_life_days": None},
              "meta_label": {"threshold": 0.5, "min_child_samples": 50}}
    return ts, recipe, market_grids(market_panel(bars))


def test_meta_sized_paths_size_each_split_on_its_own_training_rows(gate_market):
    from alphaline.models.meta_label import MetaLabeler
    from alphaline.pipelines.evaluate import cpcv_path_scores, gate_splits

    ts, recipe, market = gate_market
    p = load_params(REPO / "params.yaml").with_overrides(META_GATE)
    _, splits, paths, groups = gate_splits(ts, p)
    fitted_dates = []
    original_fit = MetaLabeler.fit

    def spy(self, X_, y_, *, dates, sample_weight=None):
        fitted_dates.append(np.sort(pd.to_datetime(np.asarray(dates))))
        return original_fit(self, X_, y_, dates=dates, sample_weight=sample_weight)

    MetaLabeler.fit = spy
    try:
        meta = cpcv_path_scores(recipe, ts, splits, paths, groups, p, market, "meta")
    finally:
        MetaLabeler.fit = original_fit
    assert len(fitted_dates) == len(splits) == len(meta.meta_rows)
    for k, split in enumerate(splits):
        rows = meta.meta_rows[k]
        assert len(rows) > 0
        assert not set(rows) & set(split.test)          # no test row trains its sizer
        assert set(rows) <= set(split.train)            # purged and embargoed as the primary
        # the fitted meta-labeler saw exactly those rows' sessions, none a test session
        assert (fitted_dates[k] == np.sort(ts.dates.iloc[rows].to_numpy())).all()
        assert not np.isin(fitted_dates[k], ts.dates.iloc[split.test].unique()).any()

    quantile = cpcv_path_scores(recipe, ts, splits, paths, groups,
                                p.with_overrides({"portfolio.method": "quantile_long_short"}),
                                market, "quantile")
    assert quantile.meta_rows is None
    assert meta.returns.shape == quantile.returns.shape
    # the same primary scores, another book: the meta-sized paths trade differently
    assert np.abs(meta.returns.to_numpy() - quantile.returns.to_numpy()).max() > 1e-4
    assert np.isfinite(meta.table["sharpe_net"]).all()


def test_engine_meta_sized_weights_equal_the_daily_books():
    """The vectorized engine's panel book on meta sizes is the book the daily flow builds
    each day from the same scores, sizes and probabilities (Kelly caps included)."""
    from alphaline.trading.backtest.vectorized import book_weights
    from alphaline.trading.book import build_book

    p = load_params(REPO / "params.yaml").with_overrides({
        "portfolio.method": "meta_sized_long_short", "portfolio.kelly_fraction": 0.5})
    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2023-01-02", periods=6)
    symbols = [f"S{i:02d}" for i in range(25)]
    panel = pd.MultiIndex.from_product([dates, symbols], names=["date", "symbol"]
                                       ).to_frame(index=False)
    panel["score"] = rng.normal(size=len(panel))
    side = np.sign(panel["score"]) * (np.abs(panel["score"]) > 0.8)
    panel["probability"] = rng.uniform(0.3, 0.9, len(panel))
    panel["size"] = np.where(panel["probability"] >= 0.5, side * panel["probability"], 0.0)
    engine = book_weights(panel, p)
    for day, rows in panel.groupby("date"):
        daily = build_book(rows[["symbol", "score", "size", "probability"]].reset_index(
            drop=True), p)
        expected = pd.Series(daily.to_numpy(), index=rows["symbol"].to_numpy())
        np.testing.assert_allclose(engine.loc[day, expected.index].to_numpy(),
                                   expected.to_numpy(), atol=1e-12)
    assert (engine.abs().sum(axis=1) > 0).all()
    quantile = book_weights(panel, p.with_overrides({
        "portfolio.method": "quantile_long_short", "portfolio.kelly_fraction": None}))
    assert np.abs(engine.to_numpy() - quantile.to_numpy()).max() > 1e-3
