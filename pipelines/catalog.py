"""The catalog: the one layer that reads and writes what the research steps hand each other.

Steps are functions of typed values (a :class:`~alphaline.pipelines.train.TrainingSet`, a
:class:`~alphaline.pipelines.results.TrainResult`, frames); this module owns where each
lives on disk and how it is (de)serialized, so a step can run in a notebook on values and
in ``dvc repro`` on files alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from alphaline.errors import MissingPrerequisite
from alphaline.io import write_parquet, write_text
from alphaline.pipelines.results import EvaluateResult, TrainingSet, TrainResult
from alphaline.project import Project


def fingerprint(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _require(path: Path, made_by: str) -> Path:
    if not path.is_file():
        raise MissingPrerequisite(f"{path} not found: run `{made_by}` (or `dvc repro`) first")
    return path


@dataclass(frozen=True)
class Catalog:
    project: Project

    # inputs
    def validated_bars(self, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(_require(self.project.validated_bars, "alphaline validate"),
                               columns=columns)

    def labels(self) -> pd.DataFrame:
        return pd.read_parquet(_require(self.project.label_table, "alphaline featurize"))

    def feature_store(self):
        from alphaline.pipelines.featurize import open_feature_store

        _require(self.project.feature_table, "alphaline featurize")
        return open_feature_store(self.project)

    def training_set(self, store=None, names: list[str] | None = None) -> TrainingSet:
        """Labelled rows up to ``data.end`` with features joined point-in-time by Feast."""
        from alphaline.features import store as feast_store
        from alphaline.features.definitions import feature_names, get

        p = self.project.params
        names = names or feature_names(p.features.sets)
        store = store or self.feature_store()
        labels = self.labels()
        labels = labels[labels["label"].notna() & (labels["date"] <= pd.Timestamp(p.data.end))]
        feats = feast_store.historical(store, labels[["symbol", "date"]], names,
                                       p.data.calendar)
        frame = labels.merge(feats, on=["symbol", "date"], how="inner")
        # Drop each symbol's warm-up (its first ``longest window`` sessions); later NaNs,
        # e.g. a GARCH fit that did not converge, stay for LightGBM to route.
        warmup = max(d.window for d in get(names))
        frame = frame.sort_values(["symbol", "date"], ignore_index=True)
        frame = frame[frame.groupby("symbol").cumcount() >= warmup]
        frame = frame.sort_values(["date", "symbol"], ignore_index=True)
        if frame.empty:
            raise MissingPrerequisite("the training set is empty: not enough history after "
                                      "the features' warm-up")
        return TrainingSet(X=frame[names], y=frame["label"], dates=frame["date"],
                           symbols=frame["symbol"], fingerprint=fingerprint(frame))

    def median_close(self) -> float:
        """The universe's typical price, which sets the per-share commission's weight."""
        return float(self.validated_bars(columns=["close"])["close"].median())

    # step outputs
    @property
    def oos_path(self) -> Path:
        return self.project.data_dir / "model" / "oos.parquet"

    def save_oos(self, oos: pd.DataFrame) -> Path:
        return write_parquet(oos, self.oos_path)

    def oos(self) -> pd.DataFrame:
        return pd.read_parquet(_require(self.oos_path, "alphaline train"))

    @property
    def train_path(self) -> Path:
        return self.project.metrics_dir / "train.json"

    def save_result(self, name: str, result: BaseModel) -> Path:
        """A typed step result as ``metrics/<name>`` (DVC tracks these as metrics)."""
        return write_text(result.model_dump_json(indent=2) + "\n",
                          self.project.metrics_dir / name)

    def save_train(self, result: TrainResult) -> Path:
        return self.save_result(self.train_path.name, result)

    def train(self) -> TrainResult:
        return TrainResult.model_validate_json(
            _require(self.train_path, "alphaline train").read_text())

    def save_evaluation(self, result: EvaluateResult) -> Path:
        return self.save_result("evaluate.json", result)

    def save_plot(self, name: str, frame: pd.DataFrame) -> Path:
        return write_text(frame.to_csv(index=False), self.project.root / "plots" / name)

    def save_report(self, name: str, text: str) -> Path:
        return write_text(text, self.project.reports_dir / name)

