"""Meta-labeling (López de Prado, ch. 3): the primary model picks the side, a secondary
classifier predicts whether that side will be right, and the bet is side × probability.

The side is the book's (:func:`alphaline.trading.portfolio.quantile_sides`): +1 for a
date's top ``quantile`` of primary scores, -1 for its bottom, 0 elsewhere. A side is right
when the name's label beats (long) or trails (short) the date's median label. The secondary
model sees the features plus where the primary score put the name (the ``primary_score``
column of its ``X``), and is fitted only on out-of-sample primary scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from alphaline.models.cv import Split, cross_val_predict
from alphaline.trading.portfolio import quantile_sides

PRIMARY_SCORE = "primary_score"


def primary_position(score: np.ndarray, dates: np.ndarray | None) -> pd.DataFrame:
    """Per-date z-score and percentile rank of the primary score."""
    s = pd.Series(np.asarray(score, dtype="float64"))
    keys = np.zeros(len(s)) if dates is None else np.asarray(dates)
    g = s.groupby(keys)
    std = g.transform("std", ddof=0)
    z = ((s - g.transform("mean")) / std.where(std > 0)).fillna(0.0)
    return pd.DataFrame({"primary_z": z.to_numpy(), "primary_pct": g.rank(pct=True).to_numpy()})


def sides(score: ArrayLike, dates: ArrayLike | None, quantile: float) -> np.ndarray:
    """The book's sides of a primary score: +1 top ``quantile``, -1 bottom, 0 elsewhere."""
    return quantile_sides(pd.Series(np.asarray(score, dtype="float64")), quantile,
                          dates).to_numpy()


def side_correct(side: np.ndarray, label: np.ndarray, dates: np.ndarray) -> np.ndarray:
    y = pd.Series(np.asarray(label, dtype="float64"))
    excess = (y - y.groupby(np.asarray(dates)).transform("median")).to_numpy()
    return (side * excess > 0).astype("float64")


def bet_size(side: np.ndarray, probability: np.ndarray, threshold: float) -> np.ndarray:
    """side × probability where the probability reaches the threshold, else 0."""
    return np.where(probability >= threshold, side * probability, 0.0)


class MetaLabeler(BaseEstimator):
    """``X``: the features plus a ``primary_score`` column; ``y``: the label. ``predict``
    returns the bet size, ``predict_proba`` the probability that the side is right."""

    def __init__(self, *, quantile: float, threshold: float, n_estimators: int,
                 num_leaves: int, min_child_samples: int, learning_rate: float, seed: int,
                 n_jobs: int):
        self.quantile = quantile
        self.threshold = threshold
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.learning_rate = learning_rate
        self.seed = seed
        self.n_jobs = n_jobs

    def _inputs(self, X: pd.DataFrame, dates: ArrayLike | None) -> pd.DataFrame:
        if PRIMARY_SCORE not in X.columns:
            raise ValueError(f"the meta-labeler's X needs a {PRIMARY_SCORE!r} column")
        pos = primary_position(X[PRIMARY_SCORE].to_numpy(), dates)
        return pd.concat([X.drop(columns=[PRIMARY_SCORE]).reset_index(drop=True), pos], axis=1)

    def fit(self, X: pd.DataFrame, y: pd.Series, *, dates: ArrayLike,
            sample_weight: np.ndarray | None = None) -> MetaLabeler:
        dates = np.asarray(dates)
        label = np.asarray(y, dtype="float64")
        side = sides(X[PRIMARY_SCORE].to_numpy(), dates, self.quantile)
        target = side_correct(side, label, dates)
        ok = (side != 0) & np.isfinite(label)
        inputs = self._inputs(X, dates)
        self.feature_names_in_ = list(inputs.columns)
        params = {"objective": "binary", "num_leaves": self.num_leaves,
                  "min_data_in_leaf": self.min_child_samples,
                  "learning_rate": self.learning_rate, "feature_fraction": 0.8,
                  "bagging_fraction": 0.8, "bagging_freq": 1, "seed": self.seed,
                  "num_threads": self.n_jobs, "verbosity": -1, "deterministic": True,
                  "force_col_wise": True}
        data = lgb.Dataset(inputs[ok].to_numpy(dtype="float32"), label=target[ok],
                           weight=None if sample_weight is None
                           else np.asarray(sample_weight)[ok],
                           feature_name=self.feature_names_in_)
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)
        self.base_rate_ = float(target[ok].mean()) if ok.any() else 0.5
        return self

    def predict_proba(self, X: pd.DataFrame, *, dates: ArrayLike | None) -> np.ndarray:
        check_is_fitted(self)
        inputs = self._inputs(X, dates)[self.feature_names_in_]
        return self.booster_.predict(inputs.to_numpy(dtype="float32"), num_threads=self.n_jobs)

    def size(self, X: pd.DataFrame, *, dates: ArrayLike | None) -> pd.DataFrame:
        """``side, probability, size`` per row."""
        side = sides(X[PRIMARY_SCORE].to_numpy(), dates, self.quantile)
        prob = self.predict_proba(X, dates=dates)
        return pd.DataFrame({"side": side, "probability": prob,
                             "size": bet_size(side, prob, self.threshold)})

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike | None) -> np.ndarray:
        return self.size(X, dates=dates)["size"].to_numpy()

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(path / "meta_label.txt"))
        (path / "meta_label.json").write_text(json.dumps({
            **self.get_params(), "features": self.feature_names_in_,
            "base_rate": self.base_rate_}, indent=2))
        return path

    @classmethod
    def load(cls, path: Path, n_jobs: int | None = None) -> MetaLabeler:
        spec = json.loads((Path(path) / "meta_label.json").read_text())
        features, base_rate = spec.pop("features"), spec.pop("base_rate")
        spec["n_jobs"] = n_jobs or spec["n_jobs"]
        model = cls(**spec)
        model.booster_ = lgb.Booster(model_file=str(Path(path) / "meta_label.txt"))
        model.feature_names_in_ = features
        model.base_rate_ = base_rate
        return model


