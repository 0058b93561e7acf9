"""A stacked LightGBM ensemble: members with different objectives and seeds, combined by a
non-negative linear meta-learner fitted only on out-of-fold member predictions.

Members speak different scales (rank regression, LambdaRank margins, log-odds), so each
member's output is z-scored within each date before stacking: the ensemble is a
cross-sectional scorer, and a date's cross-section is the unit it is used on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import nnls
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from alphaline.console import say_once
from alphaline.models import treeshap
from alphaline.models.cv import cross_val_predict, purged_kfold
from alphaline.models.explain import keep_tables, shap_tables, tree_shap
from alphaline.models.lgbm import LGBMMember, cross_sectional_rank

log = logging.getLogger(__name__)


def member_name(spec: dict) -> str:
    return f"{spec['objective']}-s{spec['seed']}"


def per_date_zscore(values: np.ndarray, dates: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise z-scores within each date; also returns each row's date std (per column).

    A date where a column is constant scores 0 there (nothing to rank).
    """
    frame = pd.DataFrame(values)
    if dates is None:
        mean = frame.mean().to_numpy()[None, :]
        std = frame.std(ddof=0).to_numpy()[None, :].repeat(len(frame), axis=0)
        mean = mean.repeat(len(frame), axis=0)
    else:
        groups = frame.groupby(np.asarray(dates))
        mean = groups.transform("mean").to_numpy()
        std = groups.transform("std", ddof=0).to_numpy()
    z = np.divide(values - mean, std, out=np.zeros_like(values, dtype="float64"),
                  where=std > 0)
    return z, std


def stack_weights(Z: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None
                  ) -> tuple[np.ndarray, bool]:
    """Non-negative least squares of the target on member z-scores, scaled to sum to one.

    Returns (weights, fell_back): when no member earns a positive weight the members are
    averaged, and the caller is told.
    """
    ok = np.isfinite(Z).all(axis=1) & np.isfinite(target)
    w = np.ones(ok.sum()) if sample_weight is None else np.asarray(sample_weight)[ok]
    root = np.sqrt(w)[:, None]
    beta, _ = nnls(Z[ok] * root, target[ok] * root[:, 0])
    if beta.sum() <= 0:
        return np.full(Z.shape[1], 1.0 / Z.shape[1]), True
    return beta / beta.sum(), False


def member_correlations(Z: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.corrcoef(Z, rowvar=False), index=names, columns=names)


def redundant_pairs(corr: pd.DataFrame, threshold: float) -> list[tuple[str, str, float]]:
    names = list(corr.index)
    return [(a, b, float(corr.loc[a, b])) for i, a in enumerate(names) for b in names[i + 1:]
            if corr.loc[a, b] > threshold]


