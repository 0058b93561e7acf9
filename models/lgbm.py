"""LightGBM scorer trained on per-date ranks of the label (cross-sectional targets)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin


def cross_sectional_rank(label: pd.Series, dates: pd.Series) -> pd.Series:
    """Label → its rank within each date, centred on zero in [-0.5, 0.5].

    Ranking removes the market move and fat tails that would otherwise dominate the loss.
    """
    return label.groupby(dates.to_numpy()).rank(pct=True) - 0.5


class LGBMScorer(BaseEstimator, RegressorMixin):
    """Scores symbols for one date; higher means a higher expected forward return."""

    def __init__(self, n_estimators: int = 200, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 100, feature_fraction: float = 0.8,
                 bagging_fraction: float = 0.8, lambda_l2: float = 1.0, seed: int = 0,
                 n_jobs: int = 2):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.seed = seed
        self.n_jobs = n_jobs

    def _model(self) -> lgb.LGBMRegressor:
        return lgb.LGBMRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples,
            colsample_bytree=self.feature_fraction, subsample=self.bagging_fraction,
            subsample_freq=1, reg_lambda=self.lambda_l2, random_state=self.seed,
            n_jobs=self.n_jobs, verbose=-1, deterministic=True, force_col_wise=True,
        )

    def fit(self, X: pd.DataFrame, y: pd.Series, dates: pd.Series | None = None) -> LGBMScorer:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with one column per feature")
        target = cross_sectional_rank(y, dates) if dates is not None else y
        mask = target.notna().to_numpy()
        self.model_ = self._model().fit(X.loc[mask], target.to_numpy()[mask])
        self.feature_names_in_ = np.asarray(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns {missing}")
        return self.model_.predict(X[list(self.feature_names_in_)])

    @property
    def booster_(self) -> lgb.Booster:
        return self.model_.booster_

    def hyperparameters(self) -> dict[str, Any]:
        return {k: v for k, v in self.get_params().items() if k != "n_jobs"}