def with_primary_score(X: pd.DataFrame, score: ArrayLike) -> pd.DataFrame:
    """The meta-labeler's input: the features and the primary model's score."""
    return X.reset_index(drop=True).assign(**{PRIMARY_SCORE: np.asarray(score, "float64")})


def walk_forward_meta(oos: pd.DataFrame, X: pd.DataFrame, make_model, gap_days: int,
                      min_train_dates: int = 20) -> pd.DataFrame:
    """Out-of-sample meta-labels over primary OOS predictions (``fold, date, score, label,
    row``; ``row`` indexes ``X``): fold k's secondary model is fitted on folds before k,
    ending ``gap_days`` sessions before k starts (purge + embargo). Returns the rows of
    folds ≥ 1 with ``side, probability, size``."""
    oos = oos.reset_index(drop=True)
    sessions = np.unique(oos["date"].to_numpy())
    splits = []
    for k in sorted(oos["fold"].unique())[1:]:
        test = np.flatnonzero(oos["fold"].to_numpy() == k)
        first = np.searchsorted(sessions, oos["date"].to_numpy()[test].min())
        cut = sessions[max(first - gap_days, 0)]
        train = np.flatnonzero((oos["fold"].to_numpy() < k) & (oos["date"].to_numpy() < cut))
        if oos["date"].iloc[train].nunique() < min_train_dates:
            continue
        splits.append(Split(train, test, pd.Timestamp(oos["date"].iloc[test].min()),
                            pd.Timestamp(oos["date"].iloc[test].max())))
    if not splits:
        return pd.DataFrame()
    inputs = with_primary_score(X.iloc[oos["row"].to_numpy()], oos["score"])
    result = cross_val_predict(
        make_model, inputs, oos["label"], dates=oos["date"], splits=splits,
        outputs=lambda model, X_, d: model.size(X_, dates=d).to_dict("series"))
    sized = result.predictions
    return pd.concat([oos.iloc[sized["row"].to_numpy()].reset_index(drop=True),
                      sized[["side", "probability", "size"]]], axis=1)


def meta_label_summary(sized: pd.DataFrame, threshold: float) -> dict[str, float]:
    """Precision of the primary sides against the ones the secondary model keeps."""
    if sized.empty:
        return {}
    traded = sized[sized["side"] != 0]
    right = side_correct(traded["side"].to_numpy(), traded["label"].to_numpy(),
                         traded["date"].to_numpy())
    kept = traded["probability"].to_numpy() >= threshold
    return {
        "primary_precision": float(right.mean()),
        "meta_precision": float(right[kept].mean()) if kept.any() else float("nan"),
        "meta_coverage": float(kept.mean()),
    }
