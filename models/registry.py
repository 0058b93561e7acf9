"""MLflow tracking and registry: log a candidate, read the champion, record the gate."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import mlflow
import pandas as pd
from alphaline.models.gate import GateDecision
from alphaline.models.signal import SignalModel
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Registered:
    run_id: str
    version: str


def configure(tracking_uri: str, artifact_root: Path, experiment: str) -> str:
    """Point MLflow at the project's store; return the experiment id."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        exp_id = found.experiment_id
    else:
        artifact_root.mkdir(parents=True, exist_ok=True)
        exp_id = mlflow.create_experiment(experiment, artifact_location=artifact_root.as_uri())
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def log_candidate(name: str, signal: SignalModel, X_sample: pd.DataFrame, *, params: dict,
                  hyperparameters: dict[str, object], metrics: dict[str, float],
                  tags: dict[str, str], figures: dict[str, object],
                  artifacts: dict[str, object], texts: dict[str, str] | None = None
                  ) -> Registered:
    """One MLflow run with everything needed to audit the model; registered as challenger."""
    with mlflow.start_run(run_name=f"{name}-train") as run, \
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
        signal_dir = signal.save(Path(tmp) / "signal")
        signature = infer_signature(X_sample, signal.score(X_sample))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={"signal": str(signal_dir)}, pip_requirements=_requirements(),
            signature=signature, input_example=X_sample.head(3), registered_model_name=name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return Registered(run.info.run_id, version)


def _requirements() -> list[str]:
    """The scoring stack at its installed versions (the pyfunc also needs this package)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "numpy", "pandas",
                                            "scipy", "scikit-learn", "shap")]


def prune_versions(name: str, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions; a version holding an alias, and the
    newest promoted one before the champion (the rollback target), are always kept."""
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name='{name}'"),
                      key=lambda v: int(v.version), reverse=True)
    champion = alias_version(name, CHAMPION)
    protected = {str(v) for v in client.get_registered_model(name).aliases.values()}
    if champion is not None:
        earlier = [v for v in versions if v.tags.get("gate.decision") == "promote"
                   and int(v.version) < int(champion)]
        if earlier:
            protected.add(str(earlier[0].version))
    deleted = []
    for v in versions[keep:]:
        if str(v.version) not in protected:
            client.delete_model_version(name, v.version)
            deleted.append(str(v.version))
    return deleted


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def recipe(name: str, version: str) -> dict:
    """How a registered version was made (members, stacking, weights, features), to refit it
    on new folds."""
    return run_artifact(name, version, "recipe.json")


def run_artifact(name: str, version: str, file_name: str) -> dict:
    run_id = MlflowClient().get_model_version(name, version).run_id
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{file_name}")


def record_decision(name: str, version: str, decision: GateDecision,
                    metrics: dict[str, float]) -> None:
    client = MlflowClient()
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    for key, value in metrics.items():
        client.set_model_version_tag(name, version, f"gate.{key}", f"{value:.6g}")
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)


def rollback(name: str, reason: str) -> tuple[str, str]:
    """Point ``champion`` back at the newest version promoted before the current one.

    Returns (from version, to version). The reason is written on both versions.
    """
    current = alias_version(name, CHAMPION)
    if current is None:
        raise LookupError(f"registered model {name!r} has no champion to roll back")
    client = MlflowClient()
    promoted = sorted(
        (int(v.version) for v in client.search_model_versions(f"name='{name}'")
         if v.tags.get("gate.decision") == "promote" and int(v.version) < int(current)),
        reverse=True,
    )
    if not promoted:
        raise LookupError(f"no version of {name!r} was promoted before v{current}")
    target = str(promoted[0])
    client.set_registered_model_alias(name, CHAMPION, target)
    client.set_model_version_tag(name, current, "rollback.from", f"replaced by v{target}: {reason}")
    client.set_model_version_tag(name, target, "rollback.to", f"restored from v{current}: {reason}")
    return current, target


def load_alias(name: str, alias: str = CHAMPION) -> tuple[SignalModel, str, list[str]]:
    """The signal model behind ``models:/<name>@<alias>``, its version and features."""
    version = alias_version(name, alias)
    if version is None:
        raise LookupError(f"registered model {name!r} has no {alias!r} alias yet: run retrain")
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}").unwrap_python_model().signal
    return model, version, model.features
