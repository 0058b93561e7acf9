"""Database URLs: never a password in params.yaml, read from the environment, shown masked."""

import pytest
import yaml
from typer.testing import CliRunner

from alphaline.config import ConfigError, load_params
from alphaline.flows.cli import app, where_to_look
from alphaline.project import Project
from alphaline.secrets import has_secret, mask_url
from tests.conftest import REPO, make_project

SECRET_URL = "postgresql+psycopg://trader:s3cret@db.example:5432/ledger"


@pytest.mark.parametrize(("url", "shown"), [
    (SECRET_URL, "postgresql+psycopg://trader:***@db.example:5432/ledger"),
    ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
    ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=***"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:////tmp/state/ledger.db", "sqlite:////tmp/state/ledger.db"),
    ("not a url", "not a url"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown
    assert has_secret(url) == (shown != url)


def test_a_password_in_params_is_refused_naming_the_key(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["storage"]["ledger_url"] = SECRET_URL
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "params.yaml")
    assert "storage.ledger_url" in str(err.value) and "s3cret" not in str(err.value)
    result = CliRunner().invoke(app, ["params", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "s3cret" not in result.output


def test_the_url_comes_from_the_named_variable(tmp_path, monkeypatch):
    project = make_project(tmp_path / "p", storage__ledger_url_env="ALPHALINE_TEST_LEDGER_URL")
    monkeypatch.delenv("ALPHALINE_TEST_LEDGER_URL", raising=False)
    with pytest.raises(ConfigError, match="ALPHALINE_TEST_LEDGER_URL, which is not set"):
        _ = project.ledger_url
    elsewhere = tmp_path / "elsewhere" / "ledger.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("ALPHALINE_TEST_LEDGER_URL", f"sqlite:///{elsewhere}")
    assert Project.load(project.root).ledger_url == f"sqlite:///{elsewhere}"
    result = CliRunner().invoke(app, ["db", "upgrade", "--root", str(project.root)])
    assert result.exit_code == 0, result.output
    assert elsewhere.is_file() and not (project.state_dir / "ledger.db").exists()


def test_printed_urls_are_masked(tmp_path, monkeypatch):
    project = make_project(tmp_path / "p", storage__ledger_url_env="ALPHALINE_TEST_LEDGER_URL",
                           storage__mlflow_tracking_uri_env="ALPHALINE_TEST_MLFLOW_URI")
    monkeypatch.setenv("ALPHALINE_TEST_LEDGER_URL", SECRET_URL)
    monkeypatch.setenv("ALPHALINE_TEST_MLFLOW_URI", "postgresql://ml:hunter2@db/mlflow")
    result = CliRunner().invoke(app, ["params", "--root", str(project.root)])
    assert result.exit_code == 0, result.output
    assert "trader:***@db.example" in result.output and "ml:***@db" in result.output
    assert "s3cret" not in result.output and "hunter2" not in result.output
    text = where_to_look(Project.load(project.root), "reports/daily/x.md")
    assert "trader:***@db.example" in text and "ml:***@db/mlflow" in text
    assert "s3cret" not in text and "hunter2" not in text
