"""What a recipe refits into: the tree ensemble, the TFT, or a stack of both.

A recipe is the JSON a model version carries (``recipe.json``) so that the gate, the
walk-forward backtest and the monthly refit can fit it again on other rows. Its ``kind``
says which estimator (recipes written before the TFT could trade have none: trees).

The stack combines the two primary scores as the ensemble combines its members: per-date
z-scores, weighted. Its weights are fitted once, out of fold, on sessions before the gate's
held-out period, and stay fixed when the gate refits the stack on its CPCV splits.
"""

from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from alphaline.models.ensemble import TreeEnsemble, per_date_zscore
from alphaline.models.tft import TFTConfig, TFTForecaster

KINDS = ("trees", "tft", "stack")


def kind_of(recipe: dict) -> str:
    kind = recipe.get("kind", "trees")
    if kind not in KINDS:
        raise ValueError(f"unknown recipe kind {kind!r} (expected one of {KINDS})")
    return kind


def is_sequence(recipe: dict) -> bool:
    """Whether the recipe's model reads each symbol's recent sessions (``symbol`` and
    ``ret`` columns beside the features, and context rows before each scored one)."""
    return kind_of(recipe) != "trees"


def tree_ensemble(recipe: dict, n_jobs: int) -> TreeEnsemble:
    return TreeEnsemble(recipe["members"], stack_folds=recipe["stack_folds"],
                        horizon=recipe["horizon"], embargo=recipe["embargo"],
                        redundancy_corr=recipe["redundancy_corr"], n_jobs=n_jobs)


def tft_config_dict(config: TFTConfig) -> dict:
    out = asdict(config)
    out["quantiles"] = list(config.quantiles)
    return out


def tft_config_from(d: dict) -> TFTConfig:
    names = {f.name for f in fields(TFTConfig)}
    return TFTConfig(**{k: (tuple(v) if k == "quantiles" else v) for k, v in d.items()
                        if k in names})


def combine(trees: np.ndarray, tft: np.ndarray, dates: ArrayLike | None,
            weights: tuple[float, float]) -> np.ndarray:
    """Weighted per-date z-scores of the two primary scores. A row the TFT cannot score
    (no full encoder window yet: a late listing) takes the trees' part alone."""
    d = None if dates is None else np.asarray(dates)
    zt, _ = per_date_zscore(np.asarray(trees, dtype="float64")[:, None], d)
    zs, _ = per_date_zscore(np.asarray(tft, dtype="float64")[:, None], d)
    return weights[0] * np.nan_to_num(zt[:, 0]) + weights[1] * np.nan_to_num(zs[:, 0])


class TreesAndTFT(BaseEstimator):
    """The stack as an estimator: fits both on the same rows, predicts :func:`combine`."""

    def __init__(self, *, trees: TreeEnsemble, tft: TFTForecaster, tree_features: list[str],
                 weights: tuple[float, float]):
        self.trees = trees
        self.tft = tft
        self.tree_features = tree_features
        self.weights = weights

    def fit(self, X: pd.DataFrame, y: pd.Series, *, dates: pd.Series,
            sample_weight: np.ndarray | None = None) -> TreesAndTFT:
        self.trees.fit(X[self.tree_features], y, dates=dates, sample_weight=sample_weight)
        self.tft.fit(X, y, dates=dates)
        self.context_sessions_ = self.tft.context_sessions_
        return self

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike) -> np.ndarray:
        return combine(self.trees.predict(X[self.tree_features], dates=dates),
                       self.tft.predict(X, dates=dates), dates, self.weights)


def estimator_from(recipe: dict, n_jobs: int):
    """A fresh, unfitted estimator of the recipe."""
    kind = kind_of(recipe)
    if kind == "trees":
        return tree_ensemble(recipe, n_jobs)
    if kind == "tft":
        return TFTForecaster(config=tft_config_from(recipe["tft"]),
                             features=list(recipe["features"]))
    return TreesAndTFT(trees=tree_ensemble(recipe["trees"], n_jobs),
                       tft=TFTForecaster(config=tft_config_from(recipe["tft"]),
                                         features=list(recipe["tft_features"])),
                       tree_features=list(recipe["trees"]["features"]),
                       weights=tuple(recipe["weights"]))


def tree_recipe(recipe: dict) -> dict | None:
    """The trees' part of a recipe (its sample weights and features), if it has one."""
    kind = kind_of(recipe)
    return recipe if kind == "trees" else recipe["trees"] if kind == "stack" else None


def recipe_inputs(recipe: dict, X: pd.DataFrame, symbols: pd.Series, dates: pd.Series,
                  close: pd.DataFrame | None) -> pd.DataFrame:
    """The columns the recipe's estimator reads: its features, and for a sequence model the
    symbol and each session's close-to-close return (from ``close``: sessions × symbols)."""
    out = X[list(recipe["features"])]
    if not is_sequence(recipe):
        return out
    if close is None:
        raise ValueError("a sequence model needs the closes to compute its returns")
    ret = close.sort_index().pct_change(fill_method=None)
    stacked = ret.stack(future_stack=True)
    key = pd.MultiIndex.from_arrays([pd.to_datetime(np.asarray(dates)),
                                     np.asarray(symbols)])
    values = stacked.reindex(key).to_numpy()
    return out.assign(symbol=np.asarray(symbols), ret=values)
