"""Features and labels from validated bars, written for Feast and for training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from alphaline.io import write_parquet
from alphaline.project import Project
from features import store as feast_store
from features.compute import compute_features, compute_labels
from features.registry import feature_names


@dataclass
class FeatureTables:
    features: pd.DataFrame
    labels: pd.DataFrame


def build(bars: pd.DataFrame, horizon: int) -> FeatureTables:
    return FeatureTables(compute_features(bars), compute_labels(bars, horizon))


def write(project: Project, tables: FeatureTables) -> None:
    """Write both tables atomically and register the Feast definitions over them."""
    cal = project.params.data.calendar
    write_parquet(feast_store.to_feast_table(tables.features, cal), project.feature_table)
    write_parquet(tables.labels, project.label_table)
    open_feature_store(project)


def open_feature_store(project: Project):
    return feast_store.open_store(project.feast_dir, project.feature_table, feature_names())
