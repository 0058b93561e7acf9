"""The deployable signal: the stacked tree ensemble, the TFT or a stack of both, and the
meta-labeler when enabled.

Saved as plain LightGBM model files, the TFT's torch file and JSON in one directory,
which MLflow carries as the artifacts of a pyfunc model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alphaline.models.ensemble import TreeEnsemble
from alphaline.models.explain import top_contributions
from alphaline.models.meta_label import MetaLabeler, with_primary_score
from alphaline.models.recipes import combine
from alphaline.models.tft import TFTForecaster


@dataclass
class SignalModel:
    """``ensemble`` (trees), ``tft``, or both (a stack, combined with ``stack_weights``:
    trees, TFT), and the meta-labeler when enabled. A model with a TFT reads each symbol's
    recent sessions: its ``X`` has ``symbol`` and ``ret`` beside the features, and
    ``context_sessions`` sessions before each row it scores (``models/tft.window_as_of``)."""

    ensemble: TreeEnsemble | None
    meta: MetaLabeler | None = None
    tft: TFTForecaster | None = None
    stack_weights: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.ensemble is None and self.tft is None:
            raise ValueError("a signal needs the tree ensemble, the TFT, or both")
        if self.ensemble is not None and self.tft is not None and self.stack_weights is None:
            raise ValueError("a stack of the trees and the TFT needs its weights")

    @property
    def kind(self) -> str:
        return ("stack" if self.ensemble is not None and self.tft is not None
                else "tft" if self.tft is not None else "trees")

    @property
    def features(self) -> list[str]:
        names = [] if self.ensemble is None else [str(c) for c in
                                                  self.ensemble.feature_names_in_]
        if self.tft is not None:
            names += [f for f in self.tft.features if f not in names]
        return names

    @property
    def context_sessions(self) -> int:
        """Sessions before a scored row that scoring reads (0: the row alone)."""
        return 0 if self.tft is None else int(self.tft.context_sessions_)

    def _dates(self, X: pd.DataFrame, dates: np.ndarray | None) -> np.ndarray | None:
        if dates is None and self.tft is not None:
            if "date" not in X.columns:
                raise ValueError("a sequence model scores rows with their dates")
            return pd.to_datetime(X["date"]).to_numpy()
        return dates

    def primary(self, X: pd.DataFrame, dates: np.ndarray | None = None) -> np.ndarray:
        """The primary score per row (NaN for a row the TFT alone cannot score yet)."""
        dates = self._dates(X, dates)
        trees = None if self.ensemble is None else self.ensemble.predict(
            X[[str(c) for c in self.ensemble.feature_names_in_]], dates=dates)
        if self.tft is None:
            return trees
        seq = self.tft.predict(X, dates=dates)
        if trees is None:
            return seq
        return combine(trees, seq, dates, self.stack_weights)

    def score(self, X: pd.DataFrame, dates: np.ndarray | None = None) -> pd.DataFrame:
        """``score`` per row; with meta-labeling also ``side, probability, size``."""
        dates = self._dates(X, dates)
        out = pd.DataFrame({"score": self.primary(X, dates)})
        if self.meta is not None:
            sized = self.meta.size(with_primary_score(X[self.features], out["score"]),
                                   dates=dates)
            out = pd.concat([out, sized], axis=1)
        return out

    def contributions(self, X: pd.DataFrame, dates: np.ndarray | None = None) -> np.ndarray:
        if self.ensemble is None:
            raise ValueError("the TFT's reasons come from explain(), not SHAP")
        return self.ensemble.contributions(
            X[[str(c) for c in self.ensemble.feature_names_in_]], dates=dates)

    def reasons(self, X: pd.DataFrame, top: int, dates: np.ndarray | None = None
                ) -> tuple[list[list[dict]], list[list[float] | None]]:
        """Per row: why it scored as it did, and the TFT's attention over its encoder
        sessions (None without a TFT). Trees: the top SHAP contributions (``feature,
        shap``); the TFT: its top variable-selection weights (``feature, weight``); a stack
        lists both, each scaled by its stacking weight."""
        dates = self._dates(X, dates)
        tree_part: list[list[dict]] = [[] for _ in range(len(X))]
        if self.ensemble is not None:
            names = [str(c) for c in self.ensemble.feature_names_in_]
            tree_part = top_contributions(self.contributions(X, dates), X[names], top)
        if self.tft is None:
            return tree_part, [None] * len(X)
        seq_part, attention = self.tft.explain(X, dates=dates, top=top)
        if self.ensemble is None:
            return seq_part, attention
        wt, ws = self.stack_weights
        merged = [[{**c, "shap": c["shap"] * wt} for c in a]
                  + [{**c, "weight": c["weight"] * ws} for c in b]
                  for a, b in zip(tree_part, seq_part, strict=True)]
        return merged, attention

    def save(self, path: Path) -> Path:
        path = Path(path)
        if self.ensemble is not None:
            self.ensemble.save(path / "ensemble")
        if self.tft is not None:
            self.tft.save(path / "tft")
        if self.meta is not None:
            self.meta.save(path / "meta_label")
        path.mkdir(parents=True, exist_ok=True)
        (path / "signal.json").write_text(json.dumps(
            {"features": self.features, "meta_label": self.meta is not None,
             "kind": self.kind, "stack_weights": None if self.stack_weights is None
             else [float(w) for w in self.stack_weights]}, indent=2))
        return path

    @classmethod
    def load(cls, path: Path, n_jobs: int | None = None) -> SignalModel:
        path = Path(path)
        spec = json.loads((path / "signal.json").read_text())
        kind = spec.get("kind", "trees")
        meta = MetaLabeler.load(path / "meta_label", n_jobs) if spec["meta_label"] else None
        trees = TreeEnsemble.load(path / "ensemble", n_jobs) if kind != "tft" else None
        tft = TFTForecaster.load(path / "tft") if kind != "trees" else None
        weights = spec.get("stack_weights")
        return cls(trees, meta, tft, None if weights is None else tuple(weights))
