"""Meta-labeling (López de Prado, ch. 3): the primary model picks the side, a secondary
classifier predicts whether that side will be right, and the bet is side × probability.

The side is the research book's: +1 for a date's top ``quantile`` of scores, -1 for its
bottom, 0 elsewhere. A side is right when the name's label beats (long) or trails (short)
the date's median label. The secondary model sees the features plus where the primary
score put the name, and is fitted only on out-of-sample primary scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd


def primary_position(score: np.ndarray, dates: np.ndarray | None) -> pd.DataFrame:
    """Per-date z-score and percentile rank of the primary score."""
    s = pd.Series(np.asarray(score, dtype="float64"))
    keys = np.zeros(len(s)) if dates is None else np.asarray(dates)
    g = s.groupby(keys)
    std = g.transform("std", ddof=0)
    z = ((s - g.transform("mean")) / std.where(std > 0)).fillna(0.0)
    return pd.DataFrame({"primary_z": z.to_numpy(), "primary_pct": g.rank(pct=True).to_numpy()})


def sides(score: np.ndarray, dates: np.ndarray | None, quantile: float) -> np.ndarray:
    """+1 for a date's top ``quantile`` of scores, -1 for its bottom, 0 elsewhere (the
    research book's legs, ``models.metrics.book_weights``)."""
    keys = np.zeros(len(score)) if dates is None else np.asarray(dates)
    count = pd.Series(keys).map(pd.Series(keys).value_counts()).to_numpy()
    n = np.maximum(np.floor(count * quantile), 1)
    rank = pd.Series(np.asarray(score)).groupby(keys).rank(method="first").to_numpy()
    return np.where(rank > count - n, 1, np.where(rank <= n, -1, 0))


def side_correct(side: np.ndarray, label: np.ndarray, dates: np.ndarray) -> np.ndarray:
    y = pd.Series(np.asarray(label, dtype="float64"))
    excess = (y - y.groupby(np.asarray(dates)).transform("median")).to_numpy()
    return (side * excess > 0).astype("float64")


def bet_size(side: np.ndarray, probability: np.ndarray, threshold: float) -> np.ndarray:
    """side × probability where the probability reaches the threshold, else 0."""
    return np.where(probability >= threshold, side * probability, 0.0)


class MetaLabeler:
    def __init__(self, quantile: float, threshold: float, n_estimators: int = 100,
                 num_leaves: int = 7, min_child_samples: int = 200, seed: int = 0,
                 n_jobs: int = 2):
        self.quantile = quantile
        self.threshold = threshold
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.n_jobs = n_jobs

    def _inputs(self, X: pd.DataFrame, score: np.ndarray, dates: np.ndarray | None
                ) -> pd.DataFrame:
        pos = primary_position(score, dates)
        return pd.concat([X.reset_index(drop=True), pos], axis=1)

    def fit(self, X: pd.DataFrame, score: np.ndarray, label: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> MetaLabeler:
        side = sides(score, dates, self.quantile)
        traded = side != 0
        target = side_correct(side, label, dates)
        ok = traded & np.isfinite(np.asarray(label, dtype="float64"))
        inputs = self._inputs(X, score, dates)
        self.feature_names_in_ = list(inputs.columns)
        params = {"objective": "binary", "num_leaves": self.num_leaves,
                  "min_data_in_leaf": self.min_child_samples, "learning_rate": 0.05,
                  "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
                  "seed": self.seed, "num_threads": self.n_jobs, "verbosity": -1,
                  "deterministic": True, "force_col_wise": True}
        data = lgb.Dataset(inputs[ok].to_numpy(dtype="float32"), label=target[ok],
                           weight=None if sample_weight is None
                           else np.asarray(sample_weight)[ok],
                           feature_name=self.feature_names_in_)
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)
        self.base_rate_ = float(target[ok].mean()) if ok.any() else 0.5
        return self

    def predict_proba(self, X: pd.DataFrame, score: np.ndarray, dates: np.ndarray | None = None
                      ) -> np.ndarray:
        inputs = self._inputs(X, score, dates)[self.feature_names_in_]
        return self.booster_.predict(inputs.to_numpy(dtype="float32"), num_threads=self.n_jobs)

    def size(self, X: pd.DataFrame, score: np.ndarray, dates: np.ndarray | None = None
             ) -> pd.DataFrame:
        """``side, probability, size`` per row."""
        side = sides(score, dates, self.quantile)
        prob = self.predict_proba(X, score, dates)
        return pd.DataFrame({"side": side, "probability": prob,
                             "size": bet_size(side, prob, self.threshold)})

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(path / "meta_label.txt"))
        (path / "meta_label.json").write_text(json.dumps({
            "quantile": self.quantile, "threshold": self.threshold,
            "n_estimators": self.n_estimators, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "seed": self.seed,
            "features": self.feature_names_in_, "base_rate": self.base_rate_}, indent=2))
        return path

    @classmethod
    def load(cls, path: Path, n_jobs: int = 2) -> MetaLabeler:
        spec = json.loads((Path(path) / "meta_label.json").read_text())
        model = cls(spec["quantile"], spec["threshold"], spec["n_estimators"],
                    spec["num_leaves"], spec["min_child_samples"], spec["seed"], n_jobs)
        model.booster_ = lgb.Booster(model_file=str(Path(path) / "meta_label.txt"))
        model.feature_names_in_ = spec["features"]
        model.base_rate_ = spec["base_rate"]
        return model


def walk_forward_meta(oos: pd.DataFrame, X: pd.DataFrame, quantile: float, threshold: float,
                      gap_days: int, seed: int = 0) -> pd.DataFrame:
    """Out-of-sample meta-labels over primary OOS predictions (``fold, date, score, label,
    row``): fold k's secondary model is fitted on folds before k, ending ``gap_days``
    sessions before k starts (purge + embargo). Returns rows of folds ≥ 1 with
    ``side, probability, size``."""
    sessions = np.unique(oos["date"].to_numpy())
    parts = []
    for k in sorted(oos["fold"].unique())[1:]:
        test = oos[oos["fold"] == k]
        first = np.searchsorted(sessions, np.datetime64(test["date"].min()))
        cut = sessions[max(first - gap_days, 0)]
        train = oos[(oos["fold"] < k) & (oos["date"] < cut)]
        if train["date"].nunique() < 20:
            continue
        model = MetaLabeler(quantile, threshold, seed=seed).fit(
            X.iloc[train["row"].to_numpy()], train["score"].to_numpy(),
            train["label"].to_numpy(), train["date"].to_numpy())
        sized = model.size(X.iloc[test["row"].to_numpy()], test["score"].to_numpy(),
                           test["date"].to_numpy())
        parts.append(pd.concat([test.reset_index(drop=True), sized], axis=1))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


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
