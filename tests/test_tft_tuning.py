"""The TFT's own Optuna study: trials counted by the family ledger, pruned on the running rank
IC, a diverging trial recorded as failed without stopping the search."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
import pandas as pd
import pytest

from alphaline.config import ConfigError, TFTSearchSpace, load_params
from alphaline.features.compute import compute_labels
from alphaline.models.cv import purged_walk_forward
from alphaline.models.tft import TFTConfig, returns_panel
from alphaline.models.tft_tuning import tune_tft
from alphaline.models.tuning import family_trials
from alphaline.pipelines.synthetic import generate_market
from tests.conftest import REPO

FAMILY = "tft|objectives=tft|features=signal|h=2"
BASE = TFTConfig(horizon=2, encoder_days=10, hidden_size=4, attention_heads=1, epochs=1,
                 batch_size=256, learning_rate=0.01, quantiles=(0.1, 0.5, 0.9), device="cpu",
                 seed=0, dropout=0.1, gradient_clip=0.1)
# small enough for seconds a trial; every hidden size is at least every head count
SPACE = TFTSearchSpace.model_validate({
    "hidden_size": [4, 8], "attention_heads": [1, 2],
    "dropout": {"low": 0.0, "high": 0.2, "log": False},
    "learning_rate": {"low": 0.003, "high": 0.03, "log": True},
    "encoder_days": {"low": 8, "high": 12, "log": False},
    "gradient_clip": {"low": 0.05, "high": 0.5, "log": True}})


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """8 symbols × 120 sessions: returns, the planted signal and the label."""
    bars, signal = generate_market(8, "2022-01-03", "2022-06-23", seed=5, alpha_strength=0.3)
    frame = returns_panel(bars).merge(signal, on=["symbol", "date"])
    frame = frame.merge(compute_labels(bars, 2), on=["symbol", "date"], how="left")
    return frame.sort_values(["date", "symbol"], ignore_index=True)


def tune(panel: pd.DataFrame, storage: str, n_trials: int, folds: int = 2, startup: int = 3):
    splits = purged_walk_forward(panel["date"], n_splits=folds, horizon=2, embargo=1,
                                 min_train_days=80)
    return tune_tft(panel[["symbol", "ret", "signal"]], panel["label"], panel["date"],
                    panel["symbol"], splits, base=BASE, space=SPACE, n_trials=n_trials,
                    seed=3, storage=storage, study_name="tft-test", family=FAMILY,
                    pruner_startup_trials=startup, quantile=0.25, horizon=2)


def enqueue_diverging(study: optuna.Study) -> None:
    """An operator's enqueued point with a learning rate far outside the range: it diverges."""
    study.enqueue_trial({"hidden_size": 4, "attention_heads": 1, "dropout": 0.1,
                         "learning_rate": 1e30, "encoder_days": 10, "gradient_clip": 0.1})


