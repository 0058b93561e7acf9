"""Where a report goes once written: into the MLflow run it describes, and into the Prefect
UI as a link beside the flow run that made it."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import mlflow
from prefect.artifacts import create_link_artifact

from alphaline.models.registry import Registry

_KEY = re.compile(r"^[a-z0-9-]+$")


def log_to_mlflow(report_dir: Path, registry: Registry, run_id: str,
                  artifact_path: str = "report") -> str:
    """Copy the report folder (index.html and its files) into run ``run_id``'s artifacts
    under ``artifact_path``; return the artifact URI of the page."""
    report_dir = Path(report_dir)
    if not (report_dir / "index.html").is_file():
        raise FileNotFoundError(f"{report_dir}: no index.html to log")
    with registry.fluent():
        mlflow.log_artifacts(str(report_dir), artifact_path=artifact_path, run_id=run_id)
    run = registry.client.get_run(run_id)
    return f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}/index.html"


def link_artifact(page: Path, key: str, description: str, link_text: str | None = None
                  ) -> UUID:
    """A Prefect link artifact pointing at the page (a ``file://`` URL: the report opens
    offline from the machine that ran the flow). Keys: lowercase letters, digits, dashes."""
    if not _KEY.match(key):
        raise ValueError(f"Prefect artifact key {key!r}: use lowercase letters, digits and "
                         "dashes only")
    page = Path(page).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no report to link")
    return create_link_artifact(link=page.as_uri(), link_text=link_text or page.name, key=key,
                                description=description)


def publish_backtest(page: Path, *, key: str, description: str,
                     registry: Registry | None = None, run_id: str | None = None) -> dict:
    """Log the page's folder to MLflow (when a run is given) and link it in Prefect."""
    out: dict = {"page": str(page)}
    if registry is not None and run_id is not None:
        out["mlflow_uri"] = log_to_mlflow(Path(page).parent, registry, run_id)
    out["prefect_artifact"] = str(link_artifact(page, key, description))
    return out
