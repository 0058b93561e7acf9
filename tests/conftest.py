"""Shared fixtures: small projects made from the repo's params.yaml, one Prefect harness."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alphaline.config import load_params
from alphaline.project import Project
from alphaline.runtime import configure_environment

# The suite is an entry point: it sets the environment once. pytest imports this file before
# any test module, so this runs before Prefect is imported (it reads its settings then).
configure_environment()

REPO = Path(__file__).resolve().parents[1]

# A market small enough for seconds, large enough for the statistics to mean something.
SMALL = {
    "data.start": "2022-01-03",
    "data.end": "2023-06-30",
    "data.synthetic.n_symbols": 30,
    "data.synthetic.alpha_strength": 0.15,
    "tuning.n_trials": 3,
    "tuning.parallel.batch": 3,  # asked together (tests/test_tuning_parallel.py: on Dask)
    "model.n_estimators": 40,
    "cv.n_splits": 3,
    "cv.min_train_days": 150,
}


def make_project(root: Path, **overrides: object) -> Project:
    """A project folder with params.yaml = the repo's, with SMALL and ``overrides`` applied."""
    root.mkdir(parents=True, exist_ok=True)
    merged = {**SMALL, **{k.replace("__", "."): v for k, v in overrides.items()}}
    params = load_params(REPO / "params.yaml").with_overrides(merged)
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    project = Project.load(root)
    project.ensure_dirs()
    return project


def open_ledger(url: str):
    """The ledger at ``url``, migrated first (opening a ledger never migrates it)."""
    from alphaline.trading.ledger import Ledger, upgrade

    upgrade(url)
    return Ledger(url)


# The stores a test can be parametrized over (the ``backend`` argument of database_url).
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (tests/postgres.py), started by the first test
    that asks for it: installed from Debian's package if missing, never silently skipped."""
    from tests.postgres import postgres_server as server

    with server() as running:
        yield running


def database_url(request: pytest.FixtureRequest, backend: str, name: str) -> str:
    """A fresh, empty database on ``backend``: a SQLite file in the test's tmp_path, or a
    new database on the session's PostgreSQL server."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres_server").database(name)
    if backend != "sqlite":
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    return f"sqlite:///{request.getfixturevalue('tmp_path') / name}.db"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, prefect_harness) -> Project:
    """A project whose retrain flow has run on the planted-alpha market (a champion exists)."""
    from alphaline.flows.retrain import retrain

    project = make_project(tmp_path_factory.mktemp("trained") / "project")
    out = retrain(root=str(project.root), as_of=project.params.data.end, reason="test")
    assert out["promoted"], out["reasons"]
    return project
