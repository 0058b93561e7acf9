"""Features and labels from validated bars, written for Feast and for training."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from alphaline.config import FeatureParams
from alphaline.io import write_parquet
from alphaline.project import Project
from features import cross_section
from features import store as feast_store
from features.compute import compute_features, compute_labels
from features.registry import feature_names, get


@dataclass
class FeatureTables:
    features: pd.DataFrame
    labels: pd.DataFrame


def build(bars: pd.DataFrame, params: FeatureParams) -> FeatureTables:
    """The selected feature sets, then the per-date transforms, and the labels."""
    names = feature_names(params.sets)
    feats = compute_features(bars, get(names), {"risk": {
        "benchmark": params.benchmark, "garch_refit_every": params.garch_refit_every}})
    cs = params.cross_section
    if cs.method != "none" or cs.winsorize > 0 or cs.neutralize:
        if "sector" in bars.columns:
            feats = feats.merge(bars[["symbol", "date", "sector"]], on=["symbol", "date"])
        feats = cross_section.apply(feats, names, cs.method, cs.winsorize, cs.neutralize)
        feats = feats.drop(columns=["sector"], errors="ignore")
    return FeatureTables(feats, compute_labels(bars, params.label_horizon))


def write(project: Project, tables: FeatureTables) -> None:
    """Write both tables atomically and register the Feast definitions over them."""
    cal = project.params.data.calendar
    write_parquet(feast_store.to_feast_table(tables.features, cal), project.feature_table)
    write_parquet(tables.labels, project.label_table)
    open_feature_store(project)


def open_feature_store(project: Project):
    return feast_store.open_store(project.feast_dir, project.feature_table,
                                  feature_names(project.params.features.sets))