def test_trials_are_recorded_counted_and_rerun_into_the_same_study(panel, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = tune(panel, storage, n_trials=3)
    assert result.n_trials == 3
    assert set(result.best_params) == {"hidden_size", "attention_heads", "dropout",
                                       "learning_rate", "encoder_days", "gradient_clip"}
    tuned = replace(BASE, **result.best_params)
    assert tuned.epochs == BASE.epochs and tuned.encoder_days in range(8, 13)
    assert np.isfinite(result.best_value) and len(result.trial_sharpes) == 3
    study = optuna.load_study(study_name="tft-test", storage=storage)
    assert study.user_attrs == {"objective": "tft", "family": FAMILY}
    assert result.best_value == max(t.value for t in study.trials)
    for trial in study.trials:  # one report per walk-forward fold: the running mean rank IC
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [0, 1]
        assert trial.intermediate_values[1] == pytest.approx(trial.value)
        assert trial.user_attrs["folds"] == 2
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3
    ledger = family_trials(storage, FAMILY)
    assert (ledger.n_trials, ledger.studies, len(ledger.trial_sharpes)) == (3, 1, 3)

    again = tune(panel, storage, n_trials=1)
    assert again.n_trials == 4
    assert family_trials(storage, FAMILY).n_trials == 4
    assert family_trials(storage, "lgbm|objectives=regression|features=signal|h=2"
                         ).n_trials == 0


def test_a_losing_trial_is_pruned_and_a_diverging_one_fails_without_stopping(
        panel, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="tft-test", storage=storage, direction="maximize")
    # an earlier trial that held a rank IC of 0.9 (above the planted signal's own) on every fold
    earlier = {"hidden_size": 8, "attention_heads": 2, "dropout": 0.1, "learning_rate": 0.01,
               "encoder_days": 10, "gradient_clip": 0.1}
    study.add_trial(optuna.trial.create_trial(
        params=earlier, value=0.9, intermediate_values={0: 0.9, 1: 0.9, 2: 0.9},
        user_attrs={"sharpe": 0.3}, distributions={
            "hidden_size": optuna.distributions.CategoricalDistribution([4, 8]),
            "attention_heads": optuna.distributions.CategoricalDistribution([1, 2]),
            "dropout": optuna.distributions.FloatDistribution(0.0, 0.2),
            "learning_rate": optuna.distributions.FloatDistribution(0.003, 0.03, log=True),
            "encoder_days": optuna.distributions.IntDistribution(8, 12),
            "gradient_clip": optuna.distributions.FloatDistribution(0.05, 0.5, log=True)}))
    enqueue_diverging(study)
    result = tune(panel, storage, n_trials=2, folds=3, startup=1)
    assert result.n_trials == 3 and result.best_params == earlier
    _, failed, pruned = optuna.load_study(study_name="tft-test", storage=storage).trials
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["failure"].startswith("diverged in fold 1")
    assert "sharpe" not in failed.user_attrs
    # below the earlier trial's median at the second fold: stopped before the third
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [0, 1] and pruned.user_attrs["folds"] == 2
    assert np.isfinite(pruned.user_attrs["sharpe"])
    ledger = family_trials(storage, FAMILY)  # the failed and the pruned trial count too
    assert ledger.n_trials == 3 and len(ledger.trial_sharpes) == 2


def test_a_study_without_a_completed_trial_says_so(panel, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="tft-test", storage=storage, direction="maximize")
    enqueue_diverging(study)
    # a wider model diverges later in the fold: its loss stays finite, its scores do not
    study.enqueue_trial({"hidden_size": 8, "attention_heads": 2, "dropout": 0.18,
                         "learning_rate": 1e30, "encoder_days": 12, "gradient_clip": 0.07})
    with pytest.raises(RuntimeError, match=r"no trial completed \({'FAIL': 2}\)"):
        tune(panel, storage, n_trials=2)
    trials = optuna.load_study(study_name="tft-test", storage=storage).trials
    reasons = [t.user_attrs["failure"] for t in trials]
    assert all(r.startswith("diverged in fold 1") for r in reasons)
    assert any("non-finite training loss" in r for r in reasons) or \
        any("scores finite" in r for r in reasons)
    assert family_trials(storage, FAMILY).n_trials == 2


def test_search_space_is_validated():
    params = load_params(REPO / "params.yaml")
    search = params.model.tft.search
    assert max(search.attention_heads) <= min(search.hidden_size)
    with pytest.raises(ConfigError, match="attention_heads up to 16 exceed"):
        params.with_overrides({"model.tft.search.attention_heads": [1, 16]})
    with pytest.raises(ConfigError, match="learning_rate must lie"):
        params.with_overrides({"model.tft.search.learning_rate": {
            "low": 0.001, "high": 3.0, "log": True}})
    with pytest.raises(ConfigError, match="encoder_days must lie"):
        params.with_overrides({"model.tft.search.encoder_days": {
            "low": 2, "high": 30, "log": False}})
    with pytest.raises(ConfigError, match=r"dropout\.high"):
        params.with_overrides({"model.tft.search.dropout": {
            "low": 0.0, "high": 1.0, "log": False}})
    with pytest.raises(ConfigError, match="lists a value twice"):
        params.with_overrides({"model.tft.search.hidden_size": [8, 8]})
    with pytest.raises(ConfigError, match="exceeds hidden_size"):
        params.with_overrides({"model.tft.hidden_size": 4, "model.tft.attention_heads": 8})