class TreeEnsemble(BaseEstimator):
    """``members``: dicts of :class:`LGBMMember` parameters (``n_jobs`` aside).

    ``fit`` runs a purged K-fold inside the training rows (``stack_folds`` folds, purged by
    the label ``horizon`` and ``embargo``) to get out-of-fold member predictions, fits the
    meta-learner on those alone, then refits every member on all rows.
    """

    def __init__(self, members: list[dict], *, stack_folds: int, horizon: int, embargo: int,
                 redundancy_corr: float, n_jobs: int):
        self.members = members
        self.stack_folds = stack_folds
        self.horizon = horizon
        self.embargo = embargo
        self.redundancy_corr = redundancy_corr
        self.n_jobs = n_jobs

    def _member(self, spec: dict) -> LGBMMember:
        return LGBMMember(**spec, n_jobs=self.n_jobs)

    @property
    def member_names(self) -> list[str]:
        return [member_name(s) for s in self.members]

    def fit(self, X: pd.DataFrame, y: pd.Series, *, dates: pd.Series,
            sample_weight: np.ndarray | None = None) -> TreeEnsemble:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        y = pd.Series(np.asarray(y, dtype="float64"))
        dates = pd.Series(pd.to_datetime(np.asarray(dates)))
        oof = np.full((len(X), len(self.members)), np.nan)
        self.stack_splits_ = purged_kfold(dates, self.stack_folds, self.horizon, self.embargo)
        for m, spec in enumerate(self.members):
            result = cross_val_predict(lambda spec=spec: self._member(spec), X, y,
                                       dates=dates, splits=self.stack_splits_,
                                       sample_weight=sample_weight)
            oof[result.predictions["row"].to_numpy(), m] = result.predictions["score"]
        Z, _ = per_date_zscore(oof, dates.to_numpy())
        target = cross_sectional_rank(y, dates).to_numpy()
        self.weights_, self.stack_fell_back_ = stack_weights(Z, target, sample_weight)
        if self.stack_fell_back_:  # every fold, every CPCV split: said once per run
            say_once(log, logging.WARNING, "stack-fell-back",
                     "no member earned a positive stacking weight out of fold: averaging")
        self.diversity_ = member_correlations(Z, self.member_names) if len(self.members) > 1 \
            else pd.DataFrame([[1.0]], index=self.member_names, columns=self.member_names)
        self.redundant_ = redundant_pairs(self.diversity_, self.redundancy_corr)
        for a, b, rho in self.redundant_:
            say_once(log, logging.INFO, ("redundant", a, b),
                     "ensemble members %s and %s are redundant: out-of-fold correlation "
                     "%.3f > %.2f", a, b, rho, self.redundancy_corr)
        self.members_ = [self._member(spec).fit(X, y, dates=dates, sample_weight=sample_weight)
                         for spec in self.members]
        self.feature_names_in_ = np.asarray(X.columns)
        return self

    def member_predictions(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return np.column_stack([m.predict(X) for m in self.members_])

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike | None) -> np.ndarray:
        """Scores; ``dates`` groups rows into cross-sections (None: one cross-section)."""
        Z, _ = per_date_zscore(self.member_predictions(X), None if dates is None
                               else np.asarray(dates))
        return Z @ self.weights_

    def contributions(self, X: pd.DataFrame, *, dates: ArrayLike | None) -> np.ndarray:
        """Exact SHAP decomposition of ``predict``: member TreeSHAP values, each scaled by
        its stacking weight over the member's per-date standard deviation (the per-date
        mean shifts every row of a date alike and is not a feature's doing).

        The values are LightGBM's own TreeSHAP (``explain.tree_shap``) on the float32 rows
        the members score, and each member's margins, for its per-date deviation, are
        their sums: one pass over the trees per member.
        """
        check_is_fitted(self)
        values = X[list(self.feature_names_in_)].to_numpy(dtype="float32")
        total = np.zeros(values.shape, dtype="float64")
        for m, member in enumerate(self.members_):
            if self.weights_[m] == 0:
                continue
            phi, margin = tree_shap(member.booster_, values, member.n_jobs)
            _, std = per_date_zscore(margin[:, None], None if dates is None
                                     else np.asarray(dates))
            scale = np.divide(self.weights_[m], std[:, 0], out=np.zeros(len(values)),
                              where=std[:, 0] > 0)
            total += phi * scale[:, None]
        return total

    # -- persistence: plain LightGBM model files and one JSON, readable without Python pickles
    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, member in zip(self.member_names, self.members_, strict=True):
            member.booster_.save_model(str(path / f"{name}.txt"))
            tables = shap_tables(member.booster_)  # the serving reasons' tables, built once
            (path / f"{name}.treeshap.npz").unlink(missing_ok=True)
            if tables is not None:
                treeshap.save(tables, path / f"{name}.treeshap.npz")
        (path / "ensemble.json").write_text(json.dumps(self.spec(), indent=2))
        return path

    def spec(self) -> dict[str, Any]:
        return {
            "members": self.members, "stack_folds": self.stack_folds, "horizon": self.horizon,
            "embargo": self.embargo, "redundancy_corr": self.redundancy_corr,
            "n_jobs": self.n_jobs, "weights": [float(w) for w in self.weights_],
            "features": [str(c) for c in self.feature_names_in_],
            "diversity": self.diversity_.round(6).to_dict(),
        }

    @classmethod
    def load(cls, path: Path, n_jobs: int | None = None) -> TreeEnsemble:
        """``n_jobs``: threads for scoring (default: what the model was trained with)."""
        path = Path(path)
        spec = json.loads((path / "ensemble.json").read_text())
        n_jobs = n_jobs or spec["n_jobs"]
        model = cls(spec["members"], stack_folds=spec["stack_folds"], horizon=spec["horizon"],
                    embargo=spec["embargo"], redundancy_corr=spec["redundancy_corr"],
                    n_jobs=n_jobs)
        model.weights_ = np.asarray(spec["weights"])
        model.feature_names_in_ = np.asarray(spec["features"])
        model.diversity_ = pd.DataFrame(spec["diversity"])
        model.members_ = []
        for member_spec, name in zip(model.members, model.member_names, strict=True):
            member = LGBMMember(**member_spec, n_jobs=n_jobs)
            member.booster_ = lgb.Booster(model_file=str(path / f"{name}.txt"))
            if (path / f"{name}.treeshap.npz").exists():
                keep_tables(member.booster_, treeshap.load(path / f"{name}.treeshap.npz"))
            member.feature_names_in_ = model.feature_names_in_
            model.members_.append(member)
        return model
