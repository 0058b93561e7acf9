import pytest
from typer.testing import CliRunner

from alphaline.errors import MissingPrerequisite
from alphaline.features.definitions import FEATURES
from alphaline.flows.cli import EXIT_MISSING, app
from alphaline.project import Project

runner = CliRunner()


def test_help_lists_every_step_and_flow():
    out = runner.invoke(app, ["--help"]).output
    for name in ("ingest", "validate", "featurize", "train", "evaluate", "retrain", "trade",
                 "drift", "serve", "deploy", "demo", "halt", "resume", "risk", "model"):
        assert name in out


def test_features_markdown_lists_the_registry():
    out = runner.invoke(app, ["features", "--markdown"]).output
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert all(line.replace("\\|", "").count("|") == 6 for line in rows)  # pipes escaped
    assert len(rows) == len(FEATURES)
    only = runner.invoke(app, ["features", "--markdown", "--set", "alpha158"]).output
    assert sum(1 for line in only.splitlines() if line.startswith("| alpha158 |")) == 158
    assert runner.invoke(app, ["features", "--set", "tarot"]).exit_code == 2


def test_missing_prerequisite_exits_4(project):
    result = runner.invoke(app, ["featurize", "--root", str(project.root)])
    assert result.exit_code == EXIT_MISSING
    assert "alphaline ingest" in result.output


def test_only_the_projects_own_errors_map_to_exit_codes(project, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("params")  # a bug, not a missing prerequisite

    monkeypatch.setattr(Project, "load", broken)
    result = runner.invoke(app, ["params", "--root", str(project.root)])
    assert result.exit_code == 1 and result.exit_code != EXIT_MISSING
    assert isinstance(result.exception, KeyError)  # propagates with its traceback
    assert "missing" not in result.output

    def absent(*args, **kwargs):
        raise MissingPrerequisite("no champion yet: run retrain first")

    monkeypatch.setattr(Project, "load", absent)
    result = runner.invoke(app, ["params", "--root", str(project.root)])
    assert result.exit_code == EXIT_MISSING
    assert "missing:" in result.output and "run retrain first" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_db_upgrade_and_status(project):
    from alphaline.trading.ledger import Ledger

    with pytest.raises(MissingPrerequisite, match="alphaline db upgrade"):
        Ledger(project.ledger_url)
    status = runner.invoke(app, ["db", "status", "--root", str(project.root)])
    assert status.exit_code == 0 and "current  none" in status.output
    assert runner.invoke(app, ["db", "upgrade", "--root", str(project.root)]).exit_code == 0
    again = runner.invoke(app, ["db", "upgrade", "--root", str(project.root)])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert "up to date" in runner.invoke(app, ["db", "status", "--root", str(project.root)]
                                         ).output
    Ledger(project.ledger_url)


def test_halt_and_resume_switch_the_ledger(project):
    from alphaline.trading.ledger import Ledger

    assert runner.invoke(app, ["halt", "--reason", "test", "--root", str(project.root)]
                         ).exit_code == 0
    assert Ledger(project.ledger_url).trading_state() == "HALTED"
    assert runner.invoke(app, ["resume", "--reason", "test over", "--root", str(project.root)]
                         ).exit_code == 0
    assert Ledger(project.ledger_url).trading_state() == "ACTIVE"
