"""The deployable signal: the stacked tree ensemble, and the meta-labeler when enabled.

Saved as plain LightGBM model files plus JSON in one directory, which MLflow carries as
the artifacts of a pyfunc model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alphaline.models.ensemble import TreeEnsemble
from alphaline.models.meta_label import MetaLabeler, with_primary_score


@dataclass
class SignalModel:
    ensemble: TreeEnsemble
    meta: MetaLabeler | None = None

    @property
    def features(self) -> list[str]:
        return [str(c) for c in self.ensemble.feature_names_in_]

    def score(self, X: pd.DataFrame, dates: np.ndarray | None = None) -> pd.DataFrame:
        """``score`` per row; with meta-labeling also ``side, probability, size``."""
        X = X[self.features]
        out = pd.DataFrame({"score": self.ensemble.predict(X, dates=dates)})
        if self.meta is not None:
            sized = self.meta.size(with_primary_score(X, out["score"]), dates=dates)
            out = pd.concat([out, sized], axis=1)
        return out

    def contributions(self, X: pd.DataFrame, dates: np.ndarray | None = None) -> np.ndarray:
        return self.ensemble.contributions(X[self.features], dates=dates)

    def save(self, path: Path) -> Path:
        path = Path(path)
        self.ensemble.save(path / "ensemble")
        if self.meta is not None:
            self.meta.save(path / "meta_label")
        (path / "signal.json").write_text(json.dumps(
            {"features": self.features, "meta_label": self.meta is not None}, indent=2))
        return path

    @classmethod
    def load(cls, path: Path, n_jobs: int | None = None) -> SignalModel:
        path = Path(path)
        spec = json.loads((path / "signal.json").read_text())
        meta = MetaLabeler.load(path / "meta_label", n_jobs) if spec["meta_label"] else None
        return cls(TreeEnsemble.load(path / "ensemble", n_jobs), meta)
