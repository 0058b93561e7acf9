"""One LightGBM ensemble member: a cross-sectional scorer with one of three objectives.

- ``regression``: squared error on the per-date rank of the label (centred on zero);
  ranking removes the market move and fat tails that would dominate the loss.
- ``lambdarank``: LambdaRank with each date a query and per-date quantile grades.
- ``binary``: whether the label beats the date's median (up or down against the market).

Every objective scores higher for a higher expected forward return. ``predict`` returns raw
margins (log-odds for ``binary``): the scale SHAP's TreeExplainer decomposes.
"""

from __future__ import annotations

from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

Objective = Literal["regression", "lambdarank", "binary"]
OBJECTIVES: tuple[str, ...] = ("regression", "lambdarank", "binary")


def cross_sectional_rank(label: pd.Series, dates: pd.Series) -> pd.Series:
    """Label → its rank within each date, centred on zero in [-0.5, 0.5]."""
    return label.groupby(np.asarray(dates)).rank(pct=True) - 0.5


def rank_grades(label: pd.Series, dates: pd.Series, levels: int) -> pd.Series:
    """Per-date quantile grade 0 .. levels-1 (LambdaRank relevance)."""
    pct = label.groupby(np.asarray(dates)).rank(pct=True, method="first")
    return np.minimum(np.floor(pct * levels), levels - 1)


def above_median(label: pd.Series, dates: pd.Series) -> pd.Series:
    median = label.groupby(np.asarray(dates)).transform("median")
    return (label > median).astype("float64").where(label.notna())


class LGBMMember(BaseEstimator):
    """Scores symbols for one date; fit on a panel of (date, symbol) rows.

    Every parameter is required: the values come from ``params.yaml`` (through the tuned
    recipe), never from defaults here.
    """

    def __init__(self, *, objective: Objective, n_estimators: int, learning_rate: float,
                 num_leaves: int, min_child_samples: int, feature_fraction: float,
                 bagging_fraction: float, lambda_l2: float, seed: int, rank_levels: int,
                 rank_truncation: int, n_jobs: int):
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.seed = seed
        self.rank_levels = rank_levels
        self.rank_truncation = rank_truncation
        self.n_jobs = n_jobs

    def _params(self) -> dict[str, Any]:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        params = {
            "objective": self.objective, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1, "lambda_l2": self.lambda_l2, "seed": self.seed,
            "num_threads": self.n_jobs, "verbosity": -1, "deterministic": True,
            "force_col_wise": True,
        }
        if self.objective == "lambdarank":
            params["label_gain"] = list(range(self.rank_levels))
            # Pairs count when one name sits in the query's top ``rank_truncation``: the cost
            # grows with it × the cross-section (the whole cross-section at 500 names was
            # 20× a regression member's fit). The bottom of the book is the other members'.
            params["lambdarank_truncation_level"] = self.rank_truncation
        return params

    def fit(self, X: pd.DataFrame, y: pd.Series, *, dates: pd.Series,
            sample_weight: np.ndarray | None = None) -> LGBMMember:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with one column per feature")
        y = pd.Series(np.asarray(y, dtype="float64"))
        dates = pd.Series(pd.to_datetime(np.asarray(dates)))
        if self.objective == "regression":
            target = cross_sectional_rank(y, dates)
        elif self.objective == "binary":
            target = above_median(y, dates)
        else:
            target = rank_grades(y, dates, self.rank_levels)
        keep = target.notna().to_numpy()
        order = np.flatnonzero(keep)
        if self.objective == "lambdarank":  # queries must be contiguous
            order = order[np.argsort(dates.to_numpy()[order], kind="stable")]
        data = lgb.Dataset(
            X.iloc[order].to_numpy(dtype="float32"), label=target.to_numpy()[order],
            weight=None if sample_weight is None else np.asarray(sample_weight)[order],
            group=(dates.iloc[order].value_counts(sort=False).sort_index().to_numpy()
                   if self.objective == "lambdarank" else None),
            feature_name=[str(c) for c in X.columns], free_raw_data=True,
        )
        self.booster_ = lgb.train(self._params(), data, num_boost_round=self.n_estimators)
        self.feature_names_in_ = np.asarray(X.columns)
        return self

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike | None = None) -> np.ndarray:
        """Raw margins; ``dates`` is accepted for the common contract and not needed: a
        member scores each row on its own."""
        check_is_fitted(self)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature columns {missing}")
        values = X[list(self.feature_names_in_)].to_numpy(dtype="float32")
        return self.booster_.predict(values, raw_score=True, num_threads=self.n_jobs)

    def hyperparameters(self) -> dict[str, Any]:
        return {k: v for k, v in self.get_params().items() if k != "n_jobs"}
