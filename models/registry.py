"""MLflow tracking and registry: log a candidate, read the champion, record the gate.

A :class:`Registry` holds its own ``MlflowClient``; nothing here changes MLflow's
process-wide tracking URI for longer than one call that needs MLflow's fluent API (logging
a run, loading a model), which :meth:`Registry.fluent` scopes and restores.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from alphaline.errors import MissingPrerequisite
from alphaline.models.gate import GateDecision
from alphaline.models.signal import SignalModel

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Registered:
    run_id: str
    version: str


class Registry:
    """One MLflow tracking store and model registry (``tracking_uri``), with run artifacts
    under ``artifact_root`` and runs in the experiment ``experiment``."""

    def __init__(self, tracking_uri: str, artifact_root: Path, experiment: str):
        self.tracking_uri = tracking_uri
        self.artifact_root = Path(artifact_root)
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def for_project(cls, project, experiment: str | None = None) -> Registry:
        """The project's store (``storage`` in params), experiment = ``model.name``."""
        return cls(project.mlflow_tracking_uri, project.mlflow_artifacts,
                   experiment or project.params.model.name)

    def experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        return self.client.create_experiment(self.experiment,
                                             artifact_location=self.artifact_root.as_uri())

    @contextlib.contextmanager
    def fluent(self) -> Iterator[str]:
        """MLflow's fluent API pointed at this store for the block, then put back."""
        before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield self.experiment_id()
        finally:
            mlflow.set_tracking_uri(before[0])
            mlflow.set_registry_uri(before[1])

    def log_candidate(self, name: str, signal: SignalModel, X_sample: pd.DataFrame, *,
                      params: dict, hyperparameters: dict[str, object],
                      metrics: dict[str, float], tags: dict[str, str],
                      figures: dict[str, object], artifacts: dict[str, object],
                      texts: dict[str, str] | None = None,
                      pip_extra: list[str] | None = None) -> Registered:
        """One MLflow run with everything needed to audit the model; registered as
        challenger."""
        with self.fluent() as exp_id, \
                mlflow.start_run(run_name=f"{name}-train", experiment_id=exp_id) as run, \
                tempfile.TemporaryDirectory() as tmp:
            mlflow.log_params({f"hp.{k}": v for k, v in hyperparameters.items()})
            mlflow.log_params(params)
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags(tags)
            for file_name, figure in figures.items():
                mlflow.log_figure(figure, file_name)
            for file_name, obj in artifacts.items():
                mlflow.log_dict(obj, file_name)
            for file_name, text in (texts or {}).items():
                mlflow.log_text(text, file_name)
            # integer columns (a vendor's volumes) as doubles: a live value may be missing
            ints = X_sample.select_dtypes("integer").columns
            X_sample = X_sample.astype({c: "float64" for c in ints})
            signal_dir = signal.save(Path(tmp) / "signal")
            signature = infer_signature(X_sample, signal.score(X_sample))
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"signal": str(signal_dir)},
                pip_requirements=_requirements(pip_extra or []),
                signature=signature,
                # a sequence model needs whole encoder windows to score anything
                input_example=X_sample if signal.context_sessions else X_sample.head(3),
                registered_model_name=name,
            )
        version = str(info.registered_model_version)
        self.client.set_registered_model_alias(name, CHALLENGER, version)
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)
        return Registered(run.info.run_id, version)

    def prune_versions(self, name: str, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` versions; a version holding an alias, and the
        newest promoted one before the champion (the rollback target), are always kept."""
        versions = sorted(self.client.search_model_versions(f"name='{name}'"),
                          key=lambda v: int(v.version), reverse=True)
        champion = self.alias_version(name, CHAMPION)
        protected = {str(v) for v in self.client.get_registered_model(name).aliases.values()}
        if champion is not None:
            earlier = [v for v in versions if v.tags.get("gate.decision") == "promote"
                       and int(v.version) < int(champion)]
            if earlier:
                protected.add(str(earlier[0].version))
        deleted = []
        for v in versions[keep:]:
            if str(v.version) not in protected:
                self.client.delete_model_version(name, v.version)
                deleted.append(str(v.version))
        return deleted

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)

    def run_metrics(self, name: str, version: str) -> dict[str, float]:
        """The metrics logged with a version's training run (its out-of-sample figures)."""
        run_id = self.client.get_model_version(name, version).run_id
        return dict(self.client.get_run(run_id).data.metrics)

    def last_retrain_day(self, name: str) -> str | None:
        """The newest ``retrain.as_of`` tag among the versions (ISO date), or None."""
        days = [v.tags["retrain.as_of"] for v in self.client.search_model_versions(
            f"name='{name}'") if "retrain.as_of" in v.tags]
        return max(days) if days else None

    def recipe(self, name: str, version: str) -> dict:
        """How a registered version was made (members, stacking, weights, features), to
        refit it on new folds."""
        return self.run_artifact(name, version, "recipe.json")

    def run_artifact(self, name: str, version: str, file_name: str) -> dict:
        run_id = self.client.get_model_version(name, version).run_id
        with self.fluent():
            return mlflow.artifacts.load_dict(f"runs:/{run_id}/{file_name}")

    def run_artifacts(self, name: str, version: str) -> list[str]:
        run_id = self.client.get_model_version(name, version).run_id
        return [a.path for a in self.client.list_artifacts(run_id)]

    def record_decision(self, name: str, version: str, decision: GateDecision,
                        metrics: dict[str, float]) -> None:
        for key, value in decision.as_tags().items():
            self.client.set_model_version_tag(name, version, key, value)
        for key, value in metrics.items():
            self.client.set_model_version_tag(name, version, f"gate.{key}", f"{value:.6g}")
        if decision.promote:
            self.client.set_registered_model_alias(name, CHAMPION, version)

    def rollback(self, name: str, reason: str) -> tuple[str, str]:
        """Point ``champion`` back at the newest version promoted before the current one.

        Returns (from version, to version). The reason is written on both versions.
        """
        current = self.alias_version(name, CHAMPION)
        if current is None:
            raise MissingPrerequisite(f"registered model {name!r} has no champion to roll "
                                      "back")
        promoted = sorted(
            (int(v.version) for v in self.client.search_model_versions(f"name='{name}'")
             if v.tags.get("gate.decision") == "promote" and int(v.version) < int(current)),
            reverse=True,
        )
        if not promoted:
            raise MissingPrerequisite(f"no version of {name!r} was promoted before "
                                      f"v{current}")
        target = str(promoted[0])
        self.client.set_registered_model_alias(name, CHAMPION, target)
        self.client.set_model_version_tag(name, current, "rollback.from",
                                          f"replaced by v{target}: {reason}")
        self.client.set_model_version_tag(name, target, "rollback.to",
                                          f"restored from v{current}: {reason}")
        return current, target

    def load_version(self, name: str, version: str) -> SignalModel:
        """The signal model of one registered version."""
        with self.fluent():
            model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        return model.unwrap_python_model().signal

    def load_alias(self, name: str, alias: str = CHAMPION
                   ) -> tuple[SignalModel, str, list[str]]:
        """The signal model behind ``models:/<name>@<alias>``, its version and features."""
        version = self.alias_version(name, alias)
        if version is None:
            raise MissingPrerequisite(f"registered model {name!r} has no {alias!r} alias "
                                      "yet: run retrain")
        with self.fluent():
            model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
        signal = model.unwrap_python_model().signal
        return signal, version, signal.features


def _requirements(extra: list[str]) -> list[str]:
    """The scoring stack at its installed versions (the pyfunc also needs this package);
    ``extra``: what a TFT adds (torch, pytorch-forecasting, lightning)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "numpy", "pandas",
                                            "scipy", "scikit-learn", "shap", *extra)]
