"""What the research steps hand each other: typed values, written and read back by the
catalog (``pipelines/catalog.py``) as ``metrics/*.json`` without losing their types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class TrainingSet:
    """Labelled rows with point-in-time features, ordered by (date, symbol)."""

    X: pd.DataFrame
    y: pd.Series
    dates: pd.Series
    symbols: pd.Series
    fingerprint: str

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)


class _Result(BaseModel):
    # NaN stays NaN on disk (a figure that could not be computed is not zero)
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class FeatureValidationSummary(_Result):
    suspected_leak: bool
    leaks: list[dict[str, str]]
    dead: list[str]
    correlated_groups: list[list[str]]


class TrainResult(_Result):
    """A trained, registered challenger: how it was made and how it did out of sample."""

    model: str
    version: str
    run_id: str
    studies: dict[str, str]
    fingerprint: str
    recipe: dict[str, Any]
    oos: dict[str, float]
    stack_weights: dict[str, float]
    redundant_members: list[tuple[str, str, float]]
    fold_metrics: list[dict[str, Any]]
    feature_validation: FeatureValidationSummary
    train_rows: int
    splits: int
    family: str | None = None  # the recipe family whose trials deflate its Sharpe


class EvaluateResult(_Result):
    """The gate's decision on a challenger, with the CPCV figures behind it."""

    model: str
    version: str
    promoted: bool
    reasons: list[str]
    champion_before: str | None
    champion_after: str | None
    cpcv: dict[str, int | str]
    challenger: dict[str, float | str]
    champion: dict[str, float] | None
    paths: list[dict[str, float]]
    baselines: dict[str, float] = {}  # annualized after-cost Sharpe on the same sessions
